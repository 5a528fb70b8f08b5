"""CSR checks shared by the web process (fast answers) and the worker (the policy itself)."""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from server.errors import BadRequest, Forbidden

MIN_RSA_BITS = 2048


def common_name(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if len(values) == 1 else None


def rsa_key_checked(public_key: object) -> rsa.RSAPublicKey:
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise BadRequest("Only RSA keys are supported")
    if public_key.key_size < MIN_RSA_BITS:
        raise BadRequest(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    return public_key


def csr_validate(*, pem: str, expected_cn: str) -> x509.CertificateSigningRequest:
    """Parse the CSR, check its self-signature, its CN and its key; raise the API error."""
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
    except ValueError:
        raise BadRequest("Could not parse the certificate signing request") from None
    public_key = rsa_key_checked(csr.public_key())
    if not _self_signature_valid(csr, public_key):
        raise BadRequest("The certificate signing request's signature is invalid")
    if common_name(csr.subject) != expected_cn:
        raise Forbidden("Common name (CN) does not match the current user")
    return csr


def csr_digest(csr: x509.CertificateSigningRequest) -> str:
    """Identifies a CSR whatever its PEM line breaks: SHA-256 of its DER."""
    return hashlib.sha256(csr.public_bytes(serialization.Encoding.DER)).hexdigest()


def _self_signature_valid(
    csr: x509.CertificateSigningRequest, public_key: rsa.RSAPublicKey
) -> bool:
    """Proof of possession. cryptography no longer verifies SHA-1 CSRs, which early desktop
    builds sent; the self-signature only proves key possession (we sign with SHA-256), so
    check those directly."""
    if not isinstance(csr.signature_hash_algorithm, hashes.SHA1):
        return csr.is_signature_valid
    try:
        public_key.verify(
            csr.signature,
            csr.tbs_certrequest_bytes,
            padding.PKCS1v15(),
            hashes.SHA1(),  # noqa: S303
        )
    except InvalidSignature:
        return False
    return True
