"""put and get: streamed in 1 MiB pieces both ways, in bounded memory.

Uploads into an encrypted folder run inside one :class:`Transaction`: a failure aborts the lock
and the remote folder stays as it was. Downloads go to a temporary file beside the destination,
renamed into place only after the GCM tag (and the tag recorded in metadata) verified.
"""

from __future__ import annotations

import mimetypes
import os
import queue
import tarfile
import threading
import uuid as uuidlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, cast

from client.api import CHUNK
from client.bulk import BULK_MIN
from client.cli_support import atomic_output
from client.crypto.aead import FileSecret, Readable, Writable, encrypt_chunks, new_file_secret
from client.crypto.files import decrypt_file_stream
from client.errors import LocalPathError, RemotePathError
from client.ops.session import Progress, Session
from client.ops.transaction import Transaction, waits_for_lock
from client.ops.tree import EncryptedFolder, Location, join, locate
from client.protocol import TAG_LENGTH, FileEntry

#: Pieces in flight between a transfer's two threads (read-ahead or disk writer): 16 MiB, so
#: a stall of the disk (writeback) or the socket does not stop the other side at once.
WRITER_DEPTH = 16
#: Start the kernel's writeback every this many bytes, so the fsync before the rename finds
#: little left to do (otherwise it waits ~0.45 s per GiB after the transfer has ended).
#: Depth and step measured best of 4/8/16 x 32/64 MiB/none (peak RSS ~70 MB for 1 GiB).
WRITEBACK_STEP = 64 << 20


def _read_chunks(handle: IO[bytes], progress: Progress | None) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        if progress is not None:
            progress(len(chunk))
        yield chunk


