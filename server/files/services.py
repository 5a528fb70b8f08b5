"""Writes to the node tree. Keyword-only, typed, `<thing>_<action>`.

Ordering rule for every write that touches bytes: the blob is made durable first (temp file,
fsync, rename), then the row changes in one transaction; if that transaction fails the new blob
is removed, and blobs a change made unreachable are removed only after the commit. A failure at
any point therefore leaves the previous version readable and no row without its bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from django.db import IntegrityError, models, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Cast, Concat, Greatest

from server.accounts.models import User

from . import selectors
from .blobstore import BlobStore, BlobWriter, get_blob_store
from .checksums import ChecksumVerifier, checksum_parse
from .errors import (
    KindMismatch,
    NameInvalid,
    NodeExists,
    NodeNotFound,
    OperationForbidden,
    ParentMissing,
    UploadIncomplete,
)
from .models import Node, new_etag, now_seconds
from .signals import tree_changed

log = logging.getLogger(__name__)

# Nextcloud refuses names longer than 250 bytes; so do we, so a synced tree stays portable.
MAX_NAME_BYTES = 250
_FORBIDDEN_CHARS = frozenset("/\\\x00") | frozenset(chr(c) for c in range(0x20))


def name_validate(*, name: str) -> str:
    if not name.strip() or name in (".", ".."):
        raise NameInvalid("empty or reserved name")
    if any(ch in _FORBIDDEN_CHARS for ch in name):
        raise NameInvalid("the name contains a forbidden character")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise NameInvalid("the name is too long")
    return name


def _after_commit_delete_blobs(keys: list[str], store: BlobStore) -> None:
    def delete() -> None:
        for key in keys:
            try:
                store.delete(key)
            except OSError:  # pragma: no cover - an orphan is harmless, a failed request is not
                log.exception("could not delete blob %s after commit", key)

    if keys:
        transaction.on_commit(delete)


def _propagate(*, parent_id: int, size_delta: int, touch: bool = True) -> None:
    """Nextcloud's propagation: every ancestor gets a new etag, its size moves by the delta,
    and (for changes of content or membership) its mtime becomes at least now."""
    ids = selectors.node_ancestor_ids(node_id=parent_id)
    tag = new_etag()[:24]
    changes: dict[str, object] = {
        "etag": Concat(Value(tag), Cast(F("id"), output_field=models.CharField())),
    }
    if size_delta:
        changes["size"] = F("size") + size_delta
    if touch:
        changes["mtime"] = Greatest(F("mtime"), Value(now_seconds()))
    Node.objects.filter(id__in=ids).update(**changes)
    tree_changed.send(sender=Node, node_ids=ids)


def roots_touch(*, owner_ids: list[int]) -> None:
    """New etags (and mtime now) for these users' root folders."""
    if owner_ids:
        Node.objects.filter(owner_id__in=owner_ids, parent__isnull=True).update(
            etag=Concat(Value(new_etag()[:24]), Cast(F("id"), output_field=models.CharField())),
            mtime=Greatest(F("mtime"), Value(now_seconds())),
        )


def node_lock_ancestry(*, node_ids: list[int]) -> None:
    """Row-lock these nodes and all their ancestors in one statement, in id order. Every write
    propagates etags and sizes up to the root, so each must take these locks in the same order
    before it changes anything, or two writes at different depths deadlock (PostgreSQL)."""
    ids: set[int] = set()
    for node_id in node_ids:
        ids.update(selectors.node_ancestor_ids(node_id=node_id))
    list(Node.objects.select_for_update().filter(id__in=ids).order_by("id").values_list("id"))


def _lock_dir(*, user: User, dir_id: int) -> Node:
    """Re-read a folder inside the transaction (locked on PostgreSQL, with its ancestors)."""
    node_lock_ancestry(node_ids=[dir_id])
    node = Node.objects.filter(id=dir_id, owner=user).first()
    if node is None or not node.is_dir:
        raise ParentMissing()
    return node


def _lock_node(*, user: User, node_id: int) -> Node:
    node_lock_ancestry(node_ids=[node_id])
    node = Node.objects.filter(id=node_id, owner=user).first()
    if node is None:
        raise NodeNotFound()
    return node


def _remove_subtree(*, node: Node) -> list[str]:
    """Delete `node` and all below it; returns their blob keys for deletion after commit."""
    keys = [n.blob_key for n in selectors.node_subtree(node_id=node.id) if n.blob_key]
    parent_id = node.parent_id
    size = node.size
    node.delete()
    assert parent_id is not None
    _propagate(parent_id=parent_id, size_delta=-size)
    return keys


