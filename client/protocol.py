"""Wire types and strict parsers for Nextcloud E2EE (PROTOCOL.md §1–2). Standard library only.

Parsers take text or already-parsed JSON and return frozen dataclasses; anything that does not fit
the protocol raises :class:`~client.errors.FormatError` (or a subclass), never ``KeyError``,
``TypeError`` or a JSON error. Tolerances the real clients need (PROTOCOL.md §2.2) are applied
here so the crypto layer only ever sees normalised values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from client.errors import FormatError, MalformedMetadataError, UnsupportedVersionError

# --- HTTP names shared with the server (PROTOCOL.md §3) ---------------------------------------

SIGNATURE_HEADER = "X-NC-E2EE-SIGNATURE"
COUNTER_HEADER = "X-NC-E2EE-COUNTER"
TOKEN_HEADER = "e2e-token"  # noqa: S105 - a header name, not a secret
SHARE_TOKEN_HEADER = "X-NC-E2EE-SHARE-TOKEN"  # noqa: S105

# --- constants ------------------------------------------------------------------------------

TAG_LENGTH = 16
FILE_KEY_LENGTH = 16
METADATA_KEY_LENGTH = 16
#: GCM nonce lengths accepted on read; writers use 12 (web client, RFC).
MIN_NONCE_LENGTH, MAX_NONCE_LENGTH = 8, 128
FOLDER_MIMETYPE = "httpd/unix-directory"
DEFAULT_MIMETYPE = "application/octet-stream"
#: The 2017 prototypes' two-part wrapped private key had this salt built in (PROTOCOL.md §1.2).
LEGACY_FIXED_SALT = b"$4$YmBjm3hk$Qb74D5IUYwghUmzsMqeNFx5z0/8$"
#: Pre-2020 clients separated base64 parts with base64("|") instead of "|".
LEGACY_SEPARATOR = "fA=="
#: A metadata document bigger than this is refused before parsing (denial-of-service bound).
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024

_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


# --- primitive decoders ---------------------------------------------------------------------


def b64decode(value: object, what: str) -> bytes:
    """Decode standard padded base64 (RFC 4648 §4); surrounding whitespace is ignored."""
    if not isinstance(value, str):
        raise FormatError(f"{what}: expected a base64 string")
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError(f"{what}: invalid base64") from exc


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Duplicate keys let a signature canonicaliser and a parser disagree (THREATS M11).
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise FormatError(f"JSON: duplicate key {key!r}")
        obj[key] = value
    return obj


def _reject_constant(name: str) -> Any:
    raise FormatError(f"JSON: non-standard constant {name}")


def loads_json(text: str | bytes, what: str = "JSON") -> Any:
    """Parse strict JSON: UTF-8, no duplicate keys, no NaN/Infinity, bounded size."""
    if isinstance(text, bytes):
        if len(text) > MAX_DOCUMENT_BYTES:
            raise FormatError(f"{what}: document too large")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(f"{what}: not UTF-8") from exc
    if not isinstance(text, str):
        raise FormatError(f"{what}: expected text")
    if len(text) > MAX_DOCUMENT_BYTES:
        raise FormatError(f"{what}: document too large")
    try:
        return json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except FormatError as exc:
        raise FormatError(f"{what}: {exc}") from exc
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"{what}: invalid JSON") from exc


def canonical_json(obj: Any) -> str:
    """Compact JSON with sorted keys, raw UTF-8 and unescaped ``/`` (PROTOCOL.md §1.7)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _obj(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedMetadataError(f"{what}: expected a JSON object")
    return value


def _str(value: object, what: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not allow_empty):
        raise MalformedMetadataError(f"{what}: expected a non-empty string")
    return value


def _path_component(value: str, what: str) -> str:
    """A name or server id inside a folder is one path component: no separator, no NUL, not
    ``.``/``..``. Metadata (and unauthenticated file drops) must not steer where the client
    writes locally or which server path it addresses (THREATS M10)."""
    if value in (".", "..") or any(c in value for c in "/\\\0"):
        raise MalformedMetadataError(f"{what}: {value!r} is not a single path component")
    return value


def _b64_field(obj: Mapping[str, Any], key: str, what: str, *, length: int | None = None) -> bytes:
    if key not in obj:
        raise MalformedMetadataError(f"{what}: missing {key!r}")
    raw = b64decode(obj[key], f"{what}.{key}")
    if length is not None and len(raw) != length:
        raise MalformedMetadataError(f"{what}.{key}: expected {length} bytes, got {len(raw)}")
    return raw


def _nonce_field(obj: Mapping[str, Any], key: str, what: str) -> bytes:
    nonce = _b64_field(obj, key, what)
    if not MIN_NONCE_LENGTH <= len(nonce) <= MAX_NONCE_LENGTH:
        raise MalformedMetadataError(f"{what}.{key}: bad nonce length {len(nonce)}")
    return nonce


def split_legacy_parts(text: str) -> list[str]:
    """Split ``a|b|c`` or the pre-2020 ``a fA== b fA== c`` form into its base64 parts.

    The legacy separator is itself a base64 quantum, so split only on 4-aligned quanta; a part
    whose last quantum happens to be ``fA==`` shows up as an empty part and is re-joined.
    """
    if "|" in text:
        return text.split("|")
    if len(text) % 4:
        return [text]
    parts: list[str] = [""]
    for i in range(0, len(text), 4):
        quantum = text[i : i + 4]
        if quantum == LEGACY_SEPARATOR:
            if parts[-1] or len(parts) == 1:
                parts.append("")
            else:  # previous part ended with a literal "fA==" quantum
                parts[-2] += LEGACY_SEPARATOR
        else:
            parts[-1] += quantum
    return parts


# --- wrapped private key (§1.2) -------------------------------------------------------------


@dataclass(frozen=True)
class WrappedPrivateKey:
    """The mnemonic-wrapped private key string ``b64(ct‖tag)|b64(iv)|b64(salt)``."""

    ciphertext: bytes  # includes the 16-byte GCM tag
    iv: bytes
    salt: bytes
    legacy_separator: bool = False
    two_part: bool = False  # 2017 form: no salt part, LEGACY_FIXED_SALT applies

    def serialize(self) -> str:
        return "|".join(b64encode(x) for x in (self.ciphertext, self.iv, self.salt))


def parse_wrapped_private_key(text: object) -> WrappedPrivateKey:
    if not isinstance(text, str) or not text.strip():
        raise FormatError("private key: expected a non-empty string")
    text = text.strip()
    legacy = "|" not in text
    parts = split_legacy_parts(text)
    if len(parts) == 3:
        ct, iv, salt = (b64decode(p, "private key part") for p in parts)
        two_part = False
    elif len(parts) == 2 and legacy:
        ct, iv = (b64decode(p, "private key part") for p in parts)
        salt, two_part = LEGACY_FIXED_SALT, True
    else:
        raise FormatError("private key: expected ct|iv|salt")
    if len(ct) <= TAG_LENGTH or not salt:
        raise FormatError("private key: empty or truncated part")
    if not MIN_NONCE_LENGTH <= len(iv) <= MAX_NONCE_LENGTH:
        raise FormatError("private key: bad IV length")
    return WrappedPrivateKey(ct, iv, salt, legacy_separator=legacy, two_part=two_part)


# --- symmetric blobs and file entries (§1.3, §2.2) ------------------------------------------


@dataclass(frozen=True)
class EncryptedBlob:
    """An AES-GCM ciphertext as metadata carries it: ``ct‖tag`` plus nonce and the tag again."""

    ciphertext: bytes  # ct‖tag
    nonce: bytes
    tag: bytes

    def to_json(self, *, nonce_suffix: bool = False) -> dict[str, str]:
        ciphertext = b64encode(self.ciphertext)
        if nonce_suffix:  # desktop/iOS habit, accepted by every reader
            ciphertext += "|" + b64encode(self.nonce)
        return {
            "ciphertext": ciphertext,
            "nonce": b64encode(self.nonce),
            "authenticationTag": b64encode(self.tag),
        }


def parse_encrypted_blob(obj: object, what: str) -> EncryptedBlob:
    obj = _obj(obj, what)
    ciphertext_text = _str(obj.get("ciphertext"), f"{what}.ciphertext")
    # Desktop and iOS append "|<b64 nonce>"; every reader takes part 0 (PROTOCOL.md §1.6).
    ciphertext = b64decode(ciphertext_text.split("|", 1)[0], f"{what}.ciphertext")
    if len(ciphertext) < TAG_LENGTH:
        raise MalformedMetadataError(f"{what}.ciphertext: shorter than its tag")
    nonce = _nonce_field(obj, "nonce", what)
    tag = _b64_field(obj, "authenticationTag", what, length=TAG_LENGTH)
    return EncryptedBlob(ciphertext, nonce, tag)


@dataclass(frozen=True)
class FileEntry:
    """One file of a folder: clear name, type and the key material of its current version."""

    filename: str
    mimetype: str
    key: bytes = field(repr=False)
    nonce: bytes
    authentication_tag: bytes
    #: Came in through a file drop: an anonymous, unauthenticated sender (THREATS M10). Kept
    #: after migration so a dropped file never passes for one a member wrote.
    dropped: bool = False

    @property
    def is_folder(self) -> bool:
        return self.mimetype == FOLDER_MIMETYPE

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "filename": self.filename,
            "mimetype": self.mimetype,
            "key": b64encode(self.key),
            "nonce": b64encode(self.nonce),
            "authenticationTag": b64encode(self.authentication_tag),
        }
        if self.dropped:
            doc["dropped"] = True
        return doc


