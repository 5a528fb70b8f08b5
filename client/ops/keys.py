"""Certificates of users: fetched, verified against the pinned server key, refused when the
CA-signed revoked list names them (CertificateRevokedError), pinned at first sight (a later
change raises CertificateChangedError), and safety numbers to compare out of band."""

from __future__ import annotations

import hmac
import re

from client import crypto
from client.crypto.keys import Certificate
from client.errors import FingerprintMismatchError, ServerError
from client.keystore import fingerprint
from client.ops import revocation
from client.ops.session import Session, now


def trust_certificate(session: Session, user: str, pem: str) -> Certificate:
    """Verify ``pem`` as ``user``'s certificate (server key, CN, dates, not revoked); pin it."""
    cert = crypto.load_certificate(pem)
    crypto.verify_certificate(cert, server_public_key=session.server_key, user_id=user, now=now())
    revocation.check_certificate(session, user, cert)
    session.keystore.pin_certificate(user, cert)
    return cert


def certificate_of(session: Session, user: str) -> Certificate:
    """The verified, pinned certificate of ``user`` as the server serves it now."""
    keys = session.api.public_keys([user])
    pem = keys.get(user)
    if pem is None:
        raise ServerError(f"the server has no certificate for {user!r}")
    return trust_certificate(session, user, pem)


def key_fingerprint(session: Session, user: str | None = None) -> tuple[str, str]:
    """(user, safety number) of ``user`` (default: ourselves), from the pinned certificate."""
    user = user or session.user
    if user == session.user:
        return user, fingerprint(session.identity.certificate)
    pinned = session.keystore.pinned_certificate(user)
    cert = pinned if pinned is not None else certificate_of(session, user)
    # Even with a pin, compare with what the server serves now: a change must surface.
    if pinned is not None:
        certificate_of(session, user)
    return user, fingerprint(cert)


def _normalise(value: str) -> str:
    return re.sub(r"[^0-9a-f]", "", value.lower())


def key_verify(session: Session, user: str, expected: str) -> str:
    """Compare a safety number read out of band; raises FingerprintMismatchError."""
    _, actual = key_fingerprint(session, user)
    if not hmac.compare_digest(_normalise(actual), _normalise(expected)):
        raise FingerprintMismatchError(f"the safety number of {user!r} does not match")
    return actual
