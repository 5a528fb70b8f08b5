"""Shares of a node: with a user (type 0) or as a public link (type 3)."""

import secrets
import string

from django.conf import settings
from django.db import models
from django.db.models import Q

TOKEN_ALPHABET = string.ascii_letters + string.digits
TOKEN_LENGTH = 15  # Nextcloud's default link-share token length


def new_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


class Share(models.Model):
    class Type(models.IntegerChoices):
        USER = 0, "user"
        LINK = 3, "public link"

    share_type = models.PositiveSmallIntegerField(choices=Type.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shares_given"
    )
    node = models.ForeignKey("files.Node", on_delete=models.CASCADE, related_name="shares")
    # User shares: the sharee. Link shares: NULL.
    share_with = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="shares_received",
    )
    # Link shares: the public token (the E2EE identity is "s:<token>"). User shares: NULL.
    token = models.CharField(max_length=32, null=True, blank=True, unique=True)
    # READ=1 UPDATE=2 CREATE=4 DELETE=8 SHARE=16 (server.sharing.permissions).
    permissions = models.PositiveSmallIntegerField()
    # The name the sharee sees the node under, in their root folder (no slashes).
    target_name = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["node", "share_with"],
                condition=Q(share_type=0),
                name="sharing_one_user_share_per_sharee",
            ),
            models.UniqueConstraint(
                fields=["share_with", "target_name"],
                condition=Q(share_type=0),
                name="sharing_unique_target_per_sharee",
            ),
            models.CheckConstraint(
                condition=Q(share_type=0, share_with__isnull=False, token__isnull=True)
                | Q(share_type=3, share_with__isnull=True, token__isnull=False),
                name="sharing_user_or_link",
            ),
        ]

    def __str__(self) -> str:
        return f"share {self.id} of node {self.node_id} ({self.get_share_type_display()})"

    @property
    def is_link(self) -> bool:
        return self.share_type == self.Type.LINK

    @property
    def identity(self) -> str:
        """The E2EE identity of a link share ("s:<token>"), the sharee's id for a user share."""
        if self.is_link:
            return f"s:{self.token}"
        assert self.share_with is not None
        return self.share_with.username