# --- roots and folders -------------------------------------------------------------------


def node_root_get_or_create(*, user: User) -> Node:
    root = selectors.node_root_find(user=user)
    if root is not None:
        return root
    try:
        with transaction.atomic():
            return Node.objects.create(owner=user, parent=None, name="", kind=Node.Kind.DIR)
    except IntegrityError:
        # Another request created it first.
        root = selectors.node_root_find(user=user)
        assert root is not None
        return root


def node_create_dir(*, user: User, parent: Node, name: str, mtime: int | None = None) -> Node:
    name_validate(name=name)
    with transaction.atomic():
        parent = _lock_dir(user=user, dir_id=parent.id)
        if Node.objects.filter(parent=parent, name=name).exists():
            raise NodeExists()
        try:
            with transaction.atomic():
                node = Node.objects.create(
                    owner=user,
                    parent=parent,
                    name=name,
                    kind=Node.Kind.DIR,
                    mtime=now_seconds() if mtime is None else mtime,
                )
        except IntegrityError:
            raise NodeExists() from None
        _propagate(parent_id=parent.id, size_delta=0)
    return node


# --- file content ------------------------------------------------------------------------


@dataclass(frozen=True)
class WriteResult:
    node: Node
    created: bool


class FileUpload:
    """One upload in progress. Bytes stream into a new blob; nothing is visible to anyone until
    `commit`, and `abort` (or any failure in commit) leaves no row and no file behind."""

    def __init__(
        self,
        *,
        user: User,
        parent: Node,
        name: str,
        expected_size: int | None,
        mtime: int | None,
        checksum: str | None,
        store: BlobStore,
        overwrite: bool = True,
    ) -> None:
        name_validate(name=name)
        if parent.owner_id != user.pk or not parent.is_dir:
            raise ParentMissing()
        existing = Node.objects.filter(parent=parent, name=name).only("kind").first()
        if existing is not None and existing.is_dir:
            raise KindMismatch("a folder exists under that name")
        if existing is not None and not overwrite:
            raise NodeExists()
        self.overwrite = overwrite
        self.user, self.parent_id, self.name = user, parent.id, name
        self.expected_size, self.mtime = expected_size, mtime
        # Only hash when the client gave a checksum: hashing costs more than the disk write.
        self._verifier = ChecksumVerifier(checksum_parse(checksum)) if checksum else None
        self._checksum = str(self._verifier.expected) if self._verifier else ""
        self._store = store
        self._writer: BlobWriter = store.open_writer()
        self._finished = False

    @property
    def bytes_written(self) -> int:
        return self._writer.bytes_written

    def write(self, data: bytes | memoryview) -> int:
        if self._verifier is not None:
            self._verifier.update(data)
        return self._writer.write(data)

    def abort(self) -> None:
        if not self._finished:
            self._finished = True
            self._writer.abort()

    def commit(self) -> WriteResult:
        assert not self._finished, "upload already finished"
        try:
            if self.expected_size is not None and self.bytes_written != self.expected_size:
                raise UploadIncomplete(
                    f"got {self.bytes_written} of {self.expected_size} announced bytes"
                )
            if self._verifier is not None:
                self._verifier.verify()
            key = self._writer.commit()
            result = self._commit_row(key)
        except BaseException:
            self._finished = True
            self._writer.abort()  # removes the temp file, or the blob if it was renamed already
            raise
        self._finished = True
        return result

    def _commit_row(self, key: str) -> WriteResult:
        for attempt in range(2):
            try:
                with transaction.atomic():
                    return self._upsert(key)
            except IntegrityError:
                # A concurrent upload created the same name between our read and insert:
                # retry once, now as an overwrite of that row.
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _upsert(self, key: str) -> WriteResult:
        parent = _lock_dir(user=self.user, dir_id=self.parent_id)
        size = self.bytes_written
        mtime = now_seconds() if self.mtime is None else self.mtime
        node = Node.objects.select_for_update().filter(parent=parent, name=self.name).first()
        if node is not None and node.is_dir:
            raise KindMismatch("a folder exists under that name")
        if node is not None and not self.overwrite:
            raise NodeExists()  # created meanwhile; a create-only upload must not replace it
        created = node is None
        if node is None:
            node = Node.objects.create(
                owner=self.user,
                parent=parent,
                name=self.name,
                kind=Node.Kind.FILE,
                size=size,
                mtime=mtime,
                blob_key=key,
                checksum=self._checksum,
            )
            delta = size
        else:
            old_key, delta = node.blob_key, size - node.size
            node.size, node.mtime, node.blob_key = size, mtime, key
            node.checksum, node.etag = self._checksum, new_etag()
            node.save(update_fields=["size", "mtime", "blob_key", "checksum", "etag"])
            _after_commit_delete_blobs([old_key] if old_key else [], self._store)
        _propagate(parent_id=parent.id, size_delta=delta)
        return WriteResult(node=node, created=created)


