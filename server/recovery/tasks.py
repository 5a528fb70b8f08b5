"""The recovery certificate is signed by the signing worker (queue `hsm`), like user
certificates; the task takes the row id and is idempotent."""

from __future__ import annotations

import logging

from hsm.signer import SignerError
from server.celery import app
from server.certificates.tasks import QUEUE

from . import issuance

log = logging.getLogger(__name__)


@app.task(
    name="recovery.recovery_sign",
    queue=QUEUE,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def recovery_sign(recovery_key_id: int) -> None:
    try:
        issuance.recovery_sign(recovery_key_id=recovery_key_id)
    except SignerError as error:
        log.error("recovery key %s not signed: %s", recovery_key_id, error)
        raise


def recovery_enqueue(*, recovery_key_id: int) -> None:
    recovery_sign.apply_async(args=[recovery_key_id], queue=QUEUE)
