"""Account writes and credential checks."""

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.utils import timezone

from .models import AppPassword, User

_ALPHABET = string.ascii_letters + string.digits
# Nextcloud's app passwords: 5 groups of 5 characters from [A-Za-z0-9].
_GROUPS, _GROUP_LEN = 5, 5
_ACCOUNT_PASSWORD_CACHE_SECONDS = 300


def _keyed_digest(*parts: str) -> str:
    message = "\x00".join(parts).encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def app_password_create(*, user: User, name: str) -> tuple[AppPassword, str]:
    """Create an app password; the clear value is returned here once and never stored."""
    groups = ("".join(secrets.choice(_ALPHABET) for _ in range(_GROUP_LEN)) for _ in range(_GROUPS))
    clear = "-".join(groups)
    record = AppPassword.objects.create(
        user=user, name=name, digest=_keyed_digest("app-password", clear), hint=clear[-4:]
    )
    return record, clear


def _app_password_match(records: list[AppPassword], password: str) -> AppPassword | None:
    digest = _keyed_digest("app-password", password)
    for record in records:
        if hmac.compare_digest(record.digest, digest):
            return record
    return None


def _account_password_ok(user: User, password: str) -> bool:
    """check_password is deliberately slow; sync clients send Basic auth on every request, so a
    success is remembered briefly. The cache key binds the stored hash: a password change
    invalidates it at once."""
    key = "basic-ok:" + _keyed_digest("account-password", user.username, password, user.password)
    if cache.get(key):
        return True
    if user.check_password(password):
        cache.set(key, True, _ACCOUNT_PASSWORD_CACHE_SECONDS)
        return True
    return False


@dataclass(frozen=True)
class Authenticated:
    user: User
    # "app-password" or "account-password": deleting keys needs the account password itself.
    via: str


def credentials_check(*, username: str, password: str) -> Authenticated | None:
    """The one credential check for OCS and WebDAV: an app password or the account password."""
    # Sync clients send app passwords on every request: one query fetches the user with them.
    records = list(
        AppPassword.objects.filter(user__username=username, user__is_active=True).select_related(
            "user"
        )
    )
    user = (
        records[0].user
        if records
        else get_user_model().objects.filter(username=username, is_active=True).first()
    )
    if user is None:
        # Same cost as a real check, so timing does not tell which user ids exist.
        get_user_model()().set_password(password)
        return None
    record = _app_password_match(records, password)
    if record is not None:
        now = timezone.now()
        if record.last_used_at is None or now - record.last_used_at > timedelta(minutes=1):
            AppPassword.objects.filter(pk=record.pk).update(last_used_at=now)
        return Authenticated(user, "app-password")
    if _account_password_ok(user, password):
        return Authenticated(user, "account-password")
    return None


def authenticate_basic(*, username: str, password: str) -> User | None:
    checked = credentials_check(username=username, password=password)
    return checked.user if checked else None
