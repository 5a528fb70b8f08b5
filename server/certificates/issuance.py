"""The signing worker's side of issuance: the policy and the signature. Runs where the CA key
is (the `hsm` queue's worker; or the web process in the explicit inline mode with a software
CA). Profile as Nextcloud issues them (issuer DN = subject DN, 7300 days, SHA-256), but with a
random positive serial instead of 0.

Policy, enforced here whatever the view checked before:
- the CSR is valid, CN = the identity, RSA >= 2048 bits;
- a public key certified for another identity is refused;
- one live certificate per identity; a replacement only with an admin-approved re-key request,
  which the issued order consumes.
"""

from __future__ import annotations

import datetime
import logging
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from django.db import IntegrityError, transaction
from django.utils import timezone

from hsm.signer import Signer, key_fingerprint
from server.accounts.models import User
from server.audit.services import audit_record
from server.errors import APIError, Conflict, Forbidden

from .authority import ca_verify
from .models import Certificate, CertificateOrder, RekeyRequest
from .signing import signer_get
from .validation import csr_validate, rsa_key_checked

log = logging.getLogger(__name__)

VALIDITY = datetime.timedelta(days=7300)
# Clients with a slightly fast clock must not see a "not yet valid" certificate.
BACKDATE = datetime.timedelta(minutes=5)

_verified_in: set[tuple[int, int]] = set()  # (process, signer) pairs checked against the CA


def certificate_build(
    *,
    signer: Signer,
    csr: x509.CertificateSigningRequest,
    now: datetime.datetime,
    can_sign: bool = True,
) -> x509.Certificate:
    """Nextcloud's profile (issuer DN = subject DN, 7300 days, SHA-256) with a random serial.
    `can_sign=False` makes an encrypt-only certificate (the recovery key never signs)."""
    public_key = rsa_key_checked(csr.public_key())
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
                digital_signature=can_sign,
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
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
            critical=False,
        )
    )
    return builder.sign(signer.private_key(), hashes.SHA256())


def certificate_store(
    *, user: User, key_owner: str, certificate: x509.Certificate, issued_by_server: bool
) -> Certificate:
    try:
        with transaction.atomic():
            return Certificate.objects.create(
                key_owner=key_owner,
                user=user,
                pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
                serial=format(certificate.serial_number, "x"),
                spki_sha256=key_fingerprint(rsa_key_checked(certificate.public_key())),
                issued_by_server=issued_by_server,
            )
    except IntegrityError:
        raise Conflict("A public key already exists") from None


def signer_checked() -> Signer:
    signer = signer_get()
    if (os.getpid(), id(signer)) not in _verified_in:
        ca_verify(signer=signer)
        _verified_in.add((os.getpid(), id(signer)))
    return signer


def _policy_checked(
    order: CertificateOrder, now: datetime.datetime
) -> x509.CertificateSigningRequest:
    user = order.user
    if not user.is_active:
        raise Forbidden("The account is disabled")
    if order.key_owner != user.username and not order.key_owner.startswith("s:"):
        raise Forbidden("Common name (CN) does not match the current user")
    csr = csr_validate(pem=order.csr_pem, expected_cn=order.key_owner)
    spki = key_fingerprint(rsa_key_checked(csr.public_key()))
    if Certificate.objects.filter(spki_sha256=spki).exclude(key_owner=order.key_owner).exists():
        raise Conflict("This public key is already certified for another user")
    live = (
        Certificate.objects.select_for_update()
        .filter(key_owner=order.key_owner, deleted_at__isnull=True)
        .first()
    )
    if live is not None:
        rekey = (
            RekeyRequest.objects.select_for_update()
            .filter(key_owner=order.key_owner, approved_at__isnull=False, consumed_by=None)
            .order_by("approved_at")
            .first()
        )
        if rekey is None:
            raise Conflict("A public key already exists")
        live.deleted_at = now  # replaced; the row stays as history
        live.save(update_fields=["deleted_at"])
        rekey.consumed_by = order
        rekey.save(update_fields=["consumed_by"])
    return csr


def order_fulfil(*, order_id: int) -> CertificateOrder | None:
    """Apply the policy and sign one order. Idempotent: an order that is no longer pending (or
    gone) is left as it is, so a redelivered or repeated task changes nothing. Refusals are
    recorded on the order; a signer failure (SignerError) rolls everything back and leaves the
    order pending for the next attempt."""
    signer = signer_checked()
    with transaction.atomic():
        order = (
            CertificateOrder.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(pk=order_id)
            .first()
        )
        if order is None or order.status != CertificateOrder.Status.PENDING:
            return order
        now = timezone.now()
        try:
            with transaction.atomic():  # a refusal undoes a half-applied replacement
                csr = _policy_checked(order, now)
                certificate = certificate_store(
                    user=order.user,
                    key_owner=order.key_owner,
                    certificate=certificate_build(signer=signer, csr=csr, now=now),
                    issued_by_server=True,
                )
        except APIError as refusal:
            order.status = CertificateOrder.Status.REFUSED
            order.refusal_status = refusal.status_code
            order.refusal_message = str(refusal.detail)[:300]
            log.info("certificate order %s refused: %s", order.pk, order.refusal_message)
        else:
            order.status = CertificateOrder.Status.ISSUED
            order.certificate = certificate
            log.info("certificate order %s issued serial %s", order.pk, certificate.serial)
        order.finished_at = now
        order.last_error = ""
        order.save()
    _audit(order)
    return order


def _audit(order: CertificateOrder) -> None:
    """Every decision of the worker, outside its transaction (the audit log's rule)."""
    issued = order.status == CertificateOrder.Status.ISSUED
    details: dict[str, object] = {"order": order.pk}
    if issued and order.certificate is not None:
        details["serial"] = order.certificate.serial
    else:
        details["status"] = order.refusal_status
        details["reason"] = order.refusal_message
    audit_record(
        actor="system",
        action="certificate.issue",
        target=f"key:{order.key_owner}",
        outcome="success" if issued else "denied",
        details=details,
    )


def order_failure_record(*, order_id: int, message: str) -> None:
    """Note why the worker could not sign (no secrets: SignerError messages never hold any)."""
    CertificateOrder.objects.filter(pk=order_id, status=CertificateOrder.Status.PENDING).update(
        last_error=message[:300]
    )
