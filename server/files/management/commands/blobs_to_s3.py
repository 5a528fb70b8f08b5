"""Copy every blob of the filesystem store (BLOB_DIR) into the S3 bucket of the E2EE_S3_*
settings, under the same keys, and verify each copy by reading it back (SHA-256 of the source
as sent, against SHA-256 of what the bucket returns).

Resumable: every verified key is appended (and fsynced) to a journal beside the blobs, named
after the target bucket; a later run skips those, and re-checks an object an interrupted run
left without a journal entry before trusting it. Run it once while the server still writes to
the filesystem, then stop the web nodes, run it again (only new blobs move), switch to
E2EE_BLOB_STORE=s3 and start them. Exit status 1 if any blob failed.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from server.files.blobstore import BlobNotFound, LocalBlobStore
from server.files.blobstore_s3 import S3BlobStore, S3Config, S3StoreError
from server.files.models import Node, UploadChunk


class _Journal:
    """Keys already copied and verified, one per line; appends are fsynced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: set[str] = set()
        if path.exists():
            self.done = {line.strip() for line in path.read_text().splitlines() if line.strip()}
        self._lock = threading.Lock()
        self._file = open(path, "a")  # noqa: SIM115 - closed by close()

    def add(self, key: str) -> None:
        with self._lock:
            self._file.write(key + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
            self.done.add(key)

    def close(self) -> None:
        self._file.close()


class Command(BaseCommand):
    help = "Copy and verify every filesystem blob into the S3 bucket (resumable)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--from",
            dest="source",
            type=Path,
            default=None,
            help="the blob folder (default: E2EE_BLOB_DIR / <data dir>/blobs)",
        )
        parser.add_argument("--jobs", type=int, default=4, help="blobs copied at once")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, source: Path | None, jobs: int, no_progress: bool, **options):
        local = LocalBlobStore(source or Path(settings.BLOB_DIR))
        try:
            target = S3BlobStore(S3Config.from_settings(settings.BLOB_S3))
            target.check()
        except S3StoreError as exc:
            raise CommandError(str(exc)) from None
        on_disk = local.list_keys()
        referenced = set(Node.objects.exclude(blob_key="").values_list("blob_key", flat=True))
        referenced |= set(UploadChunk.objects.values_list("blob_key", flat=True))
        missing = referenced - on_disk
        c = target.config
        tag = hashlib.sha256(f"{c.endpoint_url}|{c.bucket}|{c.prefix}".encode()).hexdigest()[:12]
        journal = _Journal(local.root / f"s3-migration-{tag}.journal")
        todo = sorted(on_disk - journal.done)
        sizes = {key: local.size(key) for key in todo}
        failed: list[str] = []
        copied = 0
        progress = Progress(
            TextColumn("blobs → s3"),
            BarColumn(),
            MofNCompleteColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            disable=no_progress,
        )
        try:
            with progress, ThreadPoolExecutor(max(1, jobs)) as pool:
                task = progress.add_task("copy", total=sum(sizes.values()))
                runs = {pool.submit(self._move, local, target, key): key for key in todo}
                for run in as_completed(runs):
                    key = runs[run]
                    try:
                        copied += run.result()
                        journal.add(key)
                    except (OSError, S3StoreError, BlobNotFound, _Mismatch) as exc:
                        failed.append(key)
                        progress.console.print(f"[red]blob {key}: {exc}")
                    progress.advance(task, sizes[key])
        finally:
            journal.close()
        self.stdout.write(
            f"{len(on_disk)} blob(s) on disk: {copied} copied now, "
            f"{len(on_disk) - len(todo)} verified by an earlier run, "
            f"{len(todo) - copied - len(failed)} already in the bucket and verified, "
            f"{len(failed)} failed"
        )
        for key in sorted(missing):
            self.stderr.write(f"blob {key} is referenced by a row but not in {local.root}")
        if failed or missing:
            raise CommandError(
                f"{len(failed)} blob(s) failed, {len(missing)} missing; "
                "fix the cause and run again (verified blobs are skipped)"
            )

    def _move(self, local: LocalBlobStore, target: S3BlobStore, key: str) -> int:
        """Copy one blob unless the bucket already has it intact; returns 1 if copied."""
        try:
            target.size(key)
        except BlobNotFound:
            pass
        else:  # uploaded by an interrupted run and not journaled yet, or something else
            with open(local.path_for(key), "rb") as blob:
                expected = hashlib.file_digest(blob, "sha256").hexdigest()
            if target.sha256(key) == expected:
                return 0
            target.delete(key)
        with local.open_read(key) as blob:
            sent = target.import_blob(key, blob)
        if target.sha256(key) != sent:
            raise _Mismatch("the copy read back differs from the source")
        return 1


class _Mismatch(Exception):
    pass
