"""The server's offline recovery key, as a writing client sees it.

The server advertises it in its own capabilities namespace (Nextcloud clients ignore it)::

    "e2ee-stack": {"recovery": {"enabled": true, "id": "recovery:…",
                                "certificate": "<PEM>", "fingerprint": "<hex sha256 of DER>"}}

Before a write, the offer is verified against the pinned server key (issuer, id bound to the
key, key encipherment only, the fingerprint) and the certificate is pinned at first sight; a
different certificate later raises RecoveryKeyChangedError, like any changed pinned key. Every
root metadata this client writes then carries it as an extra ``users`` entry; the user is told
plainly, once per folder (recorded in the keystore). When the server stops advertising it, new
writes leave it out and the user is told once. A recovery entry read from a folder is never
carried over on its own: only the verified current offer is added.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from client import crypto
from client.crypto.keys import Certificate
from client.crypto.metadata import Recipient
from client.crypto.recovery import certificate_sha256, is_recovery_id, verify_recovery_certificate
from client.errors import (
    CertificateError,
    FormatError,
    RecoveryKeyChangedError,
    RecoveryKeyPolicyError,
)
from client.keystore import Keystore, fingerprint
from client.ops.session import Session, now

CAPABILITY = "e2ee-stack"


@dataclass(frozen=True)
class RecoveryOffer:
    """The verified state the server advertises now."""

    enabled: bool
    user_id: str | None = None
    certificate: Certificate | None = None

    @property
    def fingerprint(self) -> str | None:
        return certificate_sha256(self.certificate) if self.certificate is not None else None

    @property
    def safety_number(self) -> str | None:
        return fingerprint(self.certificate) if self.certificate is not None else None

    def recipient(self) -> Recipient | None:
        if not self.enabled or self.user_id is None or self.certificate is None:
            return None
        return Recipient(self.user_id, self.certificate.pem)


def _section(capabilities: Mapping[str, Any]) -> Mapping[str, Any] | None:
    ours = capabilities.get(CAPABILITY)
    section = ours.get("recovery") if isinstance(ours, Mapping) else None
    return section if isinstance(section, Mapping) else None


def check_offer(
    keystore: Keystore,
    capabilities: Mapping[str, Any],
    server_key: rsa.RSAPublicKey,
    *,
    pin: bool = True,
) -> RecoveryOffer:
    """Verify what ``capabilities`` advertise; pin the certificate at first sight (if ``pin``).

    Raises RecoveryKeyPolicyError (a bad offer) or RecoveryKeyChangedError (not the pinned one).
    """
    section = _section(capabilities)
    if section is None or section.get("enabled") is not True:
        return RecoveryOffer(enabled=False)
    pem, claimed = section.get("certificate"), section.get("fingerprint")
    if not isinstance(pem, str) or not isinstance(claimed, str):
        raise RecoveryKeyPolicyError("the server advertises recovery without a certificate")
    try:
        cert = crypto.load_certificate(pem)
    except FormatError as exc:
        raise RecoveryKeyPolicyError("the advertised recovery certificate is unreadable") from exc
    user_id = verify_recovery_certificate(cert, server_public_key=server_key, now=now())
    if not hmac.compare_digest(re.sub(r"[^0-9a-f]", "", claimed.lower()), certificate_sha256(cert)):
        raise RecoveryKeyPolicyError("the advertised recovery fingerprint is not the certificate's")
    record = keystore.recovery_record()
    pinned = record.get("certificate")
    if pinned is not None and crypto.load_certificate(pinned).der != cert.der:
        raise RecoveryKeyChangedError(
            "the server offers a recovery key other than the one pinned at first sight "
            f"(pinned {fingerprint(crypto.load_certificate(pinned))[:19]}…, "
            f"offered {fingerprint(cert)[:19]}…); refusing to write for it"
        )
    if pinned is None and pin:
        record["certificate"] = cert.pem
        keystore.save_recovery_record(record)
    return RecoveryOffer(enabled=True, user_id=user_id, certificate=cert)


def offer(session: Session) -> RecoveryOffer:
    """The verified offer, asked once per session; tells the user once when it was disabled."""
    if session.recovery is None:
        state = check_offer(session.keystore, session.api.capabilities(), session.server_key)
        _note_state(session, state)
        session.recovery = state
    return session.recovery


def _note_state(session: Session, state: RecoveryOffer) -> None:
    record = session.keystore.recovery_record()
    last = record.get("state")
    current = "enabled" if state.enabled else "disabled"
    if last == current or (last is None and not state.enabled):
        return
    if not state.enabled:
        session.notify(
            "e2ee: notice: the administrator disabled the recovery key. Folders you write from "
            "now on no longer include it; what it could read before stays readable to it "
            "(`e2ee recovery drop REMOTE_DIR` gives a folder a new key without it)."
        )
    record["state"] = current
    session.keystore.save_recovery_record(record)


def recipients(session: Session, certificates: Mapping[str, Certificate]) -> list[Recipient]:
    """The ``users`` of a root metadata write: the folder's users, plus the current offer.
    A member whose certificate is revoked gets nothing (CertificateRevokedError)."""
    from client.ops.revocation import check_recipients

    check_recipients(session, certificates)
    out = [Recipient(u, cert.pem) for u, cert in certificates.items() if not is_recovery_id(u)]
    extra = offer(session).recipient()
    if extra is not None:
        out.append(extra)
    return out


def written(session: Session, file_id: int, path: str, users: list[Recipient]) -> None:
    """After a root write: warn, once per folder, that the recovery key can read it."""
    state = session.recovery
    if state is None or not any(is_recovery_id(r.user_id) for r in users):
        return
    record = session.keystore.recovery_record()
    warned = dict(record.get("warned", {}))
    if warned.get(str(file_id)) == state.fingerprint:
        return
    session.notify(
        f"e2ee: WARNING: recovery is enabled on this server. The administrator's offline "
        f"recovery key ({state.user_id}, safety number {state.safety_number}) can decrypt "
        f"everything in {path!r} from now on, including the files already in it."
    )
    warned[str(file_id)] = state.fingerprint
    record["warned"] = warned
    session.keystore.save_recovery_record(record)


def status(keystore: Keystore, capabilities: Mapping[str, Any]) -> dict[str, Any]:
    """For `e2ee status`: what the server offers and which folders were written for it."""
    server_key = keystore.pinned_server_key()
    record = keystore.recovery_record()
    info: dict[str, Any] = {
        "enabled": False,
        "pinned": record.get("certificate") is not None,
        "folders_warned": len(record.get("warned", {})),
    }
    if server_key is None:
        return info
    try:
        state = check_offer(keystore, capabilities, server_key, pin=False)
    except CertificateError as exc:  # a changed or bad offer: shown, not pinned
        return {**info, "refused": f"{type(exc).__name__}: {exc}"}
    if state.enabled:
        info.update(enabled=True, id=state.user_id, fingerprint=state.safety_number)
    return info
