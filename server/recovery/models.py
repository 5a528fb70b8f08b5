from django.db import models
from django.db.models import Q


class RecoveryKey(models.Model):
    """The offline recovery key's certificate. The private key never reaches the server: the
    admin brings a CSR made offline (`e2ee recovery create`), the CA signs it. Rows are never
    rewritten except to record the decision and the disabling, so the history stays."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        ISSUED = "issued", "issued"
        REFUSED = "refused", "refused"

    # "recovery:" + the first 16 hex digits of SHA-256(SPKI): no user id contains ":".
    key_id = models.CharField(max_length=64)
    csr_pem = models.TextField()
    spki_sha256 = models.CharField(max_length=64, help_text="SHA-256 of the public key (DER SPKI)")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    refusal_message = models.CharField(max_length=300, blank=True)
    certificate_pem = models.TextField(blank=True)
    fingerprint = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the DER")
    serial = models.CharField(max_length=64, blank=True, help_text="hex")
    requested_by = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)
    enabled_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_by = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Never two enabled (or two pending) keys; the service also refuses a pending
            # request while one is enabled.
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status__in=["pending", "issued"], disabled_at__isnull=True),
                name="one_live_recovery_key",
            ),
        ]

    def __str__(self) -> str:
        return f"recovery key {self.key_id} ({self.status})"

    @property
    def enabled(self) -> bool:
        return self.status == self.Status.ISSUED and self.disabled_at is None