def file_upload_begin(
    *,
    user: User,
    parent: Node,
    name: str,
    expected_size: int | None = None,
    mtime: int | None = None,
    checksum: str | None = None,
    store: BlobStore | None = None,
    overwrite: bool = True,
) -> FileUpload:
    """Start a push-style upload (the WebDAV PUT path hands over the body piece by piece).
    With `overwrite` False an existing file of that name is never replaced (NodeExists)."""
    return FileUpload(
        user=user,
        parent=parent,
        name=name,
        expected_size=expected_size,
        mtime=mtime,
        checksum=checksum,
        store=store or get_blob_store(),
        overwrite=overwrite,
    )


def file_write(
    *,
    user: User,
    parent: Node,
    name: str,
    body: BinaryIO,
    expected_size: int | None = None,
    mtime: int | None = None,
    checksum: str | None = None,
    chunk_size: int = 1 << 20,
    store: BlobStore | None = None,
) -> WriteResult:
    """Create or replace a file from a readable body, streaming in `chunk_size` pieces."""
    upload = file_upload_begin(
        user=user,
        parent=parent,
        name=name,
        expected_size=expected_size,
        mtime=mtime,
        checksum=checksum,
        store=store,
    )
    try:
        while chunk := body.read(chunk_size):
            upload.write(chunk)
    except BaseException:
        upload.abort()
        raise
    return upload.commit()


# --- tree changes ------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaceResult:
    node: Node
    replaced: bool  # something existed at the destination and was overwritten


def _check_destination(*, user: User, node: Node, new_parent: Node, new_name: str) -> None:
    name_validate(name=new_name)
    if node.is_root:
        raise OperationForbidden("the root folder cannot be moved or copied")
    if new_parent.owner_id != user.pk or not new_parent.is_dir:
        raise ParentMissing()
    if node.is_dir and selectors.node_is_inside(node_id=new_parent.id, ancestor_id=node.id):
        raise OperationForbidden("a folder cannot go inside itself")


def _clear_destination(
    *, node: Node, parent: Node, name: str, overwrite: bool, store: BlobStore
) -> bool:
    target = (
        Node.objects.select_for_update()
        .filter(parent=parent, name=name)
        .exclude(id=node.id)
        .first()
    )
    if target is None:
        return False
    if not overwrite:
        raise NodeExists()
    _after_commit_delete_blobs(_remove_subtree(node=target), store)
    return True


def node_move(
    *,
    user: User,
    node: Node,
    new_parent: Node,
    new_name: str,
    overwrite: bool = True,
    store: BlobStore | None = None,
) -> PlaceResult:
    """Rename and/or move; the file id and etag stay, ancestors on both sides propagate."""
    store = store or get_blob_store()
    _check_destination(user=user, node=node, new_parent=new_parent, new_name=new_name)
    with transaction.atomic():
        # both trees at once: two moves in opposite directions must not lock in opposite orders
        node_lock_ancestry(node_ids=[node.id, new_parent.id])
        node = _lock_node(user=user, node_id=node.id)
        new_parent = _lock_dir(user=user, dir_id=new_parent.id)
        replaced = _clear_destination(
            node=node, parent=new_parent, name=new_name, overwrite=overwrite, store=store
        )
        old_parent_id = node.parent_id
        assert old_parent_id is not None
        node.parent, node.name = new_parent, new_name
        node.save(update_fields=["parent", "name"])
        _propagate(parent_id=old_parent_id, size_delta=-node.size)
        _propagate(parent_id=new_parent.id, size_delta=node.size)
    return PlaceResult(node=node, replaced=replaced)


