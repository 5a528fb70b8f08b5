from django.conf import settings
from django.db import models
from django.db.models import Q


class Certificate(models.Model):
    """A user's (or link share's) certificate. Rows are never rewritten: deleting a key marks
    it deleted, so the history of every identity stays."""

    # The E2EE identity: a user id, or "s:<shareToken>" for a public-link share.
    key_owner = models.CharField(max_length=300, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="certificates",
        help_text="The account responsible",
    )
    pem = models.TextField()
    serial = models.CharField(max_length=64, help_text="hex")
    spki_sha256 = models.CharField(
        max_length=64, db_index=True, help_text="SHA-256 of the certified public key (DER SPKI)"
    )
    issued_by_server = models.BooleanField(
        default=True, help_text="False for an externally issued certificate stored with PUT"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["key_owner"],
                condition=Q(deleted_at__isnull=True),
                name="one_live_certificate_per_identity",
            ),
        ]

    def __str__(self) -> str:
        return f"certificate of {self.key_owner} (serial {self.serial})"


class CertificateRevocation(models.Model):
    """An admin's revocation of a certificate; serials are published at the revoked endpoint."""

    certificate = models.OneToOneField(
        Certificate, on_delete=models.PROTECT, related_name="revocation"
    )
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    revoked_at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField()

    class Meta:
        ordering = ["-revoked_at"]

    def __str__(self) -> str:
        return f"revocation of serial {self.certificate.serial}"


class CertificateAuthority(models.Model):
    """The CA the server publishes (`GET server-key`): recorded by `manage.py ca init` from the
    key itself, so the web process can serve the public key without reaching the token."""

    singleton = models.BooleanField(default=True, unique=True, editable=False)
    backend = models.CharField(max_length=20)
    public_key_pem = models.TextField()
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the DER SPKI")
    location = models.CharField(max_length=500, help_text="key file or token and key label")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "certificate authority"
        verbose_name_plural = "certificate authority"

    def __str__(self) -> str:
        return f"{self.backend} CA {self.fingerprint[:16]}"


class CertificateOrder(models.Model):
    """A CSR waiting for the signing worker. One row per (identity, CSR): sending the same CSR
    again finds this row instead of making a second order."""

    class Status(models.TextChoices):
        PENDING = "pending"
        ISSUED = "issued"
        REFUSED = "refused"

    key_owner = models.CharField(max_length=300, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="certificate_orders"
    )
    csr_pem = models.TextField()
    csr_sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    certificate = models.OneToOneField(
        Certificate, null=True, blank=True, on_delete=models.PROTECT, related_name="order"
    )
    refusal_status = models.PositiveSmallIntegerField(null=True, blank=True)
    refusal_message = models.CharField(max_length=300, blank=True)
    last_error = models.CharField(
        max_length=300, blank=True, help_text="the worker's last failure (signer), if any"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["key_owner", "csr_sha256"], name="one_order_per_csr"),
        ]

    def __str__(self) -> str:
        return f"order {self.pk} for {self.key_owner} ({self.status})"


class RekeyRequest(models.Model):
    """Permission for one replacement certificate of an identity that has a live one. Recorded
    and approved by admins in Django admin: who asked and why, who approved and when; the worker
    consumes it with the order it issues."""

    key_owner = models.CharField(max_length=300, db_index=True)
    reason = models.TextField(help_text="why the identity gets a new key")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    consumed_by = models.OneToOneField(
        CertificateOrder, null=True, blank=True, on_delete=models.PROTECT, related_name="rekey"
    )

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        state = "used" if self.consumed_by_id else "approved" if self.approved_at else "open"
        return f"re-key of {self.key_owner} ({state})"


class RevocationList(models.Model):
    """One signed edition of the revoked-serials list. The signing worker writes a new edition
    (sequence + 1) whenever the set of revocations grows; rows are never rewritten, so clients,
    which keep the highest sequence they saw, detect a server serving an older edition."""

    sequence = models.PositiveBigIntegerField(unique=True, editable=False)
    document = models.TextField(editable=False, help_text="the signed JSON text, byte for byte")
    signature = models.TextField(editable=False, help_text="base64 RSASSA-PKCS1-v1_5/SHA-256")
    key_fingerprint = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-sequence"]
        get_latest_by = "sequence"

    def __str__(self) -> str:
        return f"revocation list #{self.sequence}"
