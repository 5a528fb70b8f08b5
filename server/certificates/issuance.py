"""The signing worker's side of issuance: the policy and the signature. Runs where the CA key
is (the `hsm` queue's worker; or the web process in the explicit inline mode with a software
CA). Profile as Nextcloud issues them (issuer DN = subject DN, 7300 days, SHA-256), but with a
random positive serial instead of 0.

Policy, enforced here whatever the view checked before:
- the CSR is valid, CN = the identity, RSA >= 2048 bits;
- a public key certified for another identity is refused;
- one live certificate per identity; a replacement only with an admin-approved re-key request,
  which the issued order consumes. "Replacement" covers an identity whose certificate was
  deleted (DELETE public-key) or revoked too: a key never changes without an admin.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from hsm.signer import Signer, key_fingerprint
from server.accounts.models import User
from server.audit.services import audit_append_many
from server.errors import APIError, Conflict, Forbidden

from .authority import ca_verify
from .models import Certificate, CertificateOrder, RekeyRequest
from .services import NEW_KEY_REFUSED, REPLACEMENT_REFUSED
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


@dataclass
class _Decision:
    """What the policy allows: the CSR to sign, and the live certificate plus the approved
    re-key request it consumes when this issuance replaces one."""

    csr: x509.CertificateSigningRequest
    replaced: Certificate | None = None
    rekey: RekeyRequest | None = None


def _policy_checked(order: CertificateOrder) -> _Decision:
    """Every check, reading only (with row locks): a refusal leaves nothing to undo."""
    user = order.user
    if not user.is_active:
        raise Forbidden("The account is disabled")
    if order.key_owner != user.username and not order.key_owner.startswith("s:"):
        raise Forbidden("Common name (CN) does not match the current user")
    csr = csr_validate(pem=order.csr_pem, expected_cn=order.key_owner)
    spki = key_fingerprint(rsa_key_checked(csr.public_key()))
    # One query: this key certified for anyone else (ever), and this identity's certificates.
    found = list(
        Certificate.objects.select_for_update()
        .filter(Q(spki_sha256=spki) | Q(key_owner=order.key_owner))
        .only("pk", "key_owner", "deleted_at")
    )
    if any(found_one.key_owner != order.key_owner for found_one in found):
        raise Conflict("This public key is already certified for another user")
    if not found:
        return _Decision(csr)
    live = next((c for c in found if c.deleted_at is None), None)
    rekey = (
        RekeyRequest.objects.select_for_update()
        .filter(key_owner=order.key_owner, approved_at__isnull=False, consumed_by=None)
        .order_by("approved_at")
        .first()
    )
    if rekey is None:
        raise Conflict(REPLACEMENT_REFUSED if live is not None else NEW_KEY_REFUSED)
    return _Decision(csr, replaced=live, rekey=rekey)


#: Orders one signing transaction decides at most: the requested one plus pending ones no other
#: worker holds. One commit, one audit-chain lock and bulk writes then serve them all.
BATCH = 16


def order_fulfil(*, order_id: int) -> CertificateOrder | None:
    """Decide this one order (see `orders_fulfil`); its state afterwards, None if gone."""
    orders_fulfil(order_id=order_id, batch=1)
    return CertificateOrder.objects.select_related("certificate").filter(pk=order_id).first()


def orders_fulfil(*, order_id: int, batch: int = BATCH) -> list[CertificateOrder]:
    """Apply the policy and sign `order_id` and, in the same transaction, up to `batch` - 1
    other pending orders; returns the orders decided. Idempotent: an order that is no longer
    pending (or gone) is left as it is, so a redelivered or repeated task changes nothing (the
    tasks of the orders decided here find them decided). Refusals are recorded on the order; a
    signer failure (SignerError) rolls everything back and leaves the orders pending. Decisions,
    certificates and their audit events commit together."""
    signer = signer_checked()
    try:
        return _fulfil(order_id, signer, batch)
    except IntegrityError:
        # A certificate for one of these identities was stored meanwhile (PUT public-key):
        # decide this order alone, from scratch; the policy now sees it.
        return _fulfil(order_id, signer, 1)


def _locked_pending(order_id: int, batch: int) -> list[CertificateOrder]:
    pending = CertificateOrder.objects.select_for_update(of=("self",)).select_related("user")
    first = pending.filter(pk=order_id, status=CertificateOrder.Status.PENDING).first()
    if first is None:
        return []
    if batch <= 1:
        return [first]
    others = list(
        pending.select_for_update(of=("self",), skip_locked=True)
        .filter(status=CertificateOrder.Status.PENDING)
        .exclude(pk=order_id)
        .order_by("pk")[: batch - 1]
    )
    return [first, *others]


def _fulfil(order_id: int, signer: Signer, batch: int) -> list[CertificateOrder]:
    with transaction.atomic():
        orders = _locked_pending(order_id, batch)
        if not orders:
            return []
        now = timezone.now()
        decided: list[CertificateOrder] = []
        new: list[tuple[CertificateOrder, Certificate]] = []
        owners: set[str] = set()
        for order in orders:
            if order.key_owner in owners:
                continue  # a second order of one identity waits for its own task
            owners.add(order.key_owner)
            try:
                decision = _policy_checked(order)
                built = certificate_build(signer=signer, csr=decision.csr, now=now)
                spki = key_fingerprint(rsa_key_checked(built.public_key()))
                if any(certificate.spki_sha256 == spki for _, certificate in new):
                    continue  # one key in two orders of this batch: judged by its own task
            except APIError as refusal:
                order.status = CertificateOrder.Status.REFUSED
                order.refusal_status = refusal.status_code
                order.refusal_message = str(refusal.detail)[:300]
                log.info("certificate order %s refused: %s", order.pk, order.refusal_message)
            else:
                if decision.replaced is not None:
                    decision.replaced.deleted_at = now  # replaced; the row stays as history
                    decision.replaced.save(update_fields=["deleted_at"])
                if decision.rekey is not None:
                    decision.rekey.consumed_by = order
                    decision.rekey.save(update_fields=["consumed_by"])
                order.status = CertificateOrder.Status.ISSUED
                new.append(
                    (
                        order,
                        Certificate(
                            key_owner=order.key_owner,
                            user=order.user,
                            pem=built.public_bytes(serialization.Encoding.PEM).decode(),
                            serial=format(built.serial_number, "x"),
                            spki_sha256=spki,
                            issued_by_server=True,
                        ),
                    )
                )
            order.finished_at = now
            order.last_error = ""
            decided.append(order)
        Certificate.objects.bulk_create([certificate for _, certificate in new])
        for order, certificate in new:
            order.certificate = certificate
            log.info("certificate order %s issued serial %s", order.pk, certificate.serial)
        CertificateOrder.objects.bulk_update(
            decided,
            [
                "status",
                "certificate",
                "refusal_status",
                "refusal_message",
                "finished_at",
                "last_error",
            ],
        )
        audit_append_many([_audit_event(order) for order in decided])
    return decided


def _audit_event(order: CertificateOrder) -> dict[str, Any]:
    """Every decision of the worker, appended in the transaction that records it."""
    issued = order.status == CertificateOrder.Status.ISSUED
    details: dict[str, object] = {"order": order.pk}
    if issued and order.certificate is not None:
        details["serial"] = order.certificate.serial
    else:
        details["status"] = order.refusal_status
        details["reason"] = order.refusal_message
    return {
        "actor": "system",
        "action": "certificate.issue",
        "target": f"key:{order.key_owner}",
        "outcome": "success" if issued else "denied",
        "details": details,
    }


def order_failure_record(*, order_id: int, message: str) -> None:
    """Note why the worker could not sign (no secrets: SignerError messages never hold any)."""
    CertificateOrder.objects.filter(pk=order_id, status=CertificateOrder.Status.PENDING).update(
        last_error=message[:300]
    )
