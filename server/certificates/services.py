"""Certificates, web side: take a CSR, record an order, queue the signing task after commit and
wait (bounded) for the worker's answer; store external certificates; delete; revoke; re-key.

The web process never signs: the signing worker (`tasks`) holds the CA key. Only the explicit
inline mode (E2EE_SIGNING = "inline", software CA only: tests and single-process development)
runs the worker's `issuance.order_fulfil` in this process."""

from __future__ import annotations

import time

from cryptography import x509
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, Subquery
from django.utils import timezone

from server.accounts.models import User
from server.errors import (
    APIError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
)

from . import notify
from .models import Certificate, CertificateOrder, CertificateRevocation, RekeyRequest
from .selectors import certificate_exists
from .validation import common_name, csr_digest, csr_validate

# Poll the order row: first after 2 ms, then 1.25x longer each time, at most 20 ms apart.
_POLL_FIRST, _POLL_FACTOR, _POLL_MAX = 0.002, 1.25, 0.02
_SIGNAL_MAX = 0.5  # with Redis: block on the worker's wake-up, re-reading the row this often
_REFUSALS: dict[int, type[APIError]] = {
    error.status_code: error for error in (BadRequest, Forbidden, Conflict, NotFound)
}


def signing_inline() -> bool:
    """True when this process signs itself (E2EE_SIGNING=inline, software CA only); False when
    the signing worker does; a misconfiguration is a 503, never a silent fallback."""
    if settings.E2EE_SIGNING == "worker":
        return False
    if settings.E2EE_SIGNING == "inline" and settings.E2EE_SIGNER == "software":
        return True
    raise ServiceUnavailable(
        "Certificate signing is misconfigured: inline signing works with the software CA only"
    )


def _dispatch(order: CertificateOrder) -> None:
    if signing_inline():
        from .authority import ca_ensure_software
        from .issuance import order_fulfil

        ca_ensure_software()
        order_fulfil(order_id=order.pk)
        return
    from .tasks import order_enqueue

    order_enqueue(order_id=order.pk)


#: Refusals of the one-key-per-identity policy (the view's pre-check and the worker's).
REPLACEMENT_REFUSED = "A public key already exists"
NEW_KEY_REFUSED = (
    "This identity had a certificate before: a new key needs a re-key request an admin approved"
)


def rekey_approved_exists(*, key_owner: str) -> bool:
    return RekeyRequest.objects.filter(
        key_owner=key_owner, approved_at__isnull=False, consumed_by=None
    ).exists()


def order_place(
    *, user: User, key_owner: str, csr: x509.CertificateSigningRequest, csr_pem: str
) -> CertificateOrder:
    """The order for this CSR, created and queued once; the same CSR again finds it (and
    queues it again while it is still pending: the task is idempotent)."""
    digest = csr_digest(csr)
    # One round trip: this CSR's order (if any), whether the identity ever had a certificate
    # and whether one is live (the worker judges again; this spares it hopeless orders).
    order_id, certified, live = User.objects.filter(pk=user.pk).values_list(
        Subquery(
            CertificateOrder.objects.filter(key_owner=key_owner, csr_sha256=digest).values("pk")[:1]
        ),
        Exists(Certificate.objects.filter(key_owner=key_owner)),
        Exists(Certificate.objects.filter(key_owner=key_owner, deleted_at__isnull=True)),
    )[0]
    existing = CertificateOrder.objects.get(pk=order_id) if order_id is not None else None
    if existing is None:
        if certified and not rekey_approved_exists(key_owner=key_owner):
            raise Conflict(REPLACEMENT_REFUSED if live else NEW_KEY_REFUSED)
        try:
            # One INSERT, committed by itself (no BEGIN/COMMIT round trips); the task is queued
            # once it is committed (at once, unless a caller's transaction is open).
            order = CertificateOrder.objects.create(
                user=user, key_owner=key_owner, csr_pem=csr_pem, csr_sha256=digest
            )
        except IntegrityError:  # the same CSR arrived twice at once
            existing = CertificateOrder.objects.get(key_owner=key_owner, csr_sha256=digest)
        else:
            if signing_inline():
                _dispatch(order)
            else:
                transaction.on_commit(lambda: _dispatch(order))
            return order
    if existing.status == CertificateOrder.Status.REFUSED:
        # Policy may allow it now (an approved re-key): let the worker judge again.
        CertificateOrder.objects.filter(
            pk=existing.pk, status=CertificateOrder.Status.REFUSED
        ).update(status=CertificateOrder.Status.PENDING, refusal_status=None, refusal_message="")
        existing.refresh_from_db()
    if existing.status == CertificateOrder.Status.PENDING:
        _dispatch(existing)
    return existing


