"""Revoke a user's live certificate on a live stack as an admin would (the service the Django
admin calls); with inline signing the new signed edition exists when this returns."""

from __future__ import annotations

from tests.live import LiveStack

_SCRIPT = """
from server.accounts.models import User
from server.certificates.models import Certificate
from server.certificates.services import certificate_revoke
admin = User.objects.filter(username='revoker').first() or User.objects.create_superuser(
    'revoker', '', None)
cert = Certificate.objects.get(key_owner={user!r}, deleted_at__isnull=True)
certificate_revoke(certificate_id=cert.pk, admin=admin, reason='tests: key compromised')
print(cert.serial)
"""


def revoke(stack: LiveStack, user: str) -> str:
    """Revoke ``user``'s certificate; returns its serial (hex)."""
    return stack.manage("shell", "-c", _SCRIPT.format(user=user)).strip().splitlines()[-1]
