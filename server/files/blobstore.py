"""Where file bytes live. The node table names blobs by key; this module stores them.

Keys are random ids, one per stored version, not content hashes:
- a key is known before the first byte arrives, so an upload streams straight to its blob
  without hashing (SHA-256 costs more than the disk here, see PERFORMANCE-NOTES.md);
- every version gets its own blob, so a failed or concurrent write can never touch the bytes
  the current row points at, and deleting a version needs no reference counting;
- E2EE content is ciphertext under fresh keys, so content addressing would deduplicate nothing.

`BlobStore` is the whole contract: a writer that streams to a temporary object and makes it
visible (durably) only on commit, ranged reads, copy and delete, and the listings the orphan
sweep needs. `LocalBlobStore` (below) keeps files; `S3BlobStore` (blobstore_s3) fills the same
role with a multipart upload committed by CompleteMultipartUpload, ranged GETs and server-side
copy. settings.BLOB_STORE picks one (E2EE_BLOB_STORE=local|s3).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol

_KEY_RE = re.compile(r"^[0-9a-f]{32}$")


class BlobNotFound(LookupError):
    pass


class BlobStoreUnavailable(RuntimeError):
    """The store could not serve a request (an unreachable object store): 503, not 500."""


class BlobWriter(Protocol):
    """Streams one new blob. Nothing is visible under `key` until `commit` returns."""

    key: str
    bytes_written: int

    def write(self, data: bytes | memoryview) -> int: ...

    def commit(self) -> str:
        """Make the bytes durable and visible under `key`; return the key."""
        ...

    def abort(self) -> None:
        """Discard everything written; safe to call more than once and after commit fails."""
        ...


class BlobStore(Protocol):
    def open_writer(self) -> BlobWriter: ...

    def open_read(self, key: str) -> BinaryIO:
        """A seekable binary reader: seek to the range start, then read (ranged GET on S3)."""
        ...

    def size(self, key: str) -> int: ...

    def copy(self, key: str) -> str:
        """A new blob with the same bytes; returns its key."""
        ...

    def delete(self, key: str) -> None:
        """Remove a blob; a missing blob is not an error (deletes run after commit, maybe twice)."""
        ...

    def list_keys(self) -> set[str]: ...

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        """(key, modification timestamp) of every committed blob."""
        ...

    def stale_temporaries(self, *, older_than: float) -> list[str]:
        """Names of uncommitted writes started before `older_than` (a killed process's)."""
        ...

    def remove_temporary(self, name: str) -> None: ...


#: Start the kernel's writeback of an upload every this many bytes (see _LocalWriter).
WRITEBACK_STEP = 64 << 20
#: Largest write() call. On a VM that hands freed memory back to its host (free page
#: reporting), 1 MiB calls were slow half of the time, probably through large page-cache folios
#: from the handed-back blocks (the client's download writes: median 2.0 s per GiB, not 1.08).
WRITE_PIECE = 64 << 10


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _LocalWriter:
    def __init__(self, store: LocalBlobStore) -> None:
        self._store = store
        self.key = secrets.token_hex(16)
        self.bytes_written = 0
        self._tmp_path = store.tmp_dir / f"{self.key}.part"
        # O_EXCL: a fresh name, never an existing file; unbuffered because callers hand over
        # ~1 MiB pieces and a buffer would only add a copy.
        fd = os.open(self._tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file: BinaryIO | None = os.fdopen(fd, "wb", buffering=0)
        self._done = False
        self._advised = 0

    def write(self, data: bytes | memoryview) -> int:
        assert self._file is not None, "writer is closed"
        view = memoryview(data)
        total = len(view)
        while view:
            written = self._file.write(view[:WRITE_PIECE])
            if written is None:  # pragma: no cover - only for non-blocking files
                continue
            view = view[written:]
        self.bytes_written += total
        if self.bytes_written - self._advised >= WRITEBACK_STEP:
            self._start_writeback()
        return total

    def _start_writeback(self) -> None:
        """Have the kernel write what arrived so far back to disk now, while the rest arrives,
        so the fsync at the commit finds little left to do (a large upload otherwise waits for
        all of it there: network time, then disk time)."""
        assert self._file is not None
        if hasattr(os, "posix_fadvise"):
            length = self.bytes_written - self._advised
            os.posix_fadvise(self._file.fileno(), self._advised, length, os.POSIX_FADV_DONTNEED)
        self._advised = self.bytes_written

    def commit(self) -> str:
        assert self._file is not None and not self._done, "writer is closed"
        try:
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            final = self._store.path_for(self.key)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._tmp_path, final)
            # The rename is only durable once the directory entry is on disk too.
            _fsync_dir(final.parent)
        except BaseException:
            self.abort()
            raise
        self._done = True
        return self.key

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._tmp_path.unlink(missing_ok=True)
        if self._done:
            # Committed, then the caller failed (e.g. the DB transaction): remove the blob.
            self._store.delete(self.key)
        self._done = True

    def __enter__(self) -> _LocalWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None or not self._done:
            self.abort()


class LocalBlobStore:
    """Blobs as files under `root`: `root/ab/cd/<key>`, temporaries in `root/tmp` (same
    filesystem, so the commit is an atomic rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tmp_dir = self.root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def path_for(self, key: str) -> Path:
        # Keys come from our own rows, but a key is still never allowed to name a path.
        if not _KEY_RE.match(key):
            raise ValueError("invalid blob key")
        return self.root / key[:2] / key[2:4] / key

    def open_writer(self) -> _LocalWriter:
        return _LocalWriter(self)

    def open_read(self, key: str) -> BinaryIO:
        try:
            return open(self.path_for(key), "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def size(self, key: str) -> int:
        try:
            return self.path_for(key).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def copy(self, key: str) -> str:
        with self.open_read(key) as source, self.open_writer() as writer:
            # copyfileobj into our writer keeps the temp-fsync-rename discipline.
            shutil.copyfileobj(source, writer, length=1 << 20)
            return writer.commit()

    def delete(self, key: str) -> None:
        try:
            self.path_for(key).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:  # pragma: no cover - reported, never fatal after a commit
            if exc.errno != errno.ENOENT:
                raise

    def list_keys(self) -> set[str]:
        """Every committed blob key (for consistency checks and orphan sweeps)."""
        return {p.name for p in self.root.glob("??/??/*") if _KEY_RE.match(p.name)}

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        for path in self.root.glob("??/??/*"):
            if _KEY_RE.match(path.name):
                with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                    yield path.name, path.stat().st_mtime

    def stale_temporaries(self, *, older_than: float) -> list[str]:
        return [p.name for p in self.tmp_dir.iterdir() if p.stat().st_mtime < older_than]

    def remove_temporary(self, name: str) -> None:
        if "/" in name or not name.endswith(".part"):
            raise ValueError("not a temporary file name")
        (self.tmp_dir / name).unlink(missing_ok=True)


_default: tuple[tuple[Any, ...], BlobStore] | None = None


def _configured() -> tuple[Any, ...]:
    from django.conf import settings

    kind = getattr(settings, "BLOB_STORE", "local")
    if kind == "local":
        return ("local", str(settings.BLOB_DIR))
    if kind == "s3":
        return ("s3", tuple(sorted(settings.BLOB_S3.items())))
    raise ValueError(f"unknown E2EE_BLOB_STORE {kind!r} (local or s3)")


def blob_store_from(config: tuple[Any, ...]) -> BlobStore:
    if config[0] == "local":
        return LocalBlobStore(Path(config[1]))
    from .blobstore_s3 import S3BlobStore, S3Config

    return S3BlobStore(S3Config.from_settings(dict(config[1])))


def get_blob_store() -> BlobStore:
    """The configured store (settings.BLOB_STORE: BLOB_DIR or BLOB_S3), created on first use and
    again whenever the settings change (tests); callers only see the BlobStore contract."""
    global _default
    config = _configured()
    if _default is None or _default[0] != config:
        _default = (config, blob_store_from(config))
    return _default[1]