def children_settle(
    *,
    user: User,
    parent: Node,
    deletes: list[Node],
    renames: dict[int, str],
    store: BlobStore | None = None,
) -> None:
    """Many changes among one folder's children in one transaction and one propagation (an E2EE
    unlock settles hundreds of staged names at once): `deletes` go with everything below them,
    then each child id in `renames` takes its new name, replacing what holds that name."""
    if not deletes and not renames:
        return
    store = store or get_blob_store()
    for new_name in renames.values():
        name_validate(name=new_name)
    with transaction.atomic():
        parent = _lock_dir(user=user, dir_id=parent.id)
        children = Node.objects.select_for_update().filter(parent=parent)
        moving = list(children.filter(id__in=renames).only("id", "name"))
        if len(moving) != len(renames):
            raise NodeNotFound()
        new_names = set(renames.values())
        if len(new_names) != len(renames) or new_names & {node.name for node in moving}:
            # one statement renames them all: names must not pass from one child to another
            raise OperationForbidden("these renames collide with each other")
        removed = {
            node.id: node
            for node in children.filter(
                Q(id__in=[node.id for node in deletes]) | Q(name__in=new_names)
            ).exclude(id__in=renames)
        }
        keys = [node.blob_key for node in removed.values() if node.blob_key]
        for folder in (node for node in removed.values() if node.is_dir):
            keys += [n.blob_key for n in selectors.node_subtree(node_id=folder.id) if n.blob_key]
        Node.objects.filter(id__in=removed).delete()
        for node in moving:
            node.name = renames[node.id]
        Node.objects.bulk_update(moving, ["name"], batch_size=500)
        _propagate(parent_id=parent.id, size_delta=-sum(node.size for node in removed.values()))
        _after_commit_delete_blobs(keys, store)


def node_copy(
    *,
    user: User,
    node: Node,
    new_parent: Node,
    new_name: str,
    overwrite: bool = True,
    store: BlobStore | None = None,
) -> PlaceResult:
    """Deep copy with new file ids; every copied file gets its own new blob."""
    store = store or get_blob_store()
    _check_destination(user=user, node=node, new_parent=new_parent, new_name=new_name)
    subtree = selectors.node_subtree(node_id=node.id)
    if not subtree or subtree[0].owner_id != user.pk:
        raise NodeNotFound()
    # Bytes first, outside the transaction (copies can be large); undone if the rows fail.
    new_keys: dict[int, str] = {}
    try:
        for item in subtree:
            if item.blob_key:
                new_keys[item.id] = store.copy(item.blob_key)
        with transaction.atomic():
            new_parent = _lock_dir(user=user, dir_id=new_parent.id)
            replaced = _clear_destination(
                node=node, parent=new_parent, name=new_name, overwrite=overwrite, store=store
            )
            copies: dict[int, Node] = {}
            for item in subtree:
                is_top = item.id == node.id
                copies[item.id] = Node.objects.create(
                    owner=user,
                    parent=new_parent if is_top else copies[item.parent_id],  # type: ignore[index]
                    name=new_name if is_top else item.name,
                    kind=item.kind,
                    size=item.size,
                    mtime=item.mtime,
                    blob_key=new_keys.get(item.id, ""),
                    checksum=item.checksum,
                    is_encrypted=item.is_encrypted,
                )
            _propagate(parent_id=new_parent.id, size_delta=subtree[0].size)
    except BaseException:
        for key in new_keys.values():
            store.delete(key)
        raise
    return PlaceResult(node=copies[node.id], replaced=replaced)


def node_delete(*, user: User, node: Node, store: BlobStore | None = None) -> None:
    """Delete a node and everything below it; blobs go once the rows are gone for good."""
    store = store or get_blob_store()
    if node.is_root:
        raise OperationForbidden("the root folder cannot be deleted")
    with transaction.atomic():
        node = _lock_node(user=user, node_id=node.id)
        _after_commit_delete_blobs(_remove_subtree(node=node), store)


def _node_update(
    *, user: User, node: Node, touch_parents: bool, change: Callable[[Node], list[str]]
) -> Node:
    with transaction.atomic():
        node = _lock_node(user=user, node_id=node.id)
        fields = change(node)
        node.etag = new_etag()
        node.save(update_fields=[*fields, "etag"])
        if node.parent_id is not None:
            _propagate(parent_id=node.parent_id, size_delta=0, touch=touch_parents)
    return node


def node_set_mtime(*, user: User, node: Node, mtime: int) -> Node:
    """PROPPATCH of the modification time (like `touch`): new etag, ancestors' etags change."""

    def change(n: Node) -> list[str]:
        n.mtime = mtime
        return ["mtime"]

    return _node_update(user=user, node=node, touch_parents=False, change=change)


def node_set_encrypted(*, user: User, node: Node, encrypted: bool) -> Node:
    """Set or clear the E2EE flag (the E2EE app decides when that is allowed)."""

    def change(n: Node) -> list[str]:
        n.is_encrypted = encrypted
        return ["is_encrypted"]

    return _node_update(user=user, node=node, touch_parents=False, change=change)
