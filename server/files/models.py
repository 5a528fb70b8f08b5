"""The node tree: the single source of truth for every user's files and folders.

Bytes never live here; a file row names its blob in the blob store (server.files.blobstore).
"""

from __future__ import annotations

import secrets
import time

from django.conf import settings
from django.db import models
from django.db.models import Q


def new_etag() -> str:
    """Opaque, changes on every change; 16 random bytes like Nextcloud's uniqid-style etags."""
    return secrets.token_hex(16)


def now_seconds() -> int:
    return int(time.time())


class Node(models.Model):
    """A file or a directory. Each user has exactly one root directory (parent NULL, name "")."""

    class Kind(models.TextChoices):
        FILE = "file", "file"
        DIR = "dir", "directory"

    # The primary key is the Nextcloud file id (oc:fileid); it never changes, not even on MOVE.
    id = models.BigAutoField(primary_key=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="nodes")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE,
                               related_name="children")
    name = models.CharField(max_length=255, blank=True)
    kind = models.CharField(max_length=4, choices=Kind.choices)
    # Files: their byte length. Directories: the total of everything below them, as Nextcloud's
    # oc:size reports (kept up to date by the services, in the same transaction as the change).
    size = models.BigIntegerField(default=0)
    etag = models.CharField(max_length=64, default=new_etag)
    # Unix seconds, what X-OC-MTime carries and oc clients compare.
    mtime = models.BigIntegerField(default=now_seconds)
    # Set by the E2EE app on folders it flags (nc:is-encrypted); plain data to this app.
    is_encrypted = models.BooleanField(default=False)
    # Blob store key of the current version ("" for directories).
    blob_key = models.CharField(max_length=128, blank=True)
    # What the client sent in OC-Checksum (e.g. "SHA1:ab12..."), verified at upload; "" if none.
    checksum = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="files_node_unique_name"),
            # NULLs are distinct in a unique index, so the one-root rule needs its own constraint.
            models.UniqueConstraint(fields=["owner"], condition=Q(parent__isnull=True),
                                    name="files_node_one_root_per_owner"),
            models.CheckConstraint(
                condition=Q(parent__isnull=True, name="", kind="dir")
                | (Q(parent__isnull=False) & ~Q(name="")),
                name="files_node_root_or_named",
            ),
            models.CheckConstraint(condition=Q(kind="dir", blob_key="") | Q(kind="file"),
                                   name="files_node_dirs_have_no_blob"),
        ]
        indexes = [models.Index(fields=["owner", "kind"], name="files_node_owner_kind")]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} {self.name or '/'} ({self.owner_id})"

    @property
    def is_dir(self) -> bool:
        return self.kind == self.Kind.DIR

    @property
    def is_file(self) -> bool:
        return self.kind == self.Kind.FILE

    @property
    def is_root(self) -> bool:
        return self.parent_id is None


class UploadChunk(models.Model):
    """One piece of a legacy ownCloud chunked upload ("<name>-chunking-<transfer>-<count>-<i>"
    PUTs with OC-Chunked: 1, which the desktop client sends for large files when the server
    offers no chunking v2). The file appears only when every piece is here; pieces live as
    ordinary blobs until then."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="upload_chunks")
    parent = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="upload_chunks")
    name = models.CharField(max_length=255)
    transfer_id = models.CharField(max_length=64)
    count = models.PositiveIntegerField()
    index = models.PositiveIntegerField()
    size = models.BigIntegerField()
    blob_key = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["parent", "name", "transfer_id", "index"],
                                    name="files_upload_chunk_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} chunk {self.index + 1}/{self.count} ({self.transfer_id})"
