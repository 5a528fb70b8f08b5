"""Paths to verified folders: walk the plain part of a path on WebDAV, then the encrypted part
through verified metadata (PROTOCOL.md §1.9, §8.1).

Every metadata document is verified in full before anything in it is used, with the history
the keystore holds (counter, keyChecksums, version, "was encrypted", last version accepted);
it must name the place it was fetched for and extend the version accepted last (links, THREATS
S3 and M5); the new history is stored after each successful read. Certificates of folder
users are pinned at first sight. The server only supplies hints (file ids, sizes, dates);
names, keys and structure come from metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from client import crypto
from client.api import DavEntry
from client.crypto.keys import Certificate
from client.crypto.lineage import Head, Place, check_extends, check_place
from client.crypto.verify import VerifiedFolder
from client.errors import (
    MalformedMetadataError,
    PlaintextInEncryptedFolderError,
    RemotePathError,
)
from client.ops import revocation
from client.ops.session import Session, now
from client.protocol import (
    FiledropEntry,
    FileEntry,
    FolderLinks,
    MetadataDocumentV2,
    parse_metadata_document,
    version_hash,
)


def clean(path: str) -> str:
    parts = [p for p in path.strip().strip("/").split("/") if p and p != "."]
    if ".." in parts:
        raise RemotePathError("remote paths may not contain '..'")
    return "/".join(parts)


def join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


@dataclass(eq=False)
class EncryptedFolder:
    """One folder of an encrypted tree, verified; mutable so a transaction can edit it."""

    file_id: int
    dav_path: str  # on the server: the root's clear name, then uuids
    clear_path: str  # as the user names it
    root: EncryptedFolder | None  # None: this is the topmost encrypted folder
    counter: int
    files: dict[str, FileEntry] = field(default_factory=dict)
    folders: dict[str, str] = field(default_factory=dict)
    filedrop: Mapping[str, FiledropEntry] = field(default_factory=dict)
    is_new: bool = False
    deleted: bool = False
    #: The folder above (None for the root); a move changes it.
    parent: EncryptedFolder | None = field(default=None, repr=False)
    #: The version read (None for a folder this transaction creates) and its links.
    head: Head | None = None
    links: FolderLinks | None = field(default=None, repr=False)
    # Root only: the metadata key and who may read (verified certificates).
    key: bytes = field(default=b"", repr=False)
    certificates: dict[str, Certificate] = field(default_factory=dict)
    key_checksums: list[str] = field(default_factory=list)
    verified: VerifiedFolder | None = field(default=None, repr=False)
    _listing: dict[str, DavEntry] | None = field(default=None, repr=False)

    @property
    def is_root(self) -> bool:
        return self.root is None

    @property
    def top(self) -> EncryptedFolder:
        return self if self.root is None else self.root

    @property
    def name(self) -> str:
        return self.clear_path.rsplit("/", 1)[-1]

    @property
    def node_id(self) -> str:
        """The id links name: the root's server file id, a sub-folder's uuid."""
        return str(self.file_id) if self.root is None else self.dav_path.rsplit("/", 1)[-1]

    @property
    def place(self) -> Place:
        parent = self.parent.node_id if self.parent is not None else None
        return Place(self.node_id, parent, self.top.node_id)

    def folder_uuid(self, name: str) -> str | None:
        return _unique(name, [u for u, n in self.folders.items() if n == name])

    def file_uuid(self, name: str) -> str | None:
        return _unique(name, [u for u, e in self.files.items() if e.filename == name])

    def listing(self, session: Session) -> dict[str, DavEntry]:
        """What the server holds in this folder, by server name (cached per folder object)."""
        if self._listing is None:
            entries = session.api.propfind(self.dav_path, depth=1)
            self._listing = {e.name: e for e in entries if e.path != self.dav_path}
        return self._listing


def _unique(name: str, uuids: list[str]) -> str | None:
    if len(uuids) > 1:
        raise MalformedMetadataError(f"two entries are called {name!r} in one folder")
    return uuids[0] if uuids else None


def _fetch(session: Session, file_id: int) -> tuple[MetadataDocumentV2 | object, str]:
    try:
        text, signature = session.api.metadata(file_id)
    except RemotePathError:
        raise RemotePathError(f"encrypted folder {file_id} has no metadata on the server") from None
    return parse_metadata_document(text), signature


def load_root(
    session: Session, file_id: int, dav_path: str, *, reported_encrypted: bool = True
) -> EncryptedFolder:
    """Fetch and verify the metadata of a topmost encrypted folder; pin its users' certificates."""
    document, signature = _fetch(session, file_id)
    history = session.keystore.folder_history(file_id)
    me = session.identity
    verified = crypto.verify_root_metadata(
        document,  # type: ignore[arg-type]
        signature=signature,
        user_id=session.user,
        private_key=me.private_key,
        server_public_key=session.server_key,
        now=now(),
        history=history,
        reported_encrypted=reported_encrypted,
        revoked=revocation.revoked_serials(session),
    )
    folder = verified.folder
    loaded = EncryptedFolder(
        file_id=file_id,
        dav_path=dav_path,
        clear_path=dav_path,
        root=None,
        counter=folder.counter,
        files=dict(folder.files),
        folders=dict(folder.folders),
        filedrop=verified.document.filedrop,
        deleted=folder.deleted,
        key=verified.metadata_key,
        certificates=dict(verified.certificates),
        key_checksums=list(folder.key_checksums),
        verified=verified,
    )
    _check_links(session, loaded, verified)
    for user, cert in verified.certificates.items():
        session.keystore.pin_certificate(user, cert)
    session.keystore.remember_folder(file_id, verified.history(history))
    _remember_head(session, loaded)
    session.keystore.remember_root(dav_path, file_id)
    return loaded