def normalise_mimetype(value: object) -> str:
    if not isinstance(value, str) or not value:
        return DEFAULT_MIMETYPE
    return FOLDER_MIMETYPE if value == "inode/directory" else value


def parse_file_entry(obj: object, what: str) -> FileEntry | None:
    """Parse a v2 ``files`` value or a decrypted file-drop entry; ``None`` if it has no name."""
    obj = _obj(obj, what)
    filename = obj.get("filename")
    if not isinstance(filename, str):
        raise MalformedMetadataError(f"{what}.filename: expected a string")
    if not filename:
        return None  # PROTOCOL.md §2.2: empty filename → skip entry
    _path_component(filename, f"{what}.filename")
    nonce_key = "nonce" if "nonce" in obj else "initializationVector"  # early desktop v2
    dropped = obj.get("dropped", False)
    if not isinstance(dropped, bool):
        raise MalformedMetadataError(f"{what}.dropped: expected a boolean")
    return FileEntry(
        filename=filename,
        mimetype=normalise_mimetype(obj.get("mimetype")),
        key=_b64_field(obj, "key", what, length=FILE_KEY_LENGTH),
        nonce=_nonce_field(obj, nonce_key, what),
        authentication_tag=_b64_field(obj, "authenticationTag", what, length=TAG_LENGTH),
        dropped=dropped,
    )


