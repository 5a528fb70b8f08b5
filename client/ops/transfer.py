"""put and get: streamed in 1 MiB pieces both ways, in bounded memory.

Uploads into an encrypted folder run inside one :class:`Transaction`: a failure aborts the lock
and the remote folder stays as it was. Downloads go to a temporary file beside the destination,
renamed into place only after the GCM tag (and the tag recorded in metadata) verified.
"""

from __future__ import annotations

import mimetypes
import os
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from client.api import CHUNK
from client.cli_support import atomic_output
from client.crypto.aead import FileSecret, decrypt_stream, encrypt_chunks, new_file_secret
from client.errors import LocalPathError, RemotePathError
from client.ops.session import Progress, Session
from client.ops.transaction import Transaction
from client.ops.tree import EncryptedFolder, Location, join, locate
from client.protocol import TAG_LENGTH, FileEntry


def _read_chunks(handle: IO[bytes], progress: Progress | None) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        if progress is not None:
            progress(len(chunk))
        yield chunk


class _SealedBody:
    """An upload body: ciphertext pieces, then the tag, which it keeps for the metadata."""

    def __init__(self, handle: IO[bytes], secret: FileSecret, progress: Progress | None) -> None:
        self._pieces = encrypt_chunks(_read_chunks(handle, progress), secret)
        self.tag = b""

    def __iter__(self) -> Iterator[bytes]:
        for piece in self._pieces:
            yield piece
            self.tag = piece  # the last piece is the 16-byte tag


def seal_upload(
    tx: Transaction, folder: EncryptedFolder, local: Path, progress: Progress | None = None
) -> tuple[str, FileSecret, bytes]:
    """Encrypt and PUT ``local`` as a new blob of ``folder`` under ``tx`` (thread-safe: it
    touches no folder state); returns (blob name, secret, tag) for :func:`record_upload`."""
    size = local.stat().st_size
    secret = new_file_secret()
    blob = uuidlib.uuid4().hex
    with local.open("rb") as handle:
        body = _SealedBody(handle, secret, progress)
        tx.session.api.upload(join(folder.dav_path, blob), body, size + TAG_LENGTH, tx.token)
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


def download_entry(
    session: Session,
    folder: EncryptedFolder,
    blob: str,
    entry: FileEntry,
    local: Path,
    progress: Progress | None = None,
) -> int:
    """Decrypt one blob to ``local``; nothing appears there unless every check passed."""
    if not folder.listing(session).get(blob):
        raise RemotePathError(
            f"{join(folder.clear_path, entry.filename)!r} is in the metadata but its data is "
            "missing on the server"
        )
    with session.api.download(join(folder.dav_path, blob)) as (_, chunks):
        reader = _ChunkReader(_counted(chunks, progress))
        with atomic_output(local) as out:
            return decrypt_stream(
                reader,
                out,
                FileSecret(entry.key, entry.nonce),
                expected_tag=entry.authentication_tag,
            )


class _ChunkReader:
    """``readinto`` over an iterator of chunks, so the core's buffer-reusing decryptor can
    read an HTTP body with one copy and no allocation per chunk."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._current = memoryview(b"")

    def readinto(self, buffer: memoryview) -> int:
        while not self._current:
            nxt = next(self._chunks, None)
            if nxt is None:
                return 0
            self._current = memoryview(nxt)
        n = min(len(buffer), len(self._current))
        buffer[:n] = self._current[:n]
        self._current = self._current[n:]
        return n


def _counted(chunks: Iterator[bytes], progress: Progress | None) -> Iterator[bytes]:
    for chunk in chunks:
        if progress is not None:
            progress(len(chunk))
        yield chunk


def remote_size(session: Session, loc: Location) -> int | None:
    """The plaintext size the server suggests (a hint for progress bars only)."""
    if loc.parent is not None and loc.file_uuid is not None:
        entry = loc.parent.listing(session).get(loc.file_uuid)
        return max(entry.size - TAG_LENGTH, 0) if entry else None
    return loc.plain.size if loc.plain is not None else None


def get(session: Session, remote: str, local: Path, progress: Progress | None = None) -> Path:
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
        download_entry(session, loc.parent, loc.file_uuid, entry, local, progress)
        return local
    with session.api.download(loc.path) as (_, chunks), atomic_output(local) as out:
        for chunk in _counted(chunks, progress):
            out.write(chunk)
    return local


def local_size(path: Path) -> int:
    return os.stat(path).st_size
