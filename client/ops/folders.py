"""encrypt, mkdir, ls, rm, mv: inside encrypted trees at any depth, plain outside them."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid as uuidlib
from dataclasses import asdict, dataclass

from client import crypto
from client.crypto.lineage import Head, Place, links_for
from client.crypto.metadata import build_root_document, key_checksum
from client.crypto.verify import FolderHistory
from client.errors import E2EEError, NotEncryptedError, RemotePathError, UsageProblem
from client.ops import recovery
from client.ops.session import Session, now
from client.ops.transaction import Transaction, _compact, waits_for_lock
from client.ops.tree import EncryptedFolder, Location, clean, join, locate
from client.protocol import TAG_LENGTH, FolderMetadata, version_hash

# --- encrypt ---------------------------------------------------------------------------------


def encrypt(session: Session, remote: str) -> int:
    """Make an empty plain folder (created if missing) a topmost encrypted folder (flow C)."""
    loc = locate(session, remote)
    if loc.encrypted:
        raise UsageProblem(f"{loc.path!r} is already inside an encrypted folder")
    if not loc.path:
        raise UsageProblem("the home folder itself cannot be encrypted")
    api = session.api
    if loc.plain is None:
        file_id = api.mkcol(loc.path)
    elif not loc.plain.is_dir or loc.plain.file_id is None:
        raise RemotePathError(f"{loc.path!r} is not a folder")
    else:
        file_id = loc.plain.file_id
        if len(api.propfind(loc.path, depth=1)) > 1:
            raise UsageProblem(f"{loc.path!r} is not empty; only empty folders can be encrypted")
    me = session.identity
    users = recovery.recipients(session, {session.user: me.certificate})
    api.set_encrypted(file_id)
    key = crypto.new_metadata_key()
    links = links_for(Place(str(file_id), None, str(file_id)), None, None)
    inner = FolderMetadata(counter=1, key_checksums=(key_checksum(key),), links=links)
    document = build_root_document(inner, key, users)
    signature = crypto.sign_metadata(document, me.certificate, me.private_key, signing_time=now())
    token = api.lock(file_id, 1)
    try:
        api.store_metadata(file_id, _compact(document), signature, token, create=True)
        api.unlock(file_id, token)
    except BaseException:
        with contextlib.suppress(E2EEError):
            api.unlock(file_id, token, abort=True)
        raise
    session.keystore.remember_folder(
        file_id,
        FolderHistory(
            highest_counter=1,
            key_checksums=frozenset(inner.key_checksums),
            version="2.0",
            encrypted=True,
        ),
    )
    session.keystore.remember_head(file_id, Head(1, version_hash(document)), linked=True)
    session.keystore.remember_root(loc.path, file_id)
    recovery.written(session, file_id, loc.path, users)
    return file_id


# --- mkdir -----------------------------------------------------------------------------------


def _new_subfolder(tx: Transaction, parent: EncryptedFolder, name: str) -> EncryptedFolder:
    """Flow E under ``tx``: MKCOL a uuid, flag it, give it metadata, list it in the parent."""
    api = tx.session.api
    blob = uuidlib.uuid4().hex
    file_id = api.mkcol(join(parent.dav_path, blob), tx.token)
    api.set_encrypted(file_id)
    child = EncryptedFolder(
        file_id=file_id,
        dav_path=join(parent.dav_path, blob),
        clear_path=join(parent.clear_path, name),
        root=parent.top,
        counter=0,
        is_new=True,
        parent=parent,
    )
    parent.folders[blob] = name
    tx.touch(parent)
    tx.touch(child)
    return child


@waits_for_lock
def mkdir(session: Session, remote: str, *, parents: bool = False) -> str:
    path = clean(remote)
    if not path:
        raise UsageProblem("give a folder name")
    try:
        loc = locate(session, path)
    except RemotePathError:
        if not parents or "/" not in path:
            raise
        mkdir(session, path.rsplit("/", 1)[0], parents=True)
        loc = locate(session, path)
    if loc.exists:
        if parents and loc.is_dir:
            return loc.path
        raise UsageProblem(f"{loc.path!r} exists already")
    if loc.parent is not None:
        _check_name(loc.name)
        with Transaction(session, loc.parent.top) as tx:
            _new_subfolder(tx, loc.parent, loc.name)
    else:
        session.api.mkcol(loc.path)
    return loc.path


def _check_name(name: str) -> None:
    if not name or "/" in name or name in (".", ".."):
        raise UsageProblem(f"{name!r} is not a valid name")


# --- ls --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    name: str
    type: str  # "file" | "folder"
    size: int | None
    modified: float | None
    encrypted: bool
    missing: bool = False  # in signed metadata, but the server holds no data for it
    dropped: bool = False  # came in through a file drop from an anonymous sender

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def ls(session: Session, remote: str) -> list[Listed]:
    loc = locate(session, remote)
    if not loc.exists:
        raise RemotePathError(f"{loc.path!r} does not exist")
    if loc.folder is not None:
        return _ls_encrypted(session, loc.folder)
    if loc.parent is not None and loc.file_uuid is not None:
        entry = loc.parent.listing(session).get(loc.file_uuid)
        return [_listed_file(loc.name, entry, dropped=loc.parent.files[loc.file_uuid].dropped)]
    assert loc.plain is not None
    if not loc.plain.is_dir:
        return [Listed(loc.name, "file", loc.plain.size, loc.plain.modified, False)]
    entries = session.api.propfind(loc.path, depth=1)
    return sorted(
        (
            Listed(
                e.name,
                "folder" if e.is_dir else "file",
                None if e.is_dir else e.size,
                e.modified,
                e.is_encrypted,
            )
            for e in entries
            if e.path != loc.path
        ),
        key=lambda item: (item.type != "folder", item.name.lower()),
    )


def _listed_file(name: str, entry: object, *, dropped: bool = False) -> Listed:
    from client.api import DavEntry

    if not isinstance(entry, DavEntry):
        return Listed(name, "file", None, None, True, missing=True, dropped=dropped)
    size = max(entry.size - TAG_LENGTH, 0)
    return Listed(name, "file", size, entry.modified, True, dropped=dropped)


def _ls_encrypted(session: Session, folder: EncryptedFolder) -> list[Listed]:
    listing = folder.listing(session)
    items = [
        Listed(
            name,
            "folder",
            None,
            listing[u].modified if u in listing else None,
            True,
            missing=u not in listing,
        )
        for u, name in folder.folders.items()
    ]
    items += [
        _listed_file(e.filename, listing.get(u), dropped=e.dropped) for u, e in folder.files.items()
    ]
    return sorted(items, key=lambda item: (item.type != "folder", item.name.lower()))


# --- rm --------------------------------------------------------------------------------------


@waits_for_lock
def rm(session: Session, remote: str, *, recursive: bool = False) -> str:
    loc = locate(session, remote)
    if not loc.exists:
        raise RemotePathError(f"{loc.path!r} does not exist")
    if not loc.path:
        raise UsageProblem("refusing to remove the home folder")
    api = session.api
    if loc.folder is not None and loc.folder.is_root:
        _require_empty_or_recursive(loc, recursive)
        _remove_root(session, loc.folder)
        return loc.path
    if loc.parent is not None:
        with Transaction(session, loc.parent.top) as tx:
            if loc.folder is not None:
                _require_empty_or_recursive(loc, recursive)
                blob = _uuid_of(loc.parent, loc.folder)
                api.delete_metadata(loc.folder.file_id, tx.token)
                api.delete(join(loc.parent.dav_path, blob), tx.token)
                del loc.parent.folders[blob]
            else:
                assert loc.file_uuid is not None
                if loc.file_uuid in loc.parent.listing(session):
                    api.delete(join(loc.parent.dav_path, loc.file_uuid), tx.token)
                del loc.parent.files[loc.file_uuid]
            tx.touch(loc.parent)
        return loc.path
    if loc.is_dir and not recursive and len(api.propfind(loc.path, depth=1)) > 1:
        raise UsageProblem(f"{loc.path!r} is not empty (use --recursive)")
    api.delete(loc.path)
    return loc.path


def _require_empty_or_recursive(loc: Location, recursive: bool) -> None:
    folder = loc.folder
    if folder is not None and (folder.files or folder.folders) and not recursive:
        raise UsageProblem(f"{loc.path!r} is not empty (use --recursive)")


def _uuid_of(parent: EncryptedFolder, child: EncryptedFolder) -> str:
    return child.dav_path.rsplit("/", 1)[-1]


def _remove_root(session: Session, root: EncryptedFolder) -> None:
    """Flow H for the topmost folder: signed ``deleted: true`` first, then the DAV delete."""
    tx = Transaction(session, root)
    with tx:
        root.files, root.folders, root.deleted = {}, {}, True
        tx.upload_metadata(root)
        session.api.delete(root.dav_path, tx.token)
        tx.removed_root = True
        tx._done = True  # the server dropped the lock with the folder
    session.keystore.forget_lock(root.file_id)
    session.keystore.forget_root(root.dav_path)


# --- mv --------------------------------------------------------------------------------------


@waits_for_lock
def mv(session: Session, source: str, destination: str) -> str:
    src = locate(session, source)
    if not src.exists:
        raise RemotePathError(f"{src.path!r} does not exist")
    dst = locate(session, destination)
    if dst.is_dir:
        dst = locate(session, join(dst.path, src.name))
    if dst.exists:
        raise UsageProblem(f"{dst.path!r} exists already")
    if src.parent is None and src.folder is not None:
        raise UsageProblem("a topmost encrypted folder cannot be moved or renamed")
    if src.parent is None and dst.parent is None:
        session.api.move(src.path, dst.path)
        return dst.path
    if src.parent is None or dst.parent is None or src.parent.top.file_id != dst.parent.top.file_id:
        raise NotEncryptedError(
            "moves work inside one encrypted folder tree only; use get and put across trees"
        )
    _check_name(dst.name)
    if src.folder is not None and (dst.parent.clear_path + "/").startswith(
        src.folder.clear_path + "/"
    ):
        raise UsageProblem("cannot move a folder into itself")
    old_parent, new_parent = src.parent, dst.parent
    # Both paths were resolved separately: if they are the same folder, edit one object.
    if new_parent.file_id == old_parent.file_id:
        new_parent = old_parent
    elif new_parent.file_id == old_parent.top.file_id:
        new_parent = old_parent.top
    with Transaction(session, old_parent.top) as tx:
        if src.folder is not None:
            blob = _uuid_of(old_parent, src.folder)
            del old_parent.folders[blob]
            new_parent.folders[blob] = dst.name
            if new_parent is not old_parent:  # its links name the new parent
                src.folder.parent = new_parent
                src.folder.dav_path = join(new_parent.dav_path, blob)
                tx.touch(src.folder)
        else:
            assert src.file_uuid is not None
            blob = src.file_uuid
            entry = old_parent.files.pop(blob)
            new_parent.files[blob] = dataclasses.replace(entry, filename=dst.name)
        if new_parent is not old_parent:
            session.api.move(
                join(old_parent.dav_path, blob), join(new_parent.dav_path, blob), tx.token
            )
        tx.touch(old_parent)
        tx.touch(new_parent)
    return dst.path