# --- v2 inner metadata (§2.2) ---------------------------------------------------------------

#: e2ee-stack's own member of the inner metadata (README, "Protocol extensions"). Other clients
#: ignore unknown members; ours refuses a folder that had it and lost it.
LINKS_FIELD = "e2eeStack"
#: How many earlier versions a document names; a reader that missed more cannot check forks.
MAX_ANCESTORS = 16


@dataclass(frozen=True)
class FolderLinks:
    """Where a metadata document belongs and which versions it extends (THREATS S3, M5).

    Node ids: a topmost folder's server file id as text, a sub-folder's uuid (its name on the
    server). ``ancestors`` are (counter, version hash) of earlier versions, newest first.
    """

    folder: str
    parent: str | None
    root: str
    ancestors: tuple[tuple[int, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "parent": self.parent,
            "root": self.root,
            "ancestors": [[counter, digest] for counter, digest in self.ancestors],
        }


def _node_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise MalformedMetadataError(f"{what}: expected a node id")
    _path_component(value, what)
    return value


def parse_folder_links(obj: object) -> FolderLinks:
    what = f"metadata.{LINKS_FIELD}"
    obj = _obj(obj, what)
    parent = obj.get("parent")
    ancestors_raw = obj.get("ancestors", [])
    if not isinstance(ancestors_raw, list) or len(ancestors_raw) > MAX_ANCESTORS:
        raise MalformedMetadataError(f"{what}.ancestors: expected at most {MAX_ANCESTORS} pairs")
    ancestors = []
    for item in ancestors_raw:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or isinstance(item[0], bool)
            or not isinstance(item[0], int)
            or item[0] < 0
            or not isinstance(item[1], str)
            or not _HEX_SHA256.fullmatch(item[1])
        ):
            raise MalformedMetadataError(f"{what}.ancestors: expected [counter, sha256] pairs")
        ancestors.append((item[0], item[1]))
    return FolderLinks(
        folder=_node_id(obj.get("folder"), f"{what}.folder"),
        parent=None if parent is None else _node_id(parent, f"{what}.parent"),
        root=_node_id(obj.get("root"), f"{what}.root"),
        ancestors=tuple(ancestors),
    )


