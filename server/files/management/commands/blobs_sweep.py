"""Find (and with --delete remove) blobs no row points at, and stale temporary files.

Uploads commit the blob before the row, so a process killed between the two leaves a blob
nobody references; nothing reads it, and this command reclaims the space."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from server.files.blobstore import get_blob_store
from server.files.models import Node, UploadChunk


class Command(BaseCommand):
    help = "List blobs without a row and stale temp files; --delete removes them."

    def add_arguments(self, parser):
        parser.add_argument("--delete", action="store_true")
        parser.add_argument(
            "--min-age-hours",
            type=float,
            default=24.0,
            help="only touch files older than this (uploads may be running)",
        )

    def handle(self, *args, delete: bool, min_age_hours: float, **options):
        store = get_blob_store()
        cutoff = time.time() - min_age_hours * 3600
        referenced = set(Node.objects.exclude(blob_key="").values_list("blob_key", flat=True))
        referenced |= set(UploadChunk.objects.values_list("blob_key", flat=True))
        orphans = [
            key for key, mtime in store.iter_blobs() if mtime < cutoff and key not in referenced
        ]
        temps = store.stale_temporaries(older_than=cutoff)
        for key in orphans:
            self.stdout.write(f"orphan blob {key}")
            if delete:
                store.delete(key)
        for name in temps:
            self.stdout.write(f"stale temp file {name}")
            if delete:
                store.remove_temporary(name)
        verb = "removed" if delete else "found"
        self.stderr.write(f"{verb} {len(orphans)} orphan blob(s), {len(temps)} temp file(s)")
