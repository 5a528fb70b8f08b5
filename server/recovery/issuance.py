"""The signing worker's side: the recovery key's policy and its certificate, signed by the
same CA (HSM or software) as every user certificate.

Policy, applied here whatever the command checked before:
- the CSR is valid (self-signature, RSA >= 2048 bits) and its CN is ``recovery:`` followed by
  the first 16 hex digits of SHA-256 of its own public key: an id no user can have;
- the key is not certified for any user or link share;
- no other recovery key is enabled.

Profile as user certificates (issuer DN = subject DN, 7300 days, SHA-256, random serial) but
KeyUsage keyEncipherment only: the recovery key opens metadata keys, it never signs."""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.db import transaction
from django.utils import timezone

from hsm.signer import key_fingerprint
from server.audit.services import audit_record
from server.certificates.issuance import certificate_build, signer_checked
from server.certificates.models import Certificate
from server.certificates.validation import common_name, csr_validate, rsa_key_checked
from server.errors import APIError, BadRequest, Conflict

from .models import RecoveryKey

PREFIX = "recovery:"
ID_HEX_DIGITS = 16


def recovery_id_for(spki_sha256: str) -> str:
    return PREFIX + spki_sha256[:ID_HEX_DIGITS]


def csr_checked(pem: str) -> tuple[x509.CertificateSigningRequest, str, str]:
    """(CSR, recovery id, SPKI SHA-256) of an acceptable recovery CSR; raises the API error."""
    try:
        parsed = x509.load_pem_x509_csr(pem.encode())
    except ValueError:
        raise BadRequest("Could not parse the certificate signing request") from None
    spki = key_fingerprint(rsa_key_checked(parsed.public_key()))
    expected = recovery_id_for(spki)
    if common_name(parsed.subject) != expected:
        raise BadRequest(
            f"A recovery CSR must have the common name {expected!r} (bound to its key); "
            "make it with `e2ee recovery create`"
        )
    csr = csr_validate(pem=pem, expected_cn=expected)
    if Certificate.objects.filter(spki_sha256=spki).exists():
        raise Conflict("This public key is certified for a user; a recovery key must be new")
    return csr, expected, spki


def recovery_sign(*, recovery_key_id: int) -> RecoveryKey | None:
    """Apply the policy and sign one pending request. Idempotent: a decided row is left as it
    is. A signer failure (SignerError) rolls back and leaves the row pending."""
    signer = signer_checked()
    with transaction.atomic():
        row = RecoveryKey.objects.select_for_update().filter(pk=recovery_key_id).first()
        if row is None or row.status != RecoveryKey.Status.PENDING:
            return row
        now = timezone.now()
        try:
            csr, key_id, spki = csr_checked(row.csr_pem)
            if key_id != row.key_id or spki != row.spki_sha256:
                raise BadRequest("The request does not match its CSR")
            if (
                RecoveryKey.objects.filter(
                    status=RecoveryKey.Status.ISSUED, disabled_at__isnull=True
                )
                .exclude(pk=row.pk)
                .exists()
            ):
                raise Conflict("Another recovery key is enabled; disable it first")
            certificate = certificate_build(signer=signer, csr=csr, now=now, can_sign=False)
        except APIError as refusal:
            row.status = RecoveryKey.Status.REFUSED
            row.refusal_message = str(refusal.detail)[:300]
        else:
            der = certificate.public_bytes(serialization.Encoding.DER)
            row.status = RecoveryKey.Status.ISSUED
            row.certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
            row.fingerprint = hashlib.sha256(der).hexdigest()
            row.serial = format(certificate.serial_number, "x")
            row.enabled_at = now
        row.save()
    issued = row.status == RecoveryKey.Status.ISSUED
    audit_record(
        actor="system",
        action="recovery.certificate_issue",
        target=row.key_id,
        outcome="success" if issued else "denied",
        details={"serial": row.serial} if issued else {"reason": row.refusal_message},
    )
    return row