def version_hash(source: Mapping[str, Any]) -> str:
    """Names one signed metadata version: hex SHA-256 of the bytes its signature covers."""
    return hashlib.sha256(signed_content(source)).hexdigest()


@dataclass(frozen=True)
class FolderMetadata:
    """Decrypted v2 metadata of one folder (root or sub-folder)."""

    counter: int
    files: Mapping[str, FileEntry] = field(default_factory=dict)
    folders: Mapping[str, str] = field(default_factory=dict)
    key_checksums: tuple[str, ...] = ()
    deleted: bool = False
    links: FolderLinks | None = None

    def to_json(self, *, root: bool) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "counter": self.counter,
            "deleted": self.deleted,
            "files": {uid: entry.to_json() for uid, entry in self.files.items()},
            "folders": dict(self.folders),
        }
        if root:
            doc["keyChecksums"] = list(self.key_checksums)
        if self.links is not None:
            doc[LINKS_FIELD] = self.links.to_json()
        return doc


def parse_folder_metadata(obj: object) -> FolderMetadata:
    what = "metadata"
    obj = _obj(obj, what)
    counter = obj.get("counter", 0)
    if isinstance(counter, bool) or not isinstance(counter, int) or counter < 0:
        raise MalformedMetadataError("metadata.counter: expected a non-negative integer")
    files: dict[str, FileEntry] = {}
    for uid, raw in _obj(obj.get("files", {}), "metadata.files").items():
        _path_component(uid, "metadata.files")
        entry = parse_file_entry(raw, f"metadata.files[{uid!r}]")
        if entry is not None:
            files[uid] = entry
    folders = _obj(obj.get("folders", {}), "metadata.folders")
    for uid, name in folders.items():
        _path_component(uid, "metadata.folders")
        _path_component(_str(name, f"metadata.folders[{uid!r}]"), f"metadata.folders[{uid!r}]")
    checksums_raw = obj.get("keyChecksums", [])
    if not isinstance(checksums_raw, list):
        raise MalformedMetadataError("metadata.keyChecksums: expected a list")
    checksums = []
    for item in checksums_raw:
        if not isinstance(item, str) or not _HEX_SHA256.fullmatch(item.lower()):
            raise MalformedMetadataError("metadata.keyChecksums: expected hex SHA-256 values")
        checksums.append(item.lower())
    deleted = obj.get("deleted", False)
    if not isinstance(deleted, bool):
        raise MalformedMetadataError("metadata.deleted: expected a boolean")
    links = parse_folder_links(obj[LINKS_FIELD]) if LINKS_FIELD in obj else None
    return FolderMetadata(counter, files, dict(folders), tuple(checksums), deleted, links)


# --- v2 outer document (§2.1) ---------------------------------------------------------------


@dataclass(frozen=True)
class UserEntry:
    user_id: str
    certificate_pem: str
    encrypted_metadata_key: bytes

    def to_json(self) -> dict[str, str]:
        return {
            "userId": self.user_id,
            "certificate": self.certificate_pem,
            "encryptedMetadataKey": b64encode(self.encrypted_metadata_key),
        }


@dataclass(frozen=True)
class FiledropRecipient:
    user_id: str
    encrypted_filedrop_key: bytes


@dataclass(frozen=True)
class FiledropEntry:
    blob: EncryptedBlob
    recipients: tuple[FiledropRecipient, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            **self.blob.to_json(),
            "users": [
                {"userId": r.user_id, "encryptedFiledropKey": b64encode(r.encrypted_filedrop_key)}
                for r in self.recipients
            ],
        }


def parse_filedrop_entry(obj: object, what: str = "filedrop") -> FiledropEntry:
    obj = _obj(obj, what)
    users = obj.get("users")
    if not isinstance(users, list):
        raise MalformedMetadataError(f"{what}.users: expected a list")
    recipients = []
    for i, raw in enumerate(users):
        user = _obj(raw, f"{what}.users[{i}]")
        recipients.append(
            FiledropRecipient(
                _str(user.get("userId"), f"{what}.users[{i}].userId"),
                _b64_field(user, "encryptedFiledropKey", f"{what}.users[{i}]"),
            )
        )
    return FiledropEntry(parse_encrypted_blob(obj, what), tuple(recipients))