class _ReadAhead:
    """Runs a producer (read and encrypt) in a second thread, at most WRITER_DEPTH pieces ahead
    of the consumer (the HTTP send), so the file and the cipher work while the socket drains.
    :meth:`close` stops and joins it: call it before the file it reads is closed."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._queue: queue.Queue[tuple[bytes | None, Exception | None]] = queue.Queue(WRITER_DEPTH)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="e2ee-read-ahead", daemon=True)

    def _put(self, item: tuple[bytes | None, Exception | None]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for piece in self._pieces:
                if not self._put((piece, None)):
                    return
        except Exception as exc:  # handed to the consumer, which raises it
            self._put((None, exc))
            return
        self._put((None, None))

    def __iter__(self) -> Iterator[bytes]:
        self._thread.start()
        while True:
            piece, error = self._queue.get()
            if error is not None:
                raise error
            if piece is None:
                return
            yield piece

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


class _SealedBody:
    """An upload body: ciphertext pieces, then the tag, which it keeps for the metadata. Large
    files are read and encrypted one thread ahead of the send."""

    def __init__(
        self, handle: IO[bytes], secret: FileSecret, progress: Progress | None, size: int
    ) -> None:
        pieces = encrypt_chunks(_read_chunks(handle, progress), secret)
        self._ahead = _ReadAhead(pieces) if size >= BULK_MIN else None
        self._pieces: Iterable[bytes] = self._ahead if self._ahead is not None else pieces
        self.tag = b""

    def __iter__(self) -> Iterator[bytes]:
        for piece in self._pieces:
            yield piece
            self.tag = piece  # the last piece is the 16-byte tag

    def close(self) -> None:
        if self._ahead is not None:
            self._ahead.close()


def seal_upload(
    tx: Transaction, folder: EncryptedFolder, local: Path, progress: Progress | None = None
) -> tuple[str, FileSecret, bytes]:
    """Encrypt and PUT ``local`` as a new blob of ``folder`` under ``tx`` (thread-safe: it
    touches no folder state); returns (blob name, secret, tag) for :func:`record_upload`."""
    size = local.stat().st_size
    secret = new_file_secret()
    blob = uuidlib.uuid4().hex
    with local.open("rb") as handle:
        body = _SealedBody(handle, secret, progress, size)
        try:
            tx.session.api.upload(join(folder.dav_path, blob), body, size + TAG_LENGTH, tx.token)
        finally:
            body.close()
    if len(body.tag) != TAG_LENGTH:
        raise LocalPathError(f"{local} changed while it was read")
    return blob, secret, body.tag


def record_upload(
    tx: Transaction, folder: EncryptedFolder, filename: str, sealed: tuple[str, FileSecret, bytes]
) -> str:
    """List an uploaded blob in ``folder`` as ``filename``, replacing a file of that name."""
    blob, secret, tag = sealed
    mimetype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    old = folder.file_uuid(filename)
    if old is not None:
        tx.session.api.delete(join(folder.dav_path, old), tx.token)
        del folder.files[old]
    folder.files[blob] = FileEntry(filename, mimetype, secret.key, secret.nonce, tag)
    tx.touch(folder)
    return blob


def upload_into(
    tx: Transaction,
    folder: EncryptedFolder,
    local: Path,
    filename: str,
    progress: Progress | None = None,
) -> str:
    """Encrypt ``local`` into ``folder`` under ``filename`` (replacing a file of that name)."""
    return record_upload(tx, folder, filename, seal_upload(tx, folder, local, progress))


def _target(session: Session, local: Path, remote: str) -> Location:
    loc = locate(session, remote)
    if loc.is_dir:
        loc = locate(session, join(loc.path, local.name))
    if loc.is_dir:
        raise RemotePathError(f"{loc.path!r} is a folder")
    return loc


@waits_for_lock
def put(session: Session, local: Path, remote: str, progress: Progress | None = None) -> str:
    """Upload one file; returns the remote clear path."""
    if not local.is_file():
        raise LocalPathError(f"{local} is not a file (use `e2ee sync` for folders)")
    loc = _target(session, local, remote)
    if loc.parent is not None:
        with Transaction(session, loc.parent.top) as tx:
            upload_into(tx, loc.parent, local, loc.name, progress)
        return loc.path
    size = local.stat().st_size
    with local.open("rb") as handle:
        session.api.upload(loc.path, _read_chunks(handle, progress), size)
    return loc.path


#: A download reaches its file in write() calls of this size. With one call per 1 MiB piece,
#: 1 GiB took 0.95-2.4 s (median 2.0) instead of 0.95-1.17 s (median 1.08) on a VM that hands
#: freed memory back to its host (free page reporting), probably because large calls get large
#: page-cache folios from the handed-back blocks, at a host fault per page.
WRITE_PIECE = 64 << 10


def _write_in_pieces(handle: IO[bytes], data: memoryview) -> None:
    for start in range(0, len(data), WRITE_PIECE):
        handle.write(data[start : start + WRITE_PIECE])


class _DiskWriter:
    """Writes a download from a second thread, so the disk works while the next piece arrives
    and decrypts. Always left (joined) before the file is fsynced, renamed or removed."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._full: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
        for _ in range(WRITER_DEPTH):
            self._free.put(bytearray(CHUNK))
        self._error: Exception | None = None
        self._cancelled = False
        self._written = self._advised = 0
        self._thread = threading.Thread(target=self._run, name="e2ee-disk-writer", daemon=True)

    def __enter__(self) -> _DiskWriter:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self._cancelled = kind is not None
        self._full.put(None)
        self._thread.join()
        if kind is None and self._error is not None:
            raise self._error

    def write(self, data: memoryview | bytes) -> int:
        view = memoryview(data)
        for start in range(0, len(view), CHUNK):
            if self._error is not None:
                raise self._error
            piece = view[start : start + CHUNK]
            buf = self._free.get()  # waits while WRITER_DEPTH pieces are queued
            buf[: len(piece)] = piece
            self._full.put((buf, len(piece)))
        return len(view)

    def _run(self) -> None:
        while (item := self._full.get()) is not None:
            buf, n = item
            if self._error is None and not self._cancelled:
                try:
                    _write_in_pieces(self._handle, memoryview(buf)[:n])
                    self._written += n
                    if self._written - self._advised >= WRITEBACK_STEP:
                        self._writeback()
                except Exception as exc:  # handed to the main thread at its next write
                    self._error = exc
            self._free.put(buf)

    def _writeback(self) -> None:
        if hasattr(os, "posix_fadvise"):
            # Linux starts writing the range back now and drops it from the cache once clean;
            # durability still comes from the fsync in atomic_output.
            self._handle.flush()
            fd, length = self._handle.fileno(), self._written - self._advised
            os.posix_fadvise(fd, self._advised, length, os.POSIX_FADV_DONTNEED)
        self._advised = self._written


@contextmanager
def _landing(local: Path, size_hint: int | None, *, fsync: bool = True) -> Iterator[Writable]:
    """Where a download is written: a temporary file beside ``local``, renamed into place
    (fsynced first) only when the block exits cleanly; large ones through a disk thread."""
    with atomic_output(local, fsync=fsync) as out:
        if size_hint is None or size_hint < BULK_MIN:
            yield out
        else:
            with _DiskWriter(out) as writer:
                yield writer


def sync_folder(path: Path) -> None:
    """fsync a folder: the renames into it survive a crash once this returns."""
    if os.name == "posix":
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class _Counted:
    def __init__(self, reader: Readable, progress: Progress | None) -> None:
        self._reader, self._progress = reader, progress

    def readinto(self, buffer: memoryview) -> int:
        n = self._reader.readinto(buffer) or 0
        if self._progress is not None and n:
            self._progress(n)
        return n


def _decrypt_to(
    local: Path,
    source: Readable,
    entry: FileEntry,
    size: int,
    progress: Progress | None,
    *,
    fsync: bool = True,
) -> int:
    """Decrypt a blob of ``size`` bytes read from ``source`` into ``local`` (see _landing)."""
    with _landing(local, size, fsync=fsync) as out:
        return decrypt_file_stream(_Counted(source, progress), out, entry, size_hint=size)


