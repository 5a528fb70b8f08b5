"""File encryption: ct‖tag layout, streaming in bounded memory, tampering, fresh keys."""

from __future__ import annotations

import io

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from client import crypto
from client.crypto import aead
from client.crypto.files import _encrypt_file_from_parts
from client.errors import DecryptionError, FormatError, TagMismatchError, TruncatedCiphertextError

SECRET = crypto.FileSecret(bytes(range(16)), bytes(range(12)))


class Trickle(io.RawIOBase):
    """A reader that returns at most `step` bytes per call (like a socket)."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data[self._pos : self._pos + min(self._step, len(buffer))]
        buffer[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


def test_layout_is_ciphertext_then_tag():
    blob, entry = _encrypt_file_from_parts(b"hello", "a.txt", "text/plain", SECRET)
    assert len(blob) == 5 + 16
    assert blob == AESGCM(SECRET.key).encrypt(SECRET.nonce, b"hello", None)
    assert entry.authentication_tag == blob[-16:]
    assert crypto.decrypt_file(blob, entry) == b"hello"


def test_new_file_secret_is_aes128_with_12_byte_nonce():
    secret = crypto.new_file_secret()
    assert len(secret.key) == 16 and len(secret.nonce) == 12
    assert "key" not in repr(secret).replace("FileSecret", "")


@pytest.mark.parametrize("nonce_len", [12, 16])
@pytest.mark.parametrize(
    "size",
    [
        0,
        1,
        15,
        16,
        17,
        aead.CHUNK_SIZE - 1,
        aead.CHUNK_SIZE,
        aead.CHUNK_SIZE + 1,
        3 * aead.CHUNK_SIZE + 5,
    ],
)
def test_stream_matches_one_shot(size, nonce_len):
    secret = crypto.FileSecret(b"k" * 16, b"n" * nonce_len)
    plaintext = bytes(i % 251 for i in range(size))
    out = io.BytesIO()
    tag = crypto.encrypt_stream(io.BytesIO(plaintext), out, secret)
    expected = AESGCM(secret.key).encrypt(secret.nonce, plaintext, None)
    assert out.getvalue() == expected and tag == expected[-16:]
    back = io.BytesIO()
    assert crypto.decrypt_stream(io.BytesIO(expected), back, secret, expected_tag=tag) == size
    assert back.getvalue() == plaintext


@pytest.mark.parametrize("size", [0, 100, 5000, aead.CHUNK_SIZE + 3])
@pytest.mark.parametrize("hint", [0, 17, 4096, 5016, 1 << 30])
def test_size_hint_sizes_buffers_only(size, hint):
    """The hint comes from the server's listing: a lie changes the speed, never the result."""
    plaintext = bytes(i % 253 for i in range(size))
    blob = aead.encrypt(SECRET, plaintext)
    out = io.BytesIO()
    tag = blob[-16:]
    got = crypto.decrypt_stream(io.BytesIO(blob), out, SECRET, expected_tag=tag, size_hint=hint)
    assert got == size and out.getvalue() == plaintext
    bad = bytearray(blob)
    bad[0 if size else -1] ^= 1
    with pytest.raises((DecryptionError, TagMismatchError)):
        crypto.decrypt_stream(io.BytesIO(bytes(bad)), io.BytesIO(), SECRET, size_hint=hint)


@pytest.mark.parametrize("step", [1, 7, 16, 17, 4096])
def test_stream_with_short_reads(step):
    plaintext = bytes(range(256)) * 40
    blob = aead.encrypt(SECRET, plaintext)
    out = io.BytesIO()
    crypto.decrypt_stream(Trickle(blob, step), out, SECRET)
    assert out.getvalue() == plaintext
    enc = io.BytesIO()
    crypto.encrypt_stream(Trickle(plaintext, step), enc, SECRET)
    assert enc.getvalue() == blob


def test_chunk_iterators_round_trip():
    plaintext = b"abc" * 100_000
    chunks = [plaintext[i : i + 1000] for i in range(0, len(plaintext), 1000)]
    blob = b"".join(crypto.encrypt_chunks(chunks, SECRET))
    assert blob == AESGCM(SECRET.key).encrypt(SECRET.nonce, plaintext, None)
    pieces = [blob[i : i + 7] for i in range(0, len(blob), 7)]
    assert b"".join(crypto.decrypt_chunks(pieces, SECRET, expected_tag=blob[-16:])) == plaintext


def test_file_stream_entry_round_trip():
    src, dst = io.BytesIO(b"x" * 100_000), io.BytesIO()
    entry = crypto.encrypt_file_stream(src, dst, filename="x.bin")
    assert entry.mimetype == "application/octet-stream"
    out = io.BytesIO()
    crypto.decrypt_file_stream(io.BytesIO(dst.getvalue()), out, entry)
    assert out.getvalue() == b"x" * 100_000


