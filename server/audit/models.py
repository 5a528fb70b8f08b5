from django.db import models


class AuditEvent(models.Model):
    """One append-only, hash-chained event. Never names a secret, a file name or metadata
    content: targets are ids, details are small non-secret facts (status codes, serials)."""

    class Outcome(models.TextChoices):
        SUCCESS = "success"
        FAILURE = "failure"
        DENIED = "denied"

    # Position in the chain: 1, 2, 3, … without gaps; a deleted row leaves a gap.
    seq = models.BigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField(editable=False, db_index=True)
    actor = models.CharField(
        max_length=300, db_index=True, help_text="user id, 'anonymous' or 'system'"
    )
    action = models.CharField(max_length=100, db_index=True)
    target = models.CharField(max_length=300, blank=True, db_index=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False, unique=True)

    class Meta:
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor} on {self.target or '-'}: {self.outcome}"


class AuditCheckpoint(models.Model):
    """The chain head at some moment, signed by the CA key (in the HSM, by the signing worker).
    A rewritten or truncated log cannot match a checkpoint without the CA key."""

    seq = models.BigIntegerField(editable=False)
    head_hash = models.CharField(max_length=64, editable=False)
    signature = models.TextField(editable=False, help_text="base64 RSASSA-PKCS1-v1_5/SHA-256")
    key_fingerprint = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-seq"]
        get_latest_by = "seq"

    def __str__(self) -> str:
        return f"checkpoint at #{self.seq}"
