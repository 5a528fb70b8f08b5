"""Appending to the audit log and checking its chain."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from .chain import GENESIS, ChainBreak, event_hash
from .models import AuditEvent

# Any fixed 64-bit number: the PostgreSQL advisory lock that serialises appends.
_APPEND_LOCK = 0x6532_6565_6175_6469
_ITERATION_CHUNK = 2000


def audit_record(
    *,
    actor: str,
    action: str,
    target: str = "",
    outcome: str,
    source_address: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. Appends are serialised so the chain has one head; call it outside the
    transaction of the change it reports, so failures are recorded too."""
    with transaction.atomic():
        return audit_append(
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
            source_address=source_address,
            details=details,
        )


def audit_append(
    *,
    actor: str,
    action: str,
    target: str = "",
    outcome: str,
    source_address: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event inside the caller's transaction, which must commit (or roll back) what
    it reports together with the event: one commit instead of two. Call it last in the
    transaction: the chain lock it takes is held until the commit."""
    return audit_append_many(
        [
            {
                "actor": actor,
                "action": action,
                "target": target,
                "outcome": outcome,
                "source_address": source_address,
                "details": details,
            }
        ]
    )[0]


def audit_append_many(events: list[dict[str, Any]]) -> list[AuditEvent]:
    """Append several events (keyword sets of `audit_record`) in order inside the caller's
    transaction: one chain lock, one read of the head, one INSERT; each event still chains to
    the one before it exactly as if appended alone."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_append needs a transaction; use audit_record")
    if not events:
        return []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_APPEND_LOCK])
    last = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
    seq = last["seq"] if last else 0
    prev_hash = last["hash"] if last else GENESIS
    rows = []
    for event in events:
        seq += 1
        fields: dict[str, Any] = {
            "seq": seq,
            "created_at": timezone.now(),
            "actor": event["actor"][:300],
            "action": event["action"],
            "target": event.get("target", "")[:300],
            "source_address": event.get("source_address") or None,
            "outcome": event["outcome"],
            "details": event.get("details") or {},
        }
        digest = event_hash(prev_hash=prev_hash, **fields)
        rows.append(AuditEvent(**fields, prev_hash=prev_hash, hash=digest))
        prev_hash = digest
    return AuditEvent.objects.bulk_create(rows)


def _events() -> Iterator[AuditEvent]:
    return AuditEvent.objects.order_by("seq").iterator(chunk_size=_ITERATION_CHUNK)


def recompute_hash(event: AuditEvent, *, prev_hash: str) -> str:
    """The hash a stored event should carry after `prev_hash`."""
    return event_hash(
        prev_hash=prev_hash,
        seq=event.seq,
        created_at=event.created_at,
        actor=event.actor,
        action=event.action,
        target=event.target,
        source_address=event.source_address,
        outcome=event.outcome,
        details=event.details,
    )


def audit_verify() -> tuple[int, ChainBreak | None]:
    """Walk the chain from the start; returns (events checked, first break or None)."""
    expected_seq, prev_hash, checked = 1, GENESIS, 0
    for event in _events():
        if event.seq != expected_seq:
            return checked, ChainBreak(
                expected_seq, f"event #{expected_seq} is missing (next present is #{event.seq})"
            )
        if event.prev_hash != prev_hash:
            return checked, ChainBreak(
                event.seq, "does not link to the event before it (deleted, inserted or reordered)"
            )
        recomputed = recompute_hash(event, prev_hash=event.prev_hash)
        if recomputed != event.hash:
            return checked, ChainBreak(event.seq, "its content was changed after it was written")
        checked += 1
        expected_seq, prev_hash = event.seq + 1, event.hash
    return checked, None


def outcome_for_status(status: int) -> str:
    if status < 400:
        return AuditEvent.Outcome.SUCCESS
    if status in (401, 403):
        return AuditEvent.Outcome.DENIED
    return AuditEvent.Outcome.FAILURE


def client_address(meta: dict[str, Any]) -> str | None:
    """REMOTE_ADDR as the WSGI server saw it (a TLS proxy in front sets it via gunicorn)."""
    return meta.get("REMOTE_ADDR") or None


def record_failed_login(*, username: str, source_address: str | None, channel: str) -> None:
    """A failed sign-in. The attempted user id is recorded only if such a user exists: people
    sometimes type their password into the user field."""
    known = get_user_model().objects.filter(username=username).exists()
    audit_record(
        actor="anonymous",
        action="auth.login_failed",
        target=f"user:{username}" if known else "user:(unknown)",
        outcome="denied",
        source_address=source_address,
        details={"channel": channel},
    )
