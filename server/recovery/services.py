"""Enabling and disabling the offline recovery key (`manage.py recovery …`), audited.

The web process never signs: the request is queued for the signing worker, which applies the
policy (`issuance`); only the explicit inline mode (E2EE_SIGNING = "inline" with the software
CA: tests and single-process development) signs in this process."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from server.audit.services import audit_record
from server.certificates.services import signing_inline
from server.errors import APIError, Conflict, NotFound, ServiceUnavailable

from .issuance import csr_checked
from .models import RecoveryKey
from .selectors import recovery_key_enabled

_POLL = 0.05


def _dispatch(row: RecoveryKey) -> None:
    if signing_inline():
        from server.certificates.authority import ca_ensure_software

        from .issuance import recovery_sign

        ca_ensure_software()
        recovery_sign(recovery_key_id=row.pk)
        return
    from .tasks import recovery_enqueue

    recovery_enqueue(recovery_key_id=row.pk)


def _wait(row: RecoveryKey, timeout: float) -> RecoveryKey:
    deadline = time.monotonic() + timeout
    while True:
        row.refresh_from_db()
        if row.status != RecoveryKey.Status.PENDING:
            return row
        if time.monotonic() >= deadline:
            raise ServiceUnavailable(
                f"No signing worker answered within {timeout:g} s; the request is kept "
                f"(run `recovery enable` with the same CSR again)"
            )
        time.sleep(_POLL)


def _request(*, csr_pem: str, actor: str) -> RecoveryKey:
    _, key_id, spki = csr_checked(csr_pem)
    with transaction.atomic():
        pending = RecoveryKey.objects.select_for_update().filter(
            status=RecoveryKey.Status.PENDING, disabled_at__isnull=True
        )
        # The same CSR again (after a timeout, say): its request, pending or already issued.
        same = RecoveryKey.objects.filter(
            spki_sha256=spki,
            disabled_at__isnull=True,
            status__in=[RecoveryKey.Status.PENDING, RecoveryKey.Status.ISSUED],
        ).first()
        if same is not None:
            return same
        if pending.exists() or recovery_key_enabled() is not None:
            raise Conflict("A recovery key is enabled or pending; disable it first")
        try:
            row = RecoveryKey.objects.create(
                key_id=key_id, csr_pem=csr_pem, spki_sha256=spki, requested_by=actor
            )
        except IntegrityError:
            raise Conflict("A recovery key is enabled or pending; disable it first") from None
    return row


def recovery_enable(*, csr_pem: str, actor: str, timeout: float | None = None) -> RecoveryKey:
    """Have the CA certify the recovery key; capabilities advertise it from then on."""
    try:
        row = _request(csr_pem=csr_pem, actor=actor)
        if row.status == RecoveryKey.Status.PENDING:
            _dispatch(row)
            row = _wait(row, timeout if timeout is not None else settings.E2EE_ISSUANCE_TIMEOUT)
        if row.status == RecoveryKey.Status.REFUSED:
            raise Conflict(row.refusal_message or "The signing worker refused the recovery key")
    except APIError as error:
        audit_record(
            actor=actor,
            action="recovery.enable",
            outcome="denied" if error.status_code < 500 else "failure",
            details={"reason": str(error.detail)[:300]},
        )
        raise
    audit_record(
        actor=actor,
        action="recovery.enable",
        target=row.key_id,
        outcome="success",
        details={"fingerprint": row.fingerprint, "serial": row.serial},
    )
    return row


def recovery_disable(*, actor: str) -> RecoveryKey:
    """Stop advertising the recovery key: clients leave it out of what they write next."""
    with transaction.atomic():
        row = (
            RecoveryKey.objects.select_for_update()
            .filter(status=RecoveryKey.Status.ISSUED, disabled_at__isnull=True)
            .first()
        )
        if row is not None:
            row.disabled_at = timezone.now()
            row.disabled_by = actor
            row.save(update_fields=["disabled_at", "disabled_by"])
    if row is None:
        audit_record(
            actor=actor,
            action="recovery.disable",
            outcome="denied",
            details={"reason": "no recovery key is enabled"},
        )
        raise NotFound("No recovery key is enabled")
    audit_record(
        actor=actor,
        action="recovery.disable",
        target=row.key_id,
        outcome="success",
        details={"fingerprint": row.fingerprint},
    )
    return row
