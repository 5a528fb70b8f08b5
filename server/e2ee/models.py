from django.conf import settings
from django.db import models

from server.files.models import Node


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


class FolderMetadata(models.Model):
    """The committed metadata document of an encrypted folder, byte for byte as uploaded, with
    its detached signature. The server never parses it beyond sniffing the version."""

    node = models.OneToOneField(
        "files.Node", on_delete=models.CASCADE, primary_key=True, related_name="e2ee_metadata"
    )
    document = models.TextField()
    signature = models.TextField(blank=True)
    # The last counter a committed lock announced for this folder (X-NC-E2EE-COUNTER).
    counter = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "folder metadata"

    def __str__(self) -> str:
        return f"metadata of folder {self.node_id}"


class Lock(models.Model):
    """An E2EE lock: while it exists, writes in the folder's subtree need its token and are
    staged until unlock. One lock per folder; hierarchy conflicts are checked by the service."""

    node = models.OneToOneField("files.Node", on_delete=models.CASCADE, related_name="e2ee_lock")
    token = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="e2ee_locks"
    )
    # The counter to commit for `node` at unlock; None when the folder had no metadata yet
    # (Nextcloud starts tracking the counter from the next lock).
    counter = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Last write under this lock: the automatic rollback spares locks still in use.
    touched_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"lock on folder {self.node_id}"


class StagedMetadata(models.Model):
    """Metadata uploaded under a lock ("intermediate"); promoted at unlock, dropped on abort.
    A folder is finalised at unlock only if it has a row here (a "touched" folder)."""

    lock = models.ForeignKey(Lock, on_delete=models.CASCADE, related_name="staged")
    node = models.ForeignKey("files.Node", on_delete=models.CASCADE, related_name="+")
    # None: the metadata is to be deleted at unlock (Nextcloud stages "{}").
    document = models.TextField(null=True, blank=True)
    signature = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["lock", "node"], name="one_staged_per_folder")
        ]


class StagedMove(models.Model):
    """A WebDAV MOVE inside an encrypted tree, staged under a lock: the node already sits at its
    destination under a ".e2e-to-save" name; abort puts it back where it came from."""

    lock = models.ForeignKey(Lock, on_delete=models.CASCADE, related_name="moves")
    node = models.ForeignKey("files.Node", on_delete=models.CASCADE, related_name="+")
    from_parent = models.ForeignKey("files.Node", on_delete=models.CASCADE, related_name="+")
    from_name = models.CharField(max_length=255)


class EncryptedFolder(Node):
    """The admin's view of flagged folders (the node table holds them)."""

    class Meta:
        proxy = True
        verbose_name = "encrypted folder"
