"""RSA user keys, CSRs, certificates and RSA-OAEP key wrapping (PROTOCOL.md §1.1, §1.4).

Nextcloud certificates have serial number 0, which `cryptography` warns about and will reject,
so certificates are parsed with asn1crypto and only their signature, key and fields are handed to
`cryptography` primitives.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from client.errors import (
    CertificateKeyMismatchError,
    CertificateNotIssuedByServerError,
    CertificateNotValidNowError,
    CertificateUserMismatchError,
    FormatError,
    KeyMismatchError,
    KeyUnwrapError,
)

RSA_KEY_SIZE = 2048
#: The web client accepts ±60 s of clock skew on validity dates.
CLOCK_SKEW = timedelta(seconds=60)
_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
#: Hash names (asn1crypto spelling) accepted in certificate and CMS signatures.
HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", re.S)


# --- key pairs -------------------------------------------------------------------------------


def generate_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_SIZE)


def private_key_to_pem(private_key: rsa.RSAPrivateKey) -> str:
    """PKCS#8 PEM, unencrypted (what every client stores inside the mnemonic wrapping)."""
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def public_key_to_pem(public_key: rsa.RSAPublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def _pem_or_base64_der(data: str | bytes, label: str) -> bytes:
    """DER from PEM (any line width, trailing newline optional) or bare base64 DER (Android)."""
    text = data.decode("ascii", "replace") if isinstance(data, bytes) else data
    match = _PEM_BLOCK.search(text)
    body = match.group(2) if match else text
    if match and label not in match.group(1):
        raise FormatError(f"expected a PEM {label} block, got {match.group(1)}")
    try:
        return base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError(f"{label}: invalid base64") from exc


def load_private_key(data: str | bytes, *, checked: bool = True) -> rsa.RSAPrivateKey:
    """Load an unencrypted RSA private key: PKCS#8/PKCS#1 PEM or base64 PKCS#8 DER.
    ``checked=False`` skips OpenSSL's consistency check of an RSA key (~30 ms): only for a key
    this device stored itself after loading it checked (the keystore's own file)."""
    der = _pem_or_base64_der(data, "PRIVATE KEY")
    try:
        key = serialization.load_der_private_key(
            der, password=None, unsafe_skip_rsa_key_validation=not checked
        )
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise FormatError("not a readable private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise FormatError("private key is not RSA")
    return key


def load_public_key(data: str | bytes) -> rsa.RSAPublicKey:
    """Load a bare SubjectPublicKeyInfo (what ``GET /server-key`` returns)."""
    der = _pem_or_base64_der(data, "PUBLIC KEY")
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise FormatError("not a readable public key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise FormatError("public key is not RSA")
    return key


def same_public_key(a: rsa.RSAPublicKey, b: rsa.RSAPublicKey) -> bool:
    return a.public_numbers() == b.public_numbers()


def check_key_pair(private_key: rsa.RSAPrivateKey, public_key: rsa.RSAPublicKey) -> None:
    if not same_public_key(private_key.public_key(), public_key):
        raise KeyMismatchError("private key does not match the public key")


def build_csr(private_key: rsa.RSAPrivateKey, user_id: str) -> str:
    """PKCS#10 CSR (PEM) whose subject CN is the user id, signed with SHA-256."""
    if not user_id:
        raise FormatError("user id must not be empty")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id)])
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .sign(private_key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


# --- RSA-OAEP (§1.4) -----------------------------------------------------------------------


def rsa_wrap(public_key: rsa.RSAPublicKey, key: bytes) -> bytes:
    """RSA-OAEP with SHA-256 and MGF1-SHA-256, empty label."""
    return public_key.encrypt(key, _OAEP)


def rsa_unwrap(private_key: rsa.RSAPrivateKey, wrapped: bytes) -> bytes:
    try:
        return private_key.decrypt(wrapped, _OAEP)
    except ValueError as exc:  # one uniform failure for every padding error (THREATS K9)
        raise KeyUnwrapError("RSA-OAEP unwrapping failed") from exc


# --- certificates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    """The fields of a user certificate the protocol relies on, parsed without `cryptography`."""

    der: bytes = field(repr=False)
    common_name: str | None
    not_before: datetime
    not_after: datetime
    serial_number: int
    public_key: rsa.RSAPublicKey = field(repr=False, compare=False)
    tbs_der: bytes = field(repr=False, compare=False)
    signature: bytes = field(repr=False, compare=False)
    signature_hash: str | None = field(compare=False)

    @property
    def pem(self) -> str:
        return asn1_pem.armor("CERTIFICATE", self.der).decode("ascii")


def load_certificate(data: str | bytes) -> Certificate:
    """Parse an X.509 certificate from PEM or DER (serial 0 and issuer = subject allowed)."""
    der = data if isinstance(data, bytes) and data[:1] == b"\x30" else None
    if der is None:
        der = _pem_or_base64_der(data, "CERTIFICATE")
    try:
        cert = asn1_x509.Certificate.load(der, strict=True)
        tbs = cert["tbs_certificate"]
        validity = tbs["validity"]
        algorithm = cert["signature_algorithm"]
        signature_hash = (
            algorithm.hash_algo if algorithm.signature_algo == "rsassa_pkcs1v15" else None
        )
        cn = cert.subject.native.get("common_name")
        if isinstance(cn, list):  # several CN attributes: ambiguous identity, take none
            cn = None
        public_key = serialization.load_der_public_key(cert.public_key.dump())
        return Certificate(
            der=der,
            common_name=cn,
            not_before=validity["not_before"].native,
            not_after=validity["not_after"].native,
            serial_number=cert.serial_number,
            public_key=_require_rsa(public_key),
            tbs_der=tbs.dump(),
            signature=cert["signature_value"].native,
            signature_hash=signature_hash,
        )
    except FormatError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, UnsupportedAlgorithm) as exc:
        raise FormatError("not a readable X.509 certificate") from exc


def _require_rsa(key: object) -> rsa.RSAPublicKey:
    if not isinstance(key, rsa.RSAPublicKey):
        raise FormatError("certificate key is not RSA")
    return key


def verify_certificate_issued_by(cert: Certificate, server_public_key: rsa.RSAPublicKey) -> None:
    """Verify the certificate's signature with the bare server key (no chain building)."""
    hash_cls = HASHES.get(cert.signature_hash or "")
    if hash_cls is None:
        raise CertificateNotIssuedByServerError("certificate signature algorithm not accepted")
    try:
        server_public_key.verify(cert.signature, cert.tbs_der, padding.PKCS1v15(), hash_cls())
    except InvalidSignature as exc:
        raise CertificateNotIssuedByServerError(
            f"certificate for {cert.common_name!r} is not signed by the server key"
        ) from exc


def verify_certificate(
    cert: Certificate,
    *,
    server_public_key: rsa.RSAPublicKey,
    user_id: str,
    now: datetime,
    expected_public_key: rsa.RSAPublicKey | None = None,
) -> None:
    """All certificate checks of PROTOCOL.md §1.1 / §8.1; raises the specific error."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    verify_certificate_issued_by(cert, server_public_key)
    if cert.common_name != user_id:
        raise CertificateUserMismatchError(
            f"certificate CN {cert.common_name!r} does not match user {user_id!r}"
        )
    if not cert.not_before - CLOCK_SKEW <= now <= cert.not_after + CLOCK_SKEW:
        raise CertificateNotValidNowError(f"certificate for {user_id!r} is not valid now")
    if expected_public_key is not None and not same_public_key(
        cert.public_key, expected_public_key
    ):
        raise CertificateKeyMismatchError(f"certificate for {user_id!r} certifies another key")
