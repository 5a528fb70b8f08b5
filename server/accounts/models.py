from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A Nextcloud-style account; `username` is the Nextcloud user id."""

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username


class AppPassword(models.Model):
    """A Nextcloud-style app password: random, shown once, stored only as a keyed hash."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="app_passwords"
    )
    name = models.CharField(max_length=200, help_text="Which device or client uses it")
    # HMAC-SHA256 under SECRET_KEY: app passwords carry ~400 bits of entropy, so a slow
    # password hash buys nothing and would cost every WebDAV request.
    digest = models.CharField(max_length=64, editable=False)
    hint = models.CharField(
        max_length=5, editable=False, help_text="Last characters, to tell them apart"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["user", "-created_at"]

    def __str__(self) -> str:
        return f"{self.name} (…{self.hint})"