@dataclass(frozen=True)
class MetadataDocumentV2:
    """The outer v2 document the server stores. ``source`` keeps the parsed JSON for signing."""

    metadata: EncryptedBlob
    users: tuple[UserEntry, ...]
    filedrop: Mapping[str, FiledropEntry]
    version: str
    source: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def is_root(self) -> bool:
        return bool(self.users)

    def user(self, user_id: str) -> UserEntry | None:
        return next((u for u in self.users if u.user_id == user_id), None)


def normalise_version(value: object) -> str:
    """Map every spelling of the version (§2.1, §2.3) onto ``"1.0"``, ``"1.2"``, ``"2.0"``…"""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise MalformedMetadataError("version: expected a number or string")
    try:
        number = float(value)
    except ValueError as exc:
        raise UnsupportedVersionError(f"version {str(value)[:20]!r} not understood") from exc
    known = {1.0: "1.0", 1.1: "1.1", 1.2: "1.2", 2.0: "2.0", 2.1: "2.1"}
    if number not in known:
        raise UnsupportedVersionError(f"version {str(value)[:20]!r} not supported")
    return known[number]


def document_version(obj: Mapping[str, Any]) -> str:
    """Version of an outer document: top-level (v2) or ``metadata.version`` (v1)."""
    if "version" in obj:
        return normalise_version(obj["version"])
    inner = obj.get("metadata")
    if isinstance(inner, dict) and "version" in inner:
        return normalise_version(inner["version"])
    raise MalformedMetadataError("document has no version")


def parse_metadata_v2(obj: object) -> MetadataDocumentV2:
    obj = _obj(obj, "document")
    version = document_version(obj)
    if not version.startswith("2"):
        raise UnsupportedVersionError(f"expected metadata 2.x, got {version}")
    users_raw = obj.get("users", [])
    if not isinstance(users_raw, list):
        raise MalformedMetadataError("users: expected a list")
    users = []
    seen: set[str] = set()
    for i, raw in enumerate(users_raw):
        user = _obj(raw, f"users[{i}]")
        user_id = _str(user.get("userId"), f"users[{i}].userId")
        if user_id in seen:  # THREATS K8: duplicate entries for one id
            raise MalformedMetadataError(f"users: duplicate userId {user_id!r}")
        seen.add(user_id)
        users.append(
            UserEntry(
                user_id,
                _str(user.get("certificate"), f"users[{i}].certificate"),
                _b64_field(user, "encryptedMetadataKey", f"users[{i}]"),
            )
        )
    filedrop_raw = _obj(obj.get("filedrop", {}), "filedrop")
    filedrop = {
        uid: parse_filedrop_entry(entry, f"filedrop[{uid!r}]")
        for uid, entry in filedrop_raw.items()
    }
    return MetadataDocumentV2(
        metadata=parse_encrypted_blob(obj.get("metadata"), "metadata"),
        users=tuple(users),
        filedrop=filedrop,
        version=version,
        source=obj,
    )


def signed_content(source: Mapping[str, Any]) -> bytes:
    """The bytes a v2 metadata signature covers (PROTOCOL.md §1.7).

    ASCII base64 of the canonical JSON of the outer document without ``filedrop`` and without
    any ``encryptedFiledropKey`` inside ``users``. Always computed from parsed JSON.
    """
    content = {k: v for k, v in source.items() if k != "filedrop"}
    if isinstance(content.get("users"), list):
        content["users"] = [
            {k: v for k, v in u.items() if k != "encryptedFiledropKey"}
            if isinstance(u, dict)
            else u
            for u in content["users"]
        ]
    return base64.b64encode(canonical_json(content).encode("utf-8"))


# --- v1.x outer document (§1.11, §2.3) ------------------------------------------------------


@dataclass(frozen=True)
class V1FileRecord:
    """A v1 ``files`` value: the encrypted per-file JSON plus the blob's IV and tag."""

    encrypted: bytes  # ct‖tag of base64(JSON)
    encrypted_iv: bytes
    initialization_vector: bytes  # of the file blob
    authentication_tag: bytes  # of the file blob; empty for folders
    metadata_key_index: int | None


