"""The Signer contract every CA backend meets.

A backend hands out an object that passes for a `cryptography` RSA private key, so
`CertificateBuilder.sign()` and the audit checkpoints work unchanged whatever holds the key.
"""

from __future__ import annotations

import hashlib
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class SignerError(Exception):
    """The signing key cannot be reached or refused to sign; the message names the cause."""


@runtime_checkable
class Signer(Protocol):
    backend: str

    def private_key(self) -> rsa.RSAPrivateKey:
        """A key object for `CertificateBuilder.sign()`; the key material may never leave it."""

    def public_key(self) -> rsa.RSAPublicKey: ...


def public_key_pem(signer: Signer) -> str:
    """The bare SubjectPublicKeyInfo PEM clients pin as the server key."""
    return (
        signer.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def key_fingerprint(public_key: rsa.RSAPublicKey) -> str:
    """Lower-case hex SHA-256 of the DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def sign_bytes(signer: Signer, data: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 / SHA-256 over `data` (audit checkpoints)."""
    return signer.private_key().sign(data, padding.PKCS1v15(), hashes.SHA256())
