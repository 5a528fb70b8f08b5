"""The offline administrator recovery key (ARCHITECTURE.md "Offline recovery key").

An extra recipient of root metadata: a ``users`` entry whose id, ``recovery:<16 hex>``, can
never be a real user id (``:`` is not allowed in user ids, as for ``s:<token>`` link shares).
The hex digits are the first 16 of the SHA-256 of the key's SubjectPublicKeyInfo, so the id
is bound to the key. Its certificate is issued by the server's CA like a user's, but for key
encipherment only: the recovery key reads, it never signs metadata.

The private key is kept offline, wrapped exactly like a user key (PBKDF2-HMAC-SHA256/600000,
AES-256-GCM, :mod:`.keywrap`) under a 24-word phrase.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from client.crypto.keys import (
    Certificate,
    build_csr,
    generate_private_key,
    verify_certificate,
)
from client.crypto.keywrap import RECOVERY_WORDS, generate_mnemonic, wrap_private_key
from client.errors import RecoveryKeyPolicyError

RECOVERY_PREFIX = "recovery:"
ID_HEX_DIGITS = 16


def is_recovery_id(user_id: str) -> bool:
    return user_id.startswith(RECOVERY_PREFIX)


def spki_sha256(public_key: rsa.RSAPublicKey) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def recovery_id(public_key: rsa.RSAPublicKey) -> str:
    """``recovery:`` + the first 16 hex digits of SHA-256(SPKI): the id is bound to the key."""
    return RECOVERY_PREFIX + spki_sha256(public_key)[:ID_HEX_DIGITS]


def certificate_sha256(cert: Certificate) -> str:
    """The recovery certificate's fingerprint as capabilities carry it: hex SHA-256 of the DER."""
    return hashlib.sha256(cert.der).hexdigest()


@dataclass(frozen=True)
class NewRecoveryKey:
    """What ``e2ee recovery create`` writes and shows; the phrase is never in a repr."""

    user_id: str
    wrapped: str  # ``b64(ct‖tag)|b64(iv)|b64(salt)``: the only copy of the private key
    csr_pem: str
    phrase: str = field(repr=False)


def create_recovery_key() -> NewRecoveryKey:
    """A fresh RSA-2048 key pair, wrapped under 24 fresh words, and the CSR for the server."""
    private_key = generate_private_key()
    phrase = generate_mnemonic(RECOVERY_WORDS)
    user_id = recovery_id(private_key.public_key())
    return NewRecoveryKey(
        user_id=user_id,
        wrapped=wrap_private_key(private_key, phrase).serialize(),
        csr_pem=build_csr(private_key, user_id),
        phrase=phrase,
    )


def _key_usage(cert: Certificate) -> frozenset[str]:
    value = asn1_x509.Certificate.load(cert.der).key_usage_value
    return frozenset(value.native) if value is not None else frozenset()


def verify_recovery_certificate(
    cert: Certificate, *, server_public_key: rsa.RSAPublicKey, now: datetime
) -> str:
    """Issued by the server key, CN = ``recovery:<prefix of its own key>``, valid now, key
    encipherment only. Returns the recovery id; raises a CertificateError subclass."""
    user_id = recovery_id(cert.public_key)
    verify_certificate(cert, server_public_key=server_public_key, user_id=user_id, now=now)
    usage = _key_usage(cert)
    if "key_encipherment" not in usage or "digital_signature" in usage:
        raise RecoveryKeyPolicyError(
            f"the certificate offered for {user_id!r} is not a key-encipherment-only certificate"
        )
    return user_id
