"""Certificate issuance and storage. Profile as Nextcloud issues them (issuer DN = subject DN,
7300 days, SHA-256), but with a random positive serial instead of 0."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.db import IntegrityError, transaction
from django.utils import timezone

from hsm.signer import key_fingerprint
from server.accounts.models import User
from server.errors import BadRequest, Conflict, Forbidden, NotFound

from .models import Certificate
from .selectors import certificate_exists
from .signing import signer_get

VALIDITY = datetime.timedelta(days=7300)
# Clients with a slightly fast clock must not see a "not yet valid" certificate.
BACKDATE = datetime.timedelta(minutes=5)
MIN_RSA_BITS = 2048


def _common_name(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if len(values) == 1 else None


def _rsa_key_checked(public_key: object) -> rsa.RSAPublicKey:
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
    public_key = _rsa_key_checked(csr.public_key())
    if not _self_signature_valid(csr, public_key):
        raise BadRequest("The certificate signing request's signature is invalid")
    if _common_name(csr.subject) != expected_cn:
        raise Forbidden("Common name (CN) does not match the current user")
    return csr


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
            csr.signature, csr.tbs_certrequest_bytes, padding.PKCS1v15(), hashes.SHA1()  # noqa: S303
        )
    except InvalidSignature:
        return False
    return True


def certificate_build(
    *, csr: x509.CertificateSigningRequest, now: datetime.datetime
) -> x509.Certificate:
    signer = signer_get()
    public_key = _rsa_key_checked(csr.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(csr.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=True,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
    )
    return builder.sign(signer.private_key(), hashes.SHA256())


def _store(
    *, user: User, key_owner: str, certificate: x509.Certificate, issued_by_server: bool
) -> Certificate:
    try:
        with transaction.atomic():
            return Certificate.objects.create(
                key_owner=key_owner,
                user=user,
                pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
                serial=format(certificate.serial_number, "x"),
                spki_sha256=key_fingerprint(_rsa_key_checked(certificate.public_key())),
                issued_by_server=issued_by_server,
            )
    except IntegrityError:
        raise Conflict("A public key already exists") from None


def certificate_issue(*, user: User, key_owner: str, csr_pem: str) -> Certificate:
    csr = csr_validate(pem=csr_pem, expected_cn=key_owner)
    if certificate_exists(key_owner=key_owner):
        raise Conflict("A public key already exists")
    certificate = certificate_build(csr=csr, now=timezone.now())
    return _store(user=user, key_owner=key_owner, certificate=certificate, issued_by_server=True)


def certificate_store_external(*, user: User, key_owner: str, pem: str) -> Certificate:
    """PUT public-key: a certificate issued elsewhere (hardware token); CN must match."""
    if not pem.lstrip().startswith("-----BEGIN CERTIFICATE-----"):
        raise BadRequest("The public key must be a PEM certificate")
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise BadRequest("Could not parse the certificate") from None
    if _common_name(certificate.subject) != key_owner:
        raise BadRequest("Common name (CN) does not match the current user")
    if certificate_exists(key_owner=key_owner):
        raise Conflict("A public key already exists")
    return _store(user=user, key_owner=key_owner, certificate=certificate, issued_by_server=False)


def certificate_delete(*, key_owner: str) -> None:
    updated = Certificate.objects.filter(key_owner=key_owner, deleted_at__isnull=True).update(
        deleted_at=timezone.now()
    )
    if not updated:
        raise NotFound("No public key found")
