"""Signed checkpoints of the audit chain head.

The signing worker signs `checkpoint_message(seq, hash)` with the CA key (sign_bytes: PKCS#1
v1.5 / SHA-256). Anyone with the server's public key can check that each checkpointed event still
exists with that hash: editing history or cutting off its tail breaks a checkpoint."""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from hsm.signer import Signer, key_fingerprint, sign_bytes

from .chain import ChainBreak
from .models import AuditCheckpoint, AuditEvent


def checkpoint_message(*, seq: int, head_hash: str) -> bytes:
    return f"e2ee-stack audit checkpoint v1\nseq={seq}\nhash={head_hash}\n".encode()


def checkpoint_sign(*, signer: Signer) -> AuditCheckpoint | None:
    """Sign the current head (the worker calls this); None while the log is empty or unchanged."""
    head = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
    if head is None:
        return None
    latest = AuditCheckpoint.objects.order_by("-seq").first()
    if latest is not None and latest.seq == head["seq"]:
        return None
    signature = sign_bytes(signer, checkpoint_message(seq=head["seq"], head_hash=head["hash"]))
    return AuditCheckpoint.objects.create(
        seq=head["seq"],
        head_hash=head["hash"],
        signature=base64.b64encode(signature).decode(),
        key_fingerprint=key_fingerprint(signer.public_key()),
    )


def checkpoint_problem(checkpoint: AuditCheckpoint, public_key: rsa.RSAPublicKey) -> str | None:
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
        public_key.verify(
            signature,
            checkpoint_message(seq=checkpoint.seq, head_hash=checkpoint.head_hash),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        return "its signature does not verify with the server key"
    event_hash = (
        AuditEvent.objects.filter(seq=checkpoint.seq).values_list("hash", flat=True).first()
    )
    if event_hash is None:
        return f"event #{checkpoint.seq} it vouches for is gone (the log was cut short)"
    if event_hash != checkpoint.head_hash:
        return f"event #{checkpoint.seq} is not the one it vouches for (history was rewritten)"
    return None


def checkpoints_verify(*, public_key: rsa.RSAPublicKey) -> tuple[int, ChainBreak | None]:
    """Check every checkpoint, oldest first; returns (checked, first problem)."""
    checked = 0
    for checkpoint in AuditCheckpoint.objects.order_by("seq"):
        problem = checkpoint_problem(checkpoint, public_key)
        if problem is not None:
            return checked, ChainBreak(
                checkpoint.seq, f"checkpoint at #{checkpoint.seq}: {problem}"
            )
        checked += 1
    return checked, None