def order_wait(*, order_id: int, timeout: float, known_pending: bool = False) -> CertificateOrder:
    """The order once the worker has decided, or ServiceUnavailable after `timeout` seconds.
    `known_pending`: the caller just read it pending, so with Redis wait for the wake-up first
    (it stays in Redis if the worker was quicker) instead of reading the row again."""
    deadline = time.monotonic() + timeout
    delay = _POLL_FIRST
    signalled = notify.enabled()
    if signalled and known_pending:
        notify.order_wait_signal(order_id=order_id, timeout=min(_SIGNAL_MAX, timeout))
    while True:
        order = CertificateOrder.objects.select_related("certificate").get(pk=order_id)
        if order.status != CertificateOrder.Status.PENDING:
            return order
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if signalled:  # woken by the worker; re-read the row at least every half second
            notify.order_wait_signal(order_id=order_id, timeout=min(_SIGNAL_MAX, remaining))
            continue
        time.sleep(min(delay, remaining))
        delay = min(delay * _POLL_FACTOR, _POLL_MAX)
    if order.last_error:
        raise ServiceUnavailable(
            "The certificate signing worker could not reach the CA key; your request is kept. "
            "Send the same CSR again later"
        )
    raise ServiceUnavailable(
        f"No certificate signing worker answered within {timeout:g} s; your request is kept. "
        "Send the same CSR again later to receive the certificate"
    )


def order_certificate(*, order: CertificateOrder) -> Certificate:
    """The issued certificate, or the worker's refusal as the API error."""
    if order.status == CertificateOrder.Status.REFUSED:
        error = _REFUSALS.get(order.refusal_status or 0, Conflict)
        raise error(order.refusal_message or None)
    certificate = order.certificate
    assert certificate is not None
    if certificate.deleted_at is not None:
        raise Conflict("This certificate request was used before; send a new one")
    return certificate


def certificate_issue(*, user: User, key_owner: str, csr_pem: str) -> Certificate:
    csr = csr_validate(pem=csr_pem, expected_cn=key_owner)
    order = order_place(user=user, key_owner=key_owner, csr=csr, csr_pem=csr_pem)
    if order.status == CertificateOrder.Status.PENDING:
        order = order_wait(
            order_id=order.pk, timeout=settings.E2EE_ISSUANCE_TIMEOUT, known_pending=True
        )
    else:
        order = CertificateOrder.objects.select_related("certificate").get(pk=order.pk)
    return order_certificate(order=order)


def certificate_store_external(*, user: User, key_owner: str, pem: str) -> Certificate:
    """PUT public-key: a certificate issued elsewhere (hardware token); CN must match."""
    from .issuance import certificate_store

    if not pem.lstrip().startswith("-----BEGIN CERTIFICATE-----"):
        raise BadRequest("The public key must be a PEM certificate")
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise BadRequest("Could not parse the certificate") from None
    if common_name(certificate.subject) != key_owner:
        raise BadRequest("Common name (CN) does not match the current user")
    if certificate_exists(key_owner=key_owner):
        raise Conflict("A public key already exists")
    return certificate_store(
        user=user, key_owner=key_owner, certificate=certificate, issued_by_server=False
    )


def certificate_delete(*, key_owner: str) -> None:
    updated = Certificate.objects.filter(key_owner=key_owner, deleted_at__isnull=True).update(
        deleted_at=timezone.now()
    )
    if not updated:
        raise NotFound("No public key found")


def certificate_revoke(*, certificate_id: int, admin: User, reason: str) -> CertificateRevocation:
    """Admin action: the serial is published as revoked and the certificate stops being served."""
    if not reason.strip():
        raise BadRequest("A revocation needs a reason")
    with transaction.atomic():
        certificate = Certificate.objects.select_for_update().get(pk=certificate_id)
        if hasattr(certificate, "revocation"):
            raise Conflict(f"Serial {certificate.serial} is already revoked")
        revocation = CertificateRevocation.objects.create(
            certificate=certificate, revoked_by=admin, reason=reason.strip()
        )
        if certificate.deleted_at is None:
            certificate.deleted_at = revocation.revoked_at
            certificate.save(update_fields=["deleted_at"])
        transaction.on_commit(revocation_list_dispatch)
    return revocation


def revocation_list_dispatch() -> None:
    """Have the CA sign a new edition of the revoked list (the worker, or inline here)."""
    if signing_inline():
        from .authority import ca_ensure_software
        from .issuance import signer_checked
        from .revocation import revocation_list_publish

        ca_ensure_software()
        revocation_list_publish(signer=signer_checked())
        return
    from .tasks import revocation_list_enqueue

    revocation_list_enqueue()


def rekey_request_create(*, key_owner: str, requested_by: User, reason: str) -> RekeyRequest:
    if not reason.strip():
        raise BadRequest("A re-key request needs a reason")
    return RekeyRequest.objects.create(
        key_owner=key_owner, requested_by=requested_by, reason=reason.strip()
    )


def rekey_request_approve(*, request_id: int, admin: User) -> RekeyRequest:
    """Record who approved and when; an approval is final and used by one issuance."""
    with transaction.atomic():
        request = RekeyRequest.objects.select_for_update().get(pk=request_id)
        if not admin.is_staff:
            raise BadRequest("Only an admin can approve a re-key request")
        if request.approved_at is None:
            request.approved_by = admin
            request.approved_at = timezone.now()
            request.save(update_fields=["approved_by", "approved_at"])
    return request
