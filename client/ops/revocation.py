"""The revoked list as a device keeps it (``revocation.json`` in the keystore).

Fetched at most once per session, verified with the pinned server key
(:mod:`client.crypto.revocation`), never older than the highest edition this device saw, and
sticky: a serial seen revoked stays revoked here whatever the server serves later. A server
that offers no list (a Nextcloud server) is accepted until it has served one once.

Checked: the own certificate (init, add-device, status), a sharee's certificate before a share,
every member's certificate before a root metadata write wraps the key for it, and — through
``verify_*_metadata(revoked=…)`` — the signer of metadata read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from client.api import ServerApi
from client.crypto.keys import Certificate
from client.crypto.revocation import check_not_revoked, check_succession, verify_revocation_list
from client.errors import CertificateRevokedError, RevocationListRollbackError
from client.keystore import PUBLIC, Keystore
from client.ops.session import Session

RECORD = "revocation.json"


def record(keystore: Keystore) -> dict[str, Any]:
    """{"sequence", "digest", "issuedAt", "serials": {hex: revokedAt}}; {} before any list."""
    return dict(keystore._json(RECORD, {}))


def known_revoked(keystore: Keystore) -> frozenset[int]:
    return frozenset(int(serial, 16) for serial in record(keystore).get("serials", {}))


def refresh(keystore: Keystore, api: ServerApi, server_key: rsa.RSAPublicKey) -> dict[str, Any]:
    """Fetch, verify and remember the server's newest edition; returns the device's record.
    Raises RevocationListSignatureError, RevocationListRollbackError or FormatError."""
    seen = record(keystore)
    offered = api.revocation_list()
    if offered is None:
        if seen.get("sequence") is not None:
            raise RevocationListRollbackError(
                "the server no longer serves its revoked list "
                f"(this device saw #{seen['sequence']})"
            )
        return seen
    edition = verify_revocation_list(*offered, server_key)
    check_succession(
        edition,
        sequence=seen.get("sequence"),
        digest=seen.get("digest"),
        sticky=known_revoked(keystore),
    )
    serials = dict(seen.get("serials", {}))
    serials.update({format(serial, "x"): when for serial, when in edition.revoked.items()})
    updated = {
        "sequence": edition.sequence,
        "digest": edition.digest,
        "issuedAt": edition.issued_at.isoformat().replace("+00:00", "Z"),
        "serials": serials,
    }
    if updated != seen:
        keystore._put_json(RECORD, updated, PUBLIC)
    return updated


def revoked_serials(session: Session) -> frozenset[int]:
    """Every serial this device knows revoked, after asking the server once per session."""
    if session.revocation is None:
        refresh(session.keystore, session.api, session.server_key)
        session.revocation = known_revoked(session.keystore)
    return frozenset(session.revocation)


def check_certificate(session: Session, user: str, cert: Certificate) -> None:
    """Raises CertificateRevokedError if ``cert`` (``user``'s) is revoked."""
    check_not_revoked(cert, revoked_serials(session), user)


def check_recipients(session: Session, certificates: Mapping[str, Certificate]) -> None:
    """Before a root metadata write wraps the folder key for these members."""
    revoked = revoked_serials(session)
    for user, cert in certificates.items():
        if cert.serial_number not in revoked:
            continue
        if user == session.user:
            raise CertificateRevokedError(
                f"your own certificate (serial {cert.serial_number:x}) is revoked: "
                "this device may not write until the administrator issues a new one"
            )
        raise CertificateRevokedError(
            f"the certificate of {user!r} (serial {cert.serial_number:x}) is revoked: refusing "
            f"to wrap the folder key for it (remove them with `e2ee unshare DIR {user}`)"
        )
