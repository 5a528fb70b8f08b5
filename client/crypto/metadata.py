"""Folder metadata: v2 encryption and documents, file drops, v1.x read (PROTOCOL.md §1.6–1.11).

Randomness (metadata keys, nonces, file-drop keys) comes from the public functions; the
``_…_from_parts`` twins take it as arguments so tests can pin it.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import hmac
import os
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from client.crypto.aead import NONCE_LENGTH, FileSecret, check_recorded_tag, decrypt, encrypt
from client.crypto.keys import load_certificate, rsa_unwrap, rsa_wrap
from client.crypto.keywrap import mnemonic_password
from client.errors import (
    DowngradeError,
    KeyUnwrapError,
    MalformedMetadataError,
    MissingKeyMaterialError,
    OwnEntryMissingError,
    V1ChecksumError,
)
from client.protocol import (
    LINKS_FIELD,
    METADATA_KEY_LENGTH,
    EncryptedBlob,
    FiledropEntry,
    FiledropRecipient,
    FileEntry,
    FolderMetadata,
    MetadataDocumentV1,
    MetadataDocumentV2,
    V1FileRecord,
    canonical_json,
    loads_json,
    normalise_mimetype,
    parse_file_entry,
    parse_folder_metadata,
)

#: Decompressed metadata larger than this is refused (gzip bombs).
MAX_INFLATED_BYTES = 64 * 1024 * 1024


def new_metadata_key() -> bytes:
    return os.urandom(METADATA_KEY_LENGTH)


def key_checksum(metadata_key: bytes) -> str:
    """keyChecksums entry: lower-case hex SHA-256 of the raw metadata key."""
    return hashlib.sha256(metadata_key).hexdigest()


# --- gzip + AES-GCM payloads ---------------------------------------------------------------


#: Sealed payloads are at least this long (README, "Protocol extensions").
MIN_PADDED_BYTES = 4096


def padded_length(length: int) -> int:
    """Padmé (Nikitin et al., PURBs, 2019): round up so that at most O(log log n) bits of the
    length show, for at most 12 % overhead; never below :data:`MIN_PADDED_BYTES`."""
    if length <= MIN_PADDED_BYTES:
        return MIN_PADDED_BYTES
    exponent = length.bit_length() - 1
    low_bits = exponent - exponent.bit_length()
    mask = (1 << low_bits) - 1
    return (length + mask) & ~mask


def _seal(key: bytes, nonce: bytes, obj: Any) -> EncryptedBlob:
    # mtime=0: no clock in the core, and identical input gives identical gzip bytes.
    compressed = gzip.compress(canonical_json(obj).encode("utf-8"), mtime=0)
    # Zero padding after the gzip member hides how well names compressed together (THREATS
    # M12: an outsider's file-drop names share the document with secret ones). gzip readers
    # stop at the end of the member; ours accepts nothing but zeros after it.
    padding = bytes(padded_length(len(compressed)) - len(compressed))
    data = encrypt(FileSecret(key, nonce), compressed + padding)
    return EncryptedBlob(data, nonce, data[-16:])


def _open(key: bytes, blob: EncryptedBlob, what: str) -> Any:
    check_recorded_tag(blob.ciphertext[-16:], blob.tag)
    compressed = decrypt(FileSecret(key, blob.nonce), blob.ciphertext)
    return loads_json(gunzip(compressed, what), what)


def gunzip(data: bytes, what: str = "metadata") -> bytes:
    """Decompress one gzip member, bounded by :data:`MAX_INFLATED_BYTES`."""
    inflater = zlib.decompressobj(wbits=31)  # 31: gzip container only
    try:
        out = inflater.decompress(data, MAX_INFLATED_BYTES)
    except zlib.error as exc:
        raise MalformedMetadataError(f"{what}: not gzip data") from exc
    if inflater.unconsumed_tail:
        raise MalformedMetadataError(f"{what}: decompresses to more than the size limit")
    if not inflater.eof:
        raise MalformedMetadataError(f"{what}: truncated gzip data")
    if inflater.unused_data.strip(b"\0"):
        raise MalformedMetadataError(f"{what}: data after the gzip member that is not padding")
    return out


def encrypt_folder_metadata(
    folder: FolderMetadata, metadata_key: bytes, *, root: bool
) -> EncryptedBlob:
    return _encrypt_folder_metadata_from_parts(
        folder, metadata_key, root=root, nonce=os.urandom(NONCE_LENGTH)
    )


def _encrypt_folder_metadata_from_parts(
    folder: FolderMetadata, metadata_key: bytes, *, root: bool, nonce: bytes
) -> EncryptedBlob:
    return _seal(metadata_key, nonce, folder.to_json(root=root))


def decrypt_folder_metadata(blob: EncryptedBlob, metadata_key: bytes) -> FolderMetadata:
    return parse_folder_metadata(decrypt_metadata_json(blob, metadata_key))


def decrypt_metadata_json(blob: EncryptedBlob, metadata_key: bytes) -> Any:
    """The decrypted inner document as parsed JSON, before any normalisation."""
    return _open(metadata_key, blob, "metadata")


# --- v2 outer documents --------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """A user the metadata key is wrapped for: id plus the certificate (PEM) carrying the key."""

    user_id: str
    certificate_pem: str

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return load_certificate(self.certificate_pem).public_key


def build_root_document(
    folder: FolderMetadata,
    metadata_key: bytes,
    recipients: Sequence[Recipient],
    *,
    version: str = "2.0",
) -> dict[str, Any]:
    """The outer JSON object of a root folder, ready to sign and upload."""
    if not recipients:
        raise MissingKeyMaterialError("a root folder needs at least one user")
    if key_checksum(metadata_key) not in folder.key_checksums:
        raise MissingKeyMaterialError("keyChecksums must list the current metadata key")
    users = [
        {
            "userId": r.user_id,
            "certificate": r.certificate_pem,
            "encryptedMetadataKey": base64.b64encode(rsa_wrap(r.public_key, metadata_key)).decode(),
        }
        for r in recipients
    ]
    return {
        "metadata": encrypt_folder_metadata(folder, metadata_key, root=True).to_json(),
        "users": users,
        "version": version,
    }


def build_subfolder_document(
    folder: FolderMetadata, metadata_key: bytes, *, version: str = "2.0"
) -> dict[str, Any]:
    """Sub-folders: encrypted with the root's key, no ``users``, no ``keyChecksums``."""
    return {
        "metadata": encrypt_folder_metadata(folder, metadata_key, root=False).to_json(),
        "version": version,
    }


