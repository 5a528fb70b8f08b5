"""Celery tasks of the signing worker (queue `hsm`) and its process hooks.

Tasks take ids, are queued after the transaction commits and are idempotent. The CA key opens
in each worker process after fork (`worker_process_init`), never at import; a worker that
starts re-queues orders left pending (a worker killed mid-batch loses none)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from celery.signals import worker_process_init, worker_ready
from django.db import close_old_connections, connections

from hsm.signer import SignerError
from server.celery import app

from . import issuance, notify, revocation
from .models import CertificateOrder
from .signing import signer_get, signer_reset

log = logging.getLogger(__name__)

QUEUE = "hsm"
# Orders this process issued, newest last: their own tasks, queued behind, return at once.
_decided_here: OrderedDict[int, None] = OrderedDict()
_DECIDED_KEPT = 4096


@app.task(
    name="certificates.order_fulfil",
    queue=QUEUE,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def order_fulfil(order_id: int) -> None:
    if order_id in _decided_here:
        return  # decided (and committed) by a batch of this process: nothing to ask the DB
    close_old_connections()  # drop a broken or expired connection (kept between tasks)
    try:
        # Decides other pending orders in the same transaction too; their tasks, next in the
        # queue, then find nothing to do.
        for order in issuance.orders_fulfil(order_id=order_id):
            if order.status == CertificateOrder.Status.ISSUED:  # final; a refusal may be retried
                _decided_here[order.pk] = None
            notify.order_decided(order_id=order.pk)
        while len(_decided_here) > _DECIDED_KEPT:
            _decided_here.popitem(last=False)
    except SignerError as error:
        issuance.order_failure_record(order_id=order_id, message=str(error))
        log.error("certificate order %s not signed: %s", order_id, error)
        raise


def order_enqueue(*, order_id: int) -> None:
    """Queue the signing task; if the broker is unreachable the order simply stays pending."""
    try:
        order_fulfil.apply_async(
            args=[order_id],
            queue=QUEUE,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2},
        )
    except Exception as error:  # kombu raises several kinds; the order is kept either way
        log.warning("could not queue certificate order %s: %s", order_id, type(error).__name__)


@app.task(
    name="certificates.revocation_list_publish",
    queue=QUEUE,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def revocation_list_publish() -> None:
    """Sign a new edition of the revoked list if revocations changed (idempotent)."""
    close_old_connections()
    revocation.revocation_list_publish(signer=issuance.signer_checked())


def revocation_list_enqueue() -> None:
    """Queue a signing of the revoked list; a lost message is made good when a worker starts."""
    try:
        revocation_list_publish.apply_async(
            queue=QUEUE,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2},
        )
    except Exception as error:  # kombu raises several kinds; the next start re-signs
        log.warning("could not queue the revocation list: %s", type(error).__name__)


def orders_pending_enqueue() -> int:
    ids = list(
        CertificateOrder.objects.filter(status=CertificateOrder.Status.PENDING).values_list(
            "pk", flat=True
        )
    )
    for order_id in ids:
        order_enqueue(order_id=order_id)
    return len(ids)


@worker_process_init.connect
def _open_signer(**_: Any) -> None:
    """Each prefork child opens its own session; a failure is logged and retried per task.

    The child also keeps its database connection between tasks (one process, one task at a
    time; health-checked before reuse): reconnecting per task cost more than the signature."""
    for connection in connections.all():
        connection.settings_dict["CONN_MAX_AGE"] = 300
        connection.settings_dict["CONN_HEALTH_CHECKS"] = True
    signer_reset()
    try:
        signer_get()
    except SignerError as error:
        log.error("the CA key is not reachable in this worker process: %s", error)


@worker_ready.connect
def _requeue_pending(**_: Any) -> None:
    try:
        count = orders_pending_enqueue()
        revocation_list_enqueue()  # a revocation whose signing task was lost, or no list yet
    finally:
        connections.close_all()  # the pool's children must not share this connection
    if count:
        log.info("re-queued %s pending certificate orders", count)