def download_entry(
    session: Session,
    folder: EncryptedFolder,
    blob: str,
    entry: FileEntry,
    local: Path,
    progress: Progress | None = None,
    *,
    durable: bool = True,
    fsync: bool = True,
) -> int:
    """Decrypt one blob to ``local``; nothing appears there unless every check passed.

    The plaintext goes to a temporary file; the GCM tag (and the tag recorded in metadata) is
    checked at the end of the stream, before the rename. ``durable=False`` leaves the fsync of
    ``local``'s folder to the caller (sync does it once per folder for a whole batch);
    ``fsync=False`` skips every fsync (a power cut soon after may lose the file).
    """
    listed = folder.listing(session).get(blob)
    if not listed:
        raise RemotePathError(
            f"{join(folder.clear_path, entry.filename)!r} is in the metadata but its data is "
            "missing on the server"
        )
    with session.api.open_download(join(folder.dav_path, blob)) as (_, reader):
        written = _decrypt_to(local, reader, entry, listed.size, progress, fsync=fsync)
    if durable and fsync:
        sync_folder(local.parent)
    return written


class _Stream:
    """``read`` for tarfile over a response's ``readinto`` (the archive's transport)."""

    def __init__(self, reader: Readable) -> None:
        self._reader = reader

    def read(self, size: int = -1) -> bytes:
        buffer = bytearray(size if size >= 0 else CHUNK)
        n = self._reader.readinto(memoryview(buffer))
        return bytes(buffer[:n])


def download_archive(
    session: Session,
    folder: EncryptedFolder,
    wanted: dict[str, tuple[FileEntry, Path]],
    progress: Progress | None = None,
) -> set[str] | None:
    """Fetch several blobs of ``folder`` in one archive request and decrypt each to its
    destination as :func:`download_entry` does (each fsynced before its rename; the caller
    fsyncs the folders). Returns the blobs landed — the caller fetches the others one by one —
    or None when the server offers no archive download.

    The archive is only a transport: a member counts only if it is a regular file under one of
    the names asked for, met once, of the size the listing gave; its name is never used as a
    path. Each blob is still authenticated against the metadata (a tampered one raises)."""
    listing = folder.listing(session)
    sizes = {blob: listing[blob].size for blob in wanted if blob in listing}
    landed: set[str] = set()
    if not sizes:
        return landed  # an empty list would ask for the whole folder
    with session.api.open_archive(folder.dav_path, sorted(sizes)) as reader:
        if reader is None:
            return None
        try:
            stream = cast(IO[bytes], _Stream(reader))
            with tarfile.open(fileobj=stream, mode="r|", bufsize=1 << 18) as archive:
                for member in archive:
                    blob = member.name
                    if not member.isfile() or blob in landed or sizes.get(blob) != member.size:
                        continue
                    source = cast(Readable, archive.extractfile(member))  # a regular file
                    entry, local = wanted[blob]
                    _decrypt_to(local, source, entry, member.size, progress)
                    landed.add(blob)
        except tarfile.TarError:
            pass  # cut off or malformed: what landed stays, the rest comes one by one
    return landed


def remote_size(session: Session, loc: Location) -> int | None:
    """The plaintext size the server suggests (a hint for progress bars only)."""
    if loc.parent is not None and loc.file_uuid is not None:
        entry = loc.parent.listing(session).get(loc.file_uuid)
        return max(entry.size - TAG_LENGTH, 0) if entry else None
    return loc.plain.size if loc.plain is not None else None


def get(
    session: Session,
    remote: str,
    local: Path,
    progress: Progress | None = None,
    *,
    fsync: bool = True,
) -> Path:
    """Download ``remote`` to ``local`` (verified first); ``fsync=False`` returns once the
    bytes are in the OS cache instead of on disk."""
    loc = locate(session, remote)
    if not loc.exists:
        raise RemotePathError(f"{loc.path!r} does not exist")
    if loc.is_dir:
        raise RemotePathError(f"{loc.path!r} is a folder (use `e2ee sync` for folders)")
    if local.is_dir():
        local = local / loc.name
    if not local.parent.is_dir():
        raise LocalPathError(f"{local.parent} is not a folder")
    entry = loc.file_entry
    if loc.parent is not None and loc.file_uuid is not None and entry is not None:
        download_entry(session, loc.parent, loc.file_uuid, entry, local, progress, fsync=fsync)
        return local
    size = loc.plain.size if loc.plain is not None else None
    with (
        session.api.open_download(loc.path) as (_, reader),
        _landing(local, size, fsync=fsync) as out,
    ):
        counted, buffer = _Counted(reader, progress), memoryview(bytearray(CHUNK))
        while n := counted.readinto(buffer):
            out.write(buffer[:n])
    if fsync:
        sync_folder(local.parent)
    return local


def local_size(path: Path) -> int:
    return os.stat(path).st_size