def _check_links(session: Session, folder: EncryptedFolder, verified: VerifiedFolder) -> None:
    """Fill in the version read and refuse a misplaced or forked document."""
    folder.links = verified.folder.links
    folder.head = Head(verified.folder.counter, version_hash(verified.document.source))
    last, linked_before = session.keystore.folder_head(folder.file_id)
    check_place(folder.links, folder.place, linked_before=linked_before)
    check_extends(folder.links, folder.head, last)


def _remember_head(session: Session, folder: EncryptedFolder) -> None:
    assert folder.head is not None
    session.keystore.remember_head(folder.file_id, folder.head, linked=folder.links is not None)


def load_child(session: Session, parent: EncryptedFolder, uuid: str) -> EncryptedFolder:
    """The verified sub-folder ``uuid`` of ``parent``."""
    name = parent.folders[uuid]
    entry = parent.listing(session).get(uuid)
    if entry is None or entry.file_id is None:
        raise RemotePathError(
            f"folder {join(parent.clear_path, name)!r} is in the metadata but missing on the "
            "server (deleted without a signed change?)"
        )
    history = session.keystore.folder_history(entry.file_id)
    document, signature = _fetch(session, entry.file_id)
    top = parent.top
    if top.verified is None:
        raise RemotePathError("the root folder was not read from the server")
    verified = crypto.verify_subfolder_metadata(
        document,  # type: ignore[arg-type]
        signature=signature,
        root=top.verified,
        history=history,
        reported_encrypted=entry.is_encrypted,
        revoked=revocation.revoked_serials(session),
    )
    folder = verified.folder
    loaded = EncryptedFolder(
        file_id=entry.file_id,
        dav_path=join(parent.dav_path, uuid),
        clear_path=join(parent.clear_path, name),
        root=top,
        counter=folder.counter,
        files=dict(folder.files),
        folders=dict(folder.folders),
        filedrop=verified.document.filedrop,
        deleted=folder.deleted,
        parent=parent,
    )
    _check_links(session, loaded, verified)
    session.keystore.remember_folder(entry.file_id, verified.history(history))
    _remember_head(session, loaded)
    return loaded


@dataclass
class Location:
    """Where a clear path points: a plain WebDAV path, or an entry of an encrypted folder."""

    path: str
    #: The encrypted folder holding the last component (None: plain, or the path is a root).
    parent: EncryptedFolder | None = None
    #: The encrypted folder the path names itself (a root or a loaded sub-folder).
    folder: EncryptedFolder | None = None
    file_uuid: str | None = None
    #: Plain paths: what the server lists there (None if nothing).
    plain: DavEntry | None = None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def encrypted(self) -> bool:
        return self.parent is not None or self.folder is not None

    @property
    def exists(self) -> bool:
        return self.folder is not None or self.file_uuid is not None or self.plain is not None

    @property
    def is_dir(self) -> bool:
        return self.folder is not None or (self.plain is not None and self.plain.is_dir)

    @property
    def file_entry(self) -> FileEntry | None:
        if self.parent is None or self.file_uuid is None:
            return None
        return self.parent.files[self.file_uuid]


def _check_still_plain(session: Session, path: str, entry: DavEntry) -> None:
    known = session.keystore.known_root(path)
    was_encrypted = (
        entry.file_id is not None and session.keystore.folder_history(entry.file_id).encrypted
    )
    if was_encrypted or (known is not None and known == entry.file_id):
        raise PlaintextInEncryptedFolderError(
            f"the server reports {path!r}, known to be encrypted, as a plain folder"
        )


def locate(session: Session, path: str) -> Location:
    path = clean(path)
    parts = path.split("/") if path else []
    for i in range(len(parts)):
        prefix = "/".join(parts[: i + 1])
        found = session.api.propfind(prefix, depth=0)
        entry = found[0] if found else None
        if entry is None:
            if session.keystore.known_root(prefix) is not None:
                raise RemotePathError(f"the encrypted folder {prefix!r} is gone from the server")
            if i < len(parts) - 1:
                raise RemotePathError(f"{prefix!r} does not exist")
            return Location(path)
        if entry.is_dir and entry.is_encrypted and entry.file_id is not None:
            root = load_root(session, entry.file_id, prefix)
            return _walk(session, root, parts[i + 1 :], path)
        if entry.is_dir:
            _check_still_plain(session, prefix, entry)
        elif i < len(parts) - 1:
            raise RemotePathError(f"{prefix!r} is a file, not a folder")
        if i == len(parts) - 1:
            return Location(path, plain=entry)
    home = session.api.propfind("", depth=0)
    return Location(path, plain=home[0] if home else None)


def _walk(session: Session, root: EncryptedFolder, names: list[str], path: str) -> Location:
    current = root
    for name in names[:-1]:
        uuid = current.folder_uuid(name)
        if uuid is None:
            raise RemotePathError(f"{join(current.clear_path, name)!r} does not exist")
        current = load_child(session, current, uuid)
    if not names:
        return Location(path, folder=root)
    leaf = names[-1]
    uuid = current.folder_uuid(leaf)
    if uuid is not None:
        return Location(path, parent=current, folder=load_child(session, current, uuid))
    return Location(path, parent=current, file_uuid=current.file_uuid(leaf))


def walk_tree(session: Session, folder: EncryptedFolder) -> list[EncryptedFolder]:
    """``folder`` and every folder below it, verified, parents before children."""
    out = [folder]
    for uuid in sorted(folder.folders):
        out.extend(walk_tree(session, load_child(session, folder, uuid)))
    return out
