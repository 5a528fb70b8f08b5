"""Figures for the admin's front page: counts, and whether the last audit checkpoint holds."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model

from server.audit.checkpoints import checkpoint_problem
from server.audit.models import AuditCheckpoint, AuditEvent
from server.certificates.models import Certificate
from server.e2ee.models import Lock
from server.files.models import Node
from server.sharing.models import Share


@dataclass(frozen=True)
class CheckpointStatus:
    seq: int | None
    created_at: object
    problem: str | None  # None: verified against the server key


def _checkpoint_status() -> CheckpointStatus:
    latest = AuditCheckpoint.objects.order_by("-seq").first()
    if latest is None:
        return CheckpointStatus(None, None, "no checkpoint signed yet")
    try:
        from cryptography.hazmat.primitives import serialization

        from server.certificates.authority import ca_public_key_pem

        key = serialization.load_pem_public_key(ca_public_key_pem().encode())
        problem = checkpoint_problem(latest, key)  # type: ignore[arg-type]
    except Exception as error:  # noqa: BLE001 - shown to the admin, not raised
        problem = f"cannot be checked: {error}"
    return CheckpointStatus(latest.seq, latest.created_at, problem)


def dashboard() -> dict[str, object]:
    return {
        "counts": [
            ("users", get_user_model().objects.count()),
            ("encrypted folders", Node.objects.filter(is_encrypted=True).count()),
            ("open locks", Lock.objects.count()),
            ("live certificates", Certificate.objects.filter(deleted_at__isnull=True).count()),
            ("shares", Share.objects.count()),
            ("audit events", AuditEvent.objects.count()),
        ],
        "checkpoint": _checkpoint_status(),
    }
