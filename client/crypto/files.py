"""File versions: every encryption gets a fresh key and nonce (PROTOCOL.md §1.3, THREATS C1)."""

from __future__ import annotations

from client.crypto.aead import (
    FileSecret,
    Readable,
    Writable,
    decrypt,
    decrypt_stream,
    encrypt,
    encrypt_stream,
    new_file_secret,
)
from client.protocol import DEFAULT_MIMETYPE, FileEntry


def secret_of(entry: FileEntry) -> FileSecret:
    return FileSecret(entry.key, entry.nonce)


def _entry(filename: str, mimetype: str, secret: FileSecret, tag: bytes) -> FileEntry:
    return FileEntry(filename, mimetype or DEFAULT_MIMETYPE, secret.key, secret.nonce, tag)


def encrypt_file(
    plaintext: bytes, *, filename: str, mimetype: str = DEFAULT_MIMETYPE
) -> tuple[bytes, FileEntry]:
    """Encrypt a new file version; returns the blob (``ct‖tag``) and its metadata entry."""
    return _encrypt_file_from_parts(plaintext, filename, mimetype, new_file_secret())


def _encrypt_file_from_parts(
    plaintext: bytes, filename: str, mimetype: str, secret: FileSecret
) -> tuple[bytes, FileEntry]:
    blob = encrypt(secret, plaintext)
    return blob, _entry(filename, mimetype, secret, blob[-16:])


def encrypt_file_stream(
    src: Readable,
    dst: Writable,
    *,
    filename: str,
    mimetype: str = DEFAULT_MIMETYPE,
) -> FileEntry:
    """Streaming :func:`encrypt_file`: ``src`` plaintext to ``dst`` blob in bounded memory."""
    secret = new_file_secret()
    return _entry(filename, mimetype, secret, encrypt_stream(src, dst, secret))


def decrypt_file(blob: bytes, entry: FileEntry) -> bytes:
    """Decrypt a blob; its trailing tag must equal the tag recorded in ``entry``."""
    return decrypt(secret_of(entry), blob, expected_tag=entry.authentication_tag)


def decrypt_file_stream(
    src: Readable, dst: Writable, entry: FileEntry, *, size_hint: int | None = None
) -> int:
    """Streaming :func:`decrypt_file`; ``dst`` must be discarded if this raises.
    ``size_hint``: the blob's expected length (sizes the buffers only)."""
    return decrypt_stream(
        src, dst, secret_of(entry), expected_tag=entry.authentication_tag, size_hint=size_hint
    )


def reencrypt_file(blob: bytes, entry: FileEntry) -> tuple[bytes, FileEntry]:
    """A copy is a new version: decrypt and encrypt again under a fresh key and nonce."""
    return encrypt_file(decrypt_file(blob, entry), filename=entry.filename, mimetype=entry.mimetype)
