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
