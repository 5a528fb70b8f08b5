from celery import shared_task

from .checkpoints import checkpoint_sign


@shared_task(name="audit.checkpoint")
def audit_checkpoint() -> int | None:
    """Beat schedules this on queue `hsm`: only the signing worker holds the CA key."""
    from server.certificates.signing import signer_get

    checkpoint = checkpoint_sign(signer=signer_get())
    return checkpoint.seq if checkpoint else None
