"""AES-GCM for files, metadata and file drops (PROTOCOL.md §1.3): one-shot and streaming.

Every stored ciphertext is ``ct‖tag`` with a 16-byte tag and no AAD. Keys and nonces enter as
arguments; :func:`new_file_secret` is the one place a file's randomness comes from.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from client.errors import DecryptionError, FormatError, TagMismatchError, TruncatedCiphertextError
from client.protocol import FILE_KEY_LENGTH, MAX_NONCE_LENGTH, MIN_NONCE_LENGTH, TAG_LENGTH

#: Writers use the RFC's 96-bit nonce; readers accept 8–128 bytes (desktop/mobile write 16).
NONCE_LENGTH = 12
#: Streaming granularity: big enough to run at AES-NI speed, small enough to bound memory.
CHUNK_SIZE = 1 << 20


@dataclass(frozen=True)
class FileSecret:
    """Key and nonce of one file version. Never reuse one for a second encryption."""

    key: bytes = field(repr=False)
    nonce: bytes

    def __post_init__(self) -> None:
        if len(self.key) not in (16, 24, 32):
            raise FormatError("AES key must be 16, 24 or 32 bytes")
        if not MIN_NONCE_LENGTH <= len(self.nonce) <= MAX_NONCE_LENGTH:
            raise FormatError("GCM nonce has an unsupported length")


def new_file_secret() -> FileSecret:
    """A fresh random AES-128 key and 12-byte nonce (one per file version, also per copy)."""
    return FileSecret(os.urandom(FILE_KEY_LENGTH), os.urandom(NONCE_LENGTH))


def encrypt(secret: FileSecret, plaintext: bytes) -> bytes:
    """AES-GCM encrypt; returns ``ct‖tag``."""
    return AESGCM(secret.key).encrypt(secret.nonce, plaintext, None)


def decrypt(secret: FileSecret, data: bytes, *, expected_tag: bytes | None = None) -> bytes:
    """AES-GCM decrypt ``ct‖tag``; ``expected_tag`` is the tag recorded in metadata, if any."""
    if len(data) < TAG_LENGTH:
        raise TruncatedCiphertextError("ciphertext shorter than its tag")
    check_recorded_tag(data[-TAG_LENGTH:], expected_tag)
    try:
        return AESGCM(secret.key).decrypt(secret.nonce, data, None)
    except InvalidTag as exc:
        raise DecryptionError("AES-GCM authentication failed") from exc


def check_recorded_tag(trailing_tag: bytes, expected_tag: bytes | None) -> None:
    # Android compares the blob's trailing tag with the recorded one before decrypting; a
    # mismatch means blob and metadata were swapped or tampered (THREATS C3, C6).
    if expected_tag is not None and not hmac.compare_digest(trailing_tag, expected_tag):
        raise TagMismatchError("ciphertext tag differs from the tag recorded in metadata")


# --- streaming over file-like objects -------------------------------------------------------


class Readable(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


class Writable(Protocol):
    def write(self, data: memoryview | bytes, /) -> int | None: ...


def _read_full(src: Readable, view: memoryview) -> int:
    """Fill ``view`` unless EOF comes first; return the byte count."""
    total = 0
    while total < len(view):
        n = src.readinto(view[total:])
        if not n:
            break
        total += n
    return total


def encrypt_stream(src: Readable, dst: Writable, secret: FileSecret) -> bytes:
    """Encrypt ``src`` into ``dst`` as ``ct‖tag`` in bounded memory; return the tag."""
    encryptor = Cipher(algorithms.AES(secret.key), modes.GCM(secret.nonce)).encryptor()
    inbuf = bytearray(CHUNK_SIZE)
    outbuf = bytearray(CHUNK_SIZE + 15)  # update_into needs block_size - 1 spare bytes
    inview, outview = memoryview(inbuf), memoryview(outbuf)
    while n := _read_full(src, inview):
        written = encryptor.update_into(inview[:n], outbuf)
        dst.write(outview[:written])
        if n < CHUNK_SIZE:
            break
    encryptor.finalize()
    tag = encryptor.tag
    dst.write(tag)
    return tag


def decrypt_stream(
    src: Readable,
    dst: Writable,
    secret: FileSecret,
    *,
    expected_tag: bytes | None = None,
    size_hint: int | None = None,
) -> int:
    """Decrypt ``ct‖tag`` from ``src`` into ``dst``; return the plaintext length.

    ``dst`` receives plaintext *before* the tag is checked at the end: it must be a scratch
    destination the caller discards when this raises (see ``client.offline.atomic_output``).
    ``size_hint`` (the expected ``ct‖tag`` length, untrusted) only sizes the buffers: a 4 KiB
    file should not pay for zeroing 2 MiB of them.
    """
    decryptor = Cipher(algorithms.AES(secret.key), modes.GCM(secret.nonce)).decryptor()
    chunk = CHUNK_SIZE if size_hint is None else max(min(size_hint, CHUNK_SIZE), 4096)
    # The last 16 bytes of the stream are the tag, so always hold back 16 bytes at the front.
    buf = bytearray(TAG_LENGTH + chunk)
    outbuf = bytearray(TAG_LENGTH + chunk + 15)
    view, outview = memoryview(buf), memoryview(outbuf)
    held = _read_full(src, view[:TAG_LENGTH])
    total = 0
    while True:
        wanted = len(view) - held
        n = _read_full(src, view[held:])
        held += n
        if held > TAG_LENGTH:
            body = held - TAG_LENGTH
            written = decryptor.update_into(view[:body], outbuf)
            dst.write(outview[:written])
            total += written
            view[:TAG_LENGTH] = view[body:held]
            held = TAG_LENGTH
        if n < wanted:  # _read_full stops short only at EOF
            break
    if held < TAG_LENGTH:
        raise TruncatedCiphertextError("ciphertext shorter than its tag")
    tag = bytes(view[:TAG_LENGTH])
    check_recorded_tag(tag, expected_tag)
    try:
        decryptor.finalize_with_tag(tag)
    except InvalidTag as exc:
        raise DecryptionError("AES-GCM authentication failed") from exc
    return total


# --- streaming over iterables (HTTP bodies) ------------------------------------------------


def encrypt_chunks(chunks: Iterable[bytes], secret: FileSecret) -> Iterator[bytes]:
    """Yield ``ct‖tag`` for a plaintext given as chunks (e.g. an upload body)."""
    encryptor = Cipher(algorithms.AES(secret.key), modes.GCM(secret.nonce)).encryptor()
    for chunk in chunks:
        if chunk:
            yield encryptor.update(chunk)
    encryptor.finalize()
    yield encryptor.tag


def decrypt_chunks(
    chunks: Iterable[bytes], secret: FileSecret, *, expected_tag: bytes | None = None
) -> Iterator[bytes]:
    """Yield plaintext chunks of ``ct‖tag`` chunks; raises at the end if the tag is wrong.

    As with :func:`decrypt_stream`, what was yielded is unauthenticated until the iterator is
    exhausted without error.
    """
    decryptor = Cipher(algorithms.AES(secret.key), modes.GCM(secret.nonce)).decryptor()
    tail = b""
    for chunk in chunks:
        data = tail + chunk
        if len(data) > TAG_LENGTH:
            yield decryptor.update(data[:-TAG_LENGTH])
            tail = data[-TAG_LENGTH:]
        else:
            tail = data
    if len(tail) < TAG_LENGTH:
        raise TruncatedCiphertextError("ciphertext shorter than its tag")
    check_recorded_tag(tail, expected_tag)
    try:
        decryptor.finalize_with_tag(tail)
    except InvalidTag as exc:
        raise DecryptionError("AES-GCM authentication failed") from exc