@dataclass(frozen=True)
class MetadataDocumentV1:
    version: str
    #: ``{index: RSA ciphertext}``; v1.2 has the single key under index 0.
    metadata_keys: Mapping[int, bytes]
    #: The encrypted ``metadataKey`` text as stored (the 1.2 checksum hashes it verbatim).
    metadata_key_text: str | None
    checksum: str | None
    files: Mapping[str, V1FileRecord]


def _v1_file(obj: object, what: str) -> V1FileRecord:
    obj = _obj(obj, what)
    parts = split_legacy_parts(_str(obj.get("encrypted"), f"{what}.encrypted"))
    if len(parts) != 2:
        raise MalformedMetadataError(f"{what}.encrypted: expected ciphertext|iv")
    encrypted = b64decode(parts[0], f"{what}.encrypted")
    if len(encrypted) < TAG_LENGTH:
        raise MalformedMetadataError(f"{what}.encrypted: shorter than its tag")
    tag_text = obj.get("authenticationTag", "")
    tag = b64decode(tag_text, f"{what}.authenticationTag") if tag_text else b""
    if tag and len(tag) != TAG_LENGTH:
        raise MalformedMetadataError(f"{what}.authenticationTag: expected 16 bytes")
    index = obj.get("metadataKey")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
        raise MalformedMetadataError(f"{what}.metadataKey: expected an integer index")
    iv = b64decode(parts[1], f"{what}.encrypted iv")
    if not MIN_NONCE_LENGTH <= len(iv) <= MAX_NONCE_LENGTH:
        raise MalformedMetadataError(f"{what}.encrypted: bad iv length")
    return V1FileRecord(
        encrypted=encrypted,
        encrypted_iv=iv,
        initialization_vector=_nonce_field(obj, "initializationVector", what),
        authentication_tag=tag,
        metadata_key_index=index,
    )


def parse_metadata_v1(obj: object) -> MetadataDocumentV1:
    obj = _obj(obj, "document")
    meta = _obj(obj.get("metadata"), "metadata")
    version = document_version(obj)
    if not version.startswith("1"):
        raise UnsupportedVersionError(f"expected metadata 1.x, got {version}")
    keys: dict[int, bytes] = {}
    key_text: str | None = None
    if "metadataKey" in meta:
        key_text = _str(meta["metadataKey"], "metadata.metadataKey")
        keys[0] = b64decode(key_text, "metadata.metadataKey")
    elif "metadataKeys" in meta:
        for index, value in _obj(meta["metadataKeys"], "metadata.metadataKeys").items():
            if not (index.isascii() and index.isdigit()):
                raise MalformedMetadataError("metadata.metadataKeys: non-numeric index")
            keys[int(index)] = b64decode(value, f"metadata.metadataKeys[{index}]")
    if not keys:
        raise MalformedMetadataError("metadata: no metadata key")
    checksum = meta.get("checksum")
    if checksum is not None:
        if not isinstance(checksum, str) or not _HEX_SHA256.fullmatch(checksum.lower()):
            raise MalformedMetadataError("metadata.checksum: expected hex SHA-256")
        checksum = checksum.lower()
    files = {
        uid: _v1_file(raw, f"files[{uid!r}]")
        for uid, raw in _obj(obj.get("files", {}), "files").items()
    }
    return MetadataDocumentV1(version, keys, key_text, checksum, files)


def parse_metadata_document(text: str | bytes) -> MetadataDocumentV1 | MetadataDocumentV2:
    """Parse a stored metadata document, choosing the v1 or v2 parser by its version."""
    obj = _obj(loads_json(text, "metadata document"), "document")
    if document_version(obj).startswith("2"):
        return parse_metadata_v2(obj)
    return parse_metadata_v1(obj)


def unwrap_ocs_metadata(text: str | bytes) -> str:
    """Return the metadata JSON text from either the bare document or an OCS response."""
    obj = loads_json(text, "metadata file")
    if isinstance(obj, dict) and "ocs" in obj:
        data = _obj(_obj(obj["ocs"], "ocs").get("data"), "ocs.data")
        inner = data.get("meta-data")
        if not isinstance(inner, str):
            raise MalformedMetadataError("ocs.data.meta-data: expected a JSON string")
        return inner
    return text.decode("utf-8") if isinstance(text, bytes) else text