def unwrap_metadata_key(
    document: MetadataDocumentV2, user_id: str, private_key: rsa.RSAPrivateKey
) -> bytes:
    entry = document.user(user_id)
    if entry is None:
        raise OwnEntryMissingError(f"root metadata has no entry for user {user_id!r}")
    key = rsa_unwrap(private_key, entry.encrypted_metadata_key)
    if len(key) != METADATA_KEY_LENGTH:
        raise KeyUnwrapError("unwrapped metadata key has the wrong length")
    return key


# --- file drop (§1.10) ----------------------------------------------------------------------


def create_filedrop_entry(
    file_entry: FileEntry,
    recipients: Iterable[tuple[str, rsa.RSAPublicKey]],
    *,
    folder: str | None = None,
) -> FiledropEntry:
    """What an anonymous uploader adds to ``filedrop``: the file entry sealed for every user.

    ``folder`` (the node id of the folder dropped into) is sealed in with it, so the server
    cannot move the drop to another folder unnoticed (README, "Protocol extensions").
    """
    return _create_filedrop_entry_from_parts(
        file_entry,
        recipients,
        filedrop_key=os.urandom(METADATA_KEY_LENGTH),
        nonce=os.urandom(NONCE_LENGTH),
        folder=folder,
    )


def _create_filedrop_entry_from_parts(
    file_entry: FileEntry,
    recipients: Iterable[tuple[str, rsa.RSAPublicKey]],
    *,
    filedrop_key: bytes,
    nonce: bytes,
    folder: str | None = None,
) -> FiledropEntry:
    wrapped = tuple(
        FiledropRecipient(user_id, rsa_wrap(public_key, filedrop_key))
        for user_id, public_key in recipients
    )
    if not wrapped:
        raise MissingKeyMaterialError("a file drop needs at least one recipient")
    sealed = file_entry.to_json()
    if folder is not None:
        sealed[LINKS_FIELD] = {"folder": folder}
    return FiledropEntry(_seal(filedrop_key, nonce, sealed), wrapped)


def open_filedrop_entry(
    entry: FiledropEntry,
    user_id: str,
    private_key: rsa.RSAPrivateKey,
    *,
    folder: str | None = None,
) -> FileEntry:
    """Open a drop; with ``folder``, refuse one sealed for another folder (THREATS M10)."""
    recipient = next((r for r in entry.recipients if r.user_id == user_id), None)
    if recipient is None:
        raise OwnEntryMissingError(f"file drop has no key for user {user_id!r}")
    key = rsa_unwrap(private_key, recipient.encrypted_filedrop_key)
    if len(key) != METADATA_KEY_LENGTH:
        raise KeyUnwrapError("unwrapped file-drop key has the wrong length")
    raw = _open(key, entry.blob, "filedrop")
    file_entry = parse_file_entry(raw, "filedrop entry")
    if file_entry is None:
        raise MalformedMetadataError("file drop entry has no file name")
    links = raw.get(LINKS_FIELD)
    if links is not None:
        addressed = links.get("folder") if isinstance(links, dict) else None
        if not isinstance(addressed, str):
            raise MalformedMetadataError(f"filedrop entry: {LINKS_FIELD}.folder is missing")
        if folder is not None and addressed != folder:
            raise MalformedMetadataError(
                f"a file drop sealed for folder {addressed} was served in folder {folder}"
            )
    return file_entry


