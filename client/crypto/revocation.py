"""The server's revoked list (our extension), verified: pure functions, no I/O.

The server serves the newest edition of a list its CA key signed (RSASSA-PKCS1-v1_5 / SHA-256
over the UTF-8 document, the key clients pin as the server key)::

    {"format":"e2ee-stack revocation list v1","issuedAt":"…Z",
     "revoked":[{"revokedAt":"…Z","serial":"<lower-case hex>"}, …],"sequence":N}

Editing it (dropping a serial) breaks the signature. Serving an older edition is caught by
:func:`check_succession` against the highest edition this device saw; serials seen revoked
once stay revoked on the device whatever a later edition says.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from client.crypto.keys import Certificate
from client.errors import (
    CertificateRevokedError,
    FormatError,
    RevocationListRollbackError,
    RevocationListSignatureError,
)

FORMAT = "e2ee-stack revocation list v1"
_HEX = re.compile(r"[0-9a-f]{1,64}")


@dataclass(frozen=True)
class RevocationList:
    sequence: int
    issued_at: datetime
    #: serial (int) -> revocation time as served ("…Z")
    revoked: dict[int, str]
    #: SHA-256 (hex) of the signed document: one sequence number, one document
    digest: str


def _time(value: object, what: str) -> datetime:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise FormatError(f"revoked list: {what} is not a UTC time")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise FormatError(f"revoked list: {what} is not a UTC time") from None


def verify_revocation_list(
    document: str, signature: str, server_public_key: rsa.RSAPublicKey
) -> RevocationList:
    """Check the signature first, then the shape; raises RevocationListSignatureError or
    FormatError."""
    try:
        raw_signature = base64.b64decode(signature, validate=True)
        server_public_key.verify(
            raw_signature, document.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise RevocationListSignatureError(
            "the revoked list is not signed by the server key (edited or forged)"
        ) from None
    try:
        body = json.loads(document)
    except ValueError:
        raise FormatError("revoked list: not JSON") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise FormatError(f"revoked list: format is not {FORMAT!r}")
    sequence, entries = body.get("sequence"), body.get("revoked")
    if type(sequence) is not int or sequence < 1 or not isinstance(entries, list):
        raise FormatError("revoked list: bad sequence or entries")
    revoked: dict[int, str] = {}
    for entry in entries:
        serial = entry.get("serial") if isinstance(entry, dict) else None
        if not isinstance(serial, str) or not _HEX.fullmatch(serial):
            raise FormatError("revoked list: a serial is not lower-case hex")
        when = entry.get("revokedAt")
        _time(when, "revokedAt")
        revoked[int(serial, 16)] = str(when)
    return RevocationList(
        sequence=sequence,
        issued_at=_time(body.get("issuedAt"), "issuedAt"),
        revoked=revoked,
        digest=hashlib.sha256(document.encode("utf-8")).hexdigest(),
    )


def check_succession(
    edition: RevocationList, *, sequence: int | None, digest: str | None, sticky: Collection[int]
) -> None:
    """``edition`` must not be older than the highest one seen (``sequence``, ``digest``), nor
    leave out a serial this device saw revoked (``sticky``): no rollback, no un-revoking."""
    if sequence is None:
        return
    if edition.sequence < sequence:
        raise RevocationListRollbackError(
            f"the server serves revoked list #{edition.sequence}; this device saw #{sequence}"
        )
    if edition.sequence == sequence and edition.digest != digest:
        raise RevocationListRollbackError(
            f"the server serves a different revoked list #{sequence} than this device saw"
        )
    dropped = [serial for serial in sticky if serial not in edition.revoked]
    if dropped:
        raise RevocationListRollbackError(
            f"revoked list #{edition.sequence} leaves out {len(dropped)} serial(s) "
            "this device saw revoked"
        )


def check_not_revoked(cert: Certificate, revoked: Collection[int], user: str) -> None:
    if cert.serial_number in revoked:
        raise CertificateRevokedError(
            f"the certificate of {user!r} (serial {cert.serial_number:x}) is revoked"
        )
