"""The signed list of revoked certificate serials (our extension; Nextcloud has none).

The CA key signs it, so a server cannot drop a serial from it unnoticed; each edition carries a
sequence number and its time, so a server serving an older edition is caught by any client that
saw a newer one (clients keep the highest sequence and every serial they saw revoked). Only the
signing worker can make an edition; the web process serves the newest one.

Signed bytes: the UTF-8 `document`, compact JSON with sorted keys::

    {"format":"e2ee-stack revocation list v1","issuedAt":"2026-12-01T10:00:00Z",
     "revoked":[{"revokedAt":"…Z","serial":"<lower-case hex>"}, …],"sequence":3}

signed with RSASSA-PKCS1-v1_5 / SHA-256 by the CA key (the key `GET server-key` serves). The
`format` string keeps it apart from anything else that key signs (certificates, audit
checkpoints)."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from hsm.signer import Signer, key_fingerprint, sign_bytes
from server.audit.services import audit_record

from .models import CertificateRevocation, RevocationList

log = logging.getLogger(__name__)

FORMAT = "e2ee-stack revocation list v1"


def _zulu(moment: datetime) -> str:  # "…Z", to the second
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def revocation_entries() -> list[dict[str, str]]:
    """Every revoked serial with its revocation time, oldest first (the database's truth)."""
    return [
        {"serial": serial, "revokedAt": _zulu(revoked_at)}
        for serial, revoked_at in CertificateRevocation.objects.order_by(
            "revoked_at", "pk"
        ).values_list("certificate__serial", "revoked_at")
    ]


def revocation_document(*, sequence: int, issued_at: str, entries: list[dict[str, str]]) -> str:
    return json.dumps(
        {"format": FORMAT, "sequence": sequence, "issuedAt": issued_at, "revoked": entries},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )


def _serials(edition: RevocationList) -> set[str]:
    return {entry["serial"] for entry in json.loads(edition.document)["revoked"]}


def revocation_list_publish(*, signer: Signer) -> RevocationList | None:
    """Sign a new edition if the revocations differ from the newest edition (or none exists);
    None when the newest edition is current. Runs where the CA key is (worker, or inline)."""
    with transaction.atomic():
        latest = RevocationList.objects.select_for_update().order_by("-sequence").first()
        entries = revocation_entries()
        if latest is not None and _serials(latest) == {e["serial"] for e in entries}:
            return None
        sequence = latest.sequence + 1 if latest is not None else 1
        document = revocation_document(
            sequence=sequence, issued_at=_zulu(timezone.now()), entries=entries
        )
        signature = sign_bytes(signer, document.encode())
        try:
            with transaction.atomic():
                edition = RevocationList.objects.create(
                    sequence=sequence,
                    document=document,
                    signature=base64.b64encode(signature).decode(),
                    key_fingerprint=key_fingerprint(signer.public_key()),
                )
        except IntegrityError:  # another signer published this sequence meanwhile
            return None
    log.info("revocation list #%s signed (%s serials)", sequence, len(entries))
    audit_record(
        actor="system",
        action="certificate.revocation_list",
        target=f"revocation-list:{sequence}",
        outcome="success",
        details={"sequence": sequence, "serials": len(entries)},
    )
    return edition


def revocation_list_latest() -> RevocationList | None:
    return RevocationList.objects.order_by("-sequence").first()