# --- v1.x read (§1.11) ----------------------------------------------------------------------


@dataclass(frozen=True)
class FolderMetadataV1:
    """A decrypted v1 folder: its metadata key and the file entries (folders included)."""

    metadata_key: bytes = field(repr=False)
    files: Mapping[str, FileEntry]


def _b64_twice(data: bytes, what: str) -> bytes:
    try:
        return base64.b64decode(base64.b64decode(data, validate=True), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyUnwrapError(f"{what}: not double base64") from exc


def unwrap_metadata_key_v1(
    document: MetadataDocumentV1, private_key: rsa.RSAPrivateKey, index: int | None = None
) -> bytes:
    """v1 wraps ``base64(base64(key))``; v1.0 uses the highest index unless told otherwise."""
    index = max(document.metadata_keys) if index is None else index
    if index not in document.metadata_keys:
        raise MissingKeyMaterialError(f"no metadata key with index {index}")
    key = _b64_twice(rsa_unwrap(private_key, document.metadata_keys[index]), "metadata key")
    if len(key) != METADATA_KEY_LENGTH:
        raise KeyUnwrapError("unwrapped metadata key has the wrong length")
    return key


def v1_checksum(mnemonic: str, file_ids: Iterable[str], metadata_key_text: str) -> str:
    """Metadata 1.2 checksum: sha256(password ‖ sorted file ids ‖ encrypted metadataKey text)."""
    material = mnemonic_password(mnemonic) + "".join(sorted(file_ids)).encode("utf-8")
    return hashlib.sha256(material + metadata_key_text.encode("utf-8")).hexdigest()


def verify_v1_checksum(document: MetadataDocumentV1, mnemonic: str) -> None:
    if document.version != "1.2":
        return
    if document.checksum is None or document.metadata_key_text is None:
        raise DowngradeError("metadata 1.2 without a checksum")
    expected = v1_checksum(mnemonic, document.files, document.metadata_key_text)
    if not hmac.compare_digest(expected, document.checksum):
        raise V1ChecksumError("metadata 1.2 checksum does not match")


def decrypt_v1_file_json(record: V1FileRecord, metadata_key: bytes) -> Any:
    """The decrypted JSON of one v1 entry: AES-GCM over base64(JSON {key, filename, mimetype})."""
    plaintext = decrypt(FileSecret(metadata_key, record.encrypted_iv), record.encrypted)
    try:
        text = base64.b64decode(plaintext, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedMetadataError("v1 file entry: not base64 JSON") from exc
    return loads_json(text, "v1 file entry")


def decrypt_v1_file_record(record: V1FileRecord, metadata_key: bytes) -> FileEntry:
    obj = decrypt_v1_file_json(record, metadata_key)
    if not isinstance(obj, dict) or not isinstance(obj.get("filename"), str):
        raise MalformedMetadataError("v1 file entry: expected an object with a filename")
    try:
        key = base64.b64decode(obj.get("key", ""), validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise MalformedMetadataError("v1 file entry: key is not base64") from exc
    if len(key) != METADATA_KEY_LENGTH:
        raise MalformedMetadataError("v1 file entry: key must be 16 bytes")
    return FileEntry(
        filename=obj["filename"],
        mimetype=normalise_mimetype(obj.get("mimetype")),
        key=key,
        nonce=record.initialization_vector,
        authentication_tag=record.authentication_tag,
    )


def decrypt_metadata_v1(
    document: MetadataDocumentV1,
    *,
    private_key: rsa.RSAPrivateKey | None = None,
    metadata_key: bytes | None = None,
    mnemonic: str | None = None,
) -> FolderMetadataV1:
    """Decrypt a v1.x folder with the private key (or an already known metadata key).

    With ``mnemonic`` the 1.2 checksum is verified too.
    """
    if mnemonic is not None:
        verify_v1_checksum(document, mnemonic)
    if metadata_key is None and private_key is None:
        raise MissingKeyMaterialError("need a private key or the metadata key")
    unwrapped: dict[int | None, bytes] = {}

    def key_for(index: int | None) -> bytes:
        if metadata_key is not None:
            return metadata_key
        if index not in unwrapped:
            assert private_key is not None
            unwrapped[index] = unwrap_metadata_key_v1(document, private_key, index)
        return unwrapped[index]

    files = {
        uid: decrypt_v1_file_record(record, key_for(record.metadata_key_index))
        for uid, record in document.files.items()
    }
    return FolderMetadataV1(key_for(None), files)