# --- tampering, each next to its untampered twin ---------------------------------------------


def _blob_and_entry():
    return _encrypt_file_from_parts(b"secret file content" * 10, "f", "text/plain", SECRET)


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def _decrypt_all_ways(blob, entry):
    """One-shot, file stream and chunk iterator must agree."""
    results = []
    for decrypt in (
        lambda: crypto.decrypt_file(blob, entry),
        lambda: crypto.decrypt_file_stream(io.BytesIO(blob), io.BytesIO(), entry),
        lambda: b"".join(
            crypto.decrypt_chunks(
                [blob],
                crypto.FileSecret(entry.key, entry.nonce),
                expected_tag=entry.authentication_tag,
            )
        ),
    ):
        results.append(decrypt())
    return results


def test_untampered_twin_decrypts():
    blob, entry = _blob_and_entry()
    assert _decrypt_all_ways(blob, entry)[0] == b"secret file content" * 10


def test_flipped_ciphertext_bit():
    blob, entry = _blob_and_entry()
    with pytest.raises(DecryptionError) as info:
        crypto.decrypt_file(_flip(blob, 5), entry)
    assert type(info.value) is DecryptionError
    with pytest.raises(DecryptionError):
        crypto.decrypt_file_stream(io.BytesIO(_flip(blob, 5)), io.BytesIO(), entry)


def test_flipped_tag_in_blob_differs_from_recorded_tag():
    blob, entry = _blob_and_entry()
    for decrypt in (
        lambda b: crypto.decrypt_file(b, entry),
        lambda b: crypto.decrypt_file_stream(io.BytesIO(b), io.BytesIO(), entry),
    ):
        with pytest.raises(TagMismatchError):
            decrypt(_flip(blob, len(blob) - 1))


def test_flipped_tag_without_recorded_tag_fails_gcm():
    blob, _ = _blob_and_entry()
    with pytest.raises(DecryptionError):
        aead.decrypt(SECRET, _flip(blob, len(blob) - 1))


def test_wrong_key_and_wrong_nonce():
    blob, _ = _blob_and_entry()
    for secret in (
        crypto.FileSecret(b"\x00" * 16, SECRET.nonce),
        crypto.FileSecret(SECRET.key, b"\x00" * 12),
    ):
        with pytest.raises(DecryptionError):
            aead.decrypt(secret, blob)
        with pytest.raises(DecryptionError):
            aead.decrypt_stream(io.BytesIO(blob), io.BytesIO(), secret)


@pytest.mark.parametrize("cut", [1, 16, 17])
def test_truncated_blob(cut):
    blob, entry = _blob_and_entry()
    with pytest.raises(DecryptionError):
        crypto.decrypt_file(blob[:-cut], entry)
    with pytest.raises(DecryptionError):
        aead.decrypt(SECRET, blob[:-cut])


def test_blob_shorter_than_a_tag():
    for decrypt in (
        lambda: aead.decrypt(SECRET, b"\x00" * 15),
        lambda: aead.decrypt_stream(io.BytesIO(b"\x00" * 15), io.BytesIO(), SECRET),
        lambda: list(aead.decrypt_chunks([b"\x00" * 15], SECRET)),
    ):
        with pytest.raises(TruncatedCiphertextError):
            decrypt()


def test_secret_validates_lengths():
    with pytest.raises(FormatError):
        crypto.FileSecret(b"short", b"n" * 12)
    with pytest.raises(FormatError):
        crypto.FileSecret(b"k" * 16, b"n" * 7)


# --- no key or nonce ever repeats (THREATS C1) -----------------------------------------------


def test_no_key_or_nonce_repeats_across_updates_and_copies():
    blob, entry = crypto.encrypt_file(b"v0", filename="doc.txt")
    seen_keys, seen_nonces = {entry.key}, {entry.nonce}
    versions = [(blob, entry)]
    for i in range(1, 50):  # updates: each version encrypted anew
        blob, entry = crypto.encrypt_file(f"v{i}".encode(), filename="doc.txt")
        versions.append((blob, entry))
    for blob, entry in list(versions):  # copies: re-encrypted, never the same blob
        versions.append(crypto.reencrypt_file(blob, entry))
    stream_entry = crypto.encrypt_file_stream(io.BytesIO(b"s"), io.BytesIO(), filename="doc.txt")
    versions.append((b"", stream_entry))
    seen_keys = [e.key for _, e in versions]
    seen_nonces = [e.nonce for _, e in versions]
    assert len(set(seen_keys)) == len(seen_keys) == 101
    assert len(set(seen_nonces)) == len(seen_nonces) == 101
    copy_blob, copy_entry = versions[50]
    assert crypto.decrypt_file(copy_blob, copy_entry) == b"v0"
