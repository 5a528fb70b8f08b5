from django.conf import settings
from django.db import models


class WrappedPrivateKey(models.Model):
    """The private key wrapped by the client under the user's mnemonic (`ct|iv|salt`), stored as
    an opaque string: the server cannot open it."""

    key_owner = models.CharField(max_length=300, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wrapped_private_keys"
    )
    wrapped = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"wrapped private key of {self.key_owner}"
