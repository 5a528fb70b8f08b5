"""E2EE locks and the staged writes they cover (PROTOCOL.md §3.3).

A lock on a folder covers its whole subtree. Taking one locks the rows of the folder and all its
ancestors (root first, the same order for everyone, so two lockers cannot deadlock) inside one
transaction, so two web workers or two servers can never both hold a lock on the same tree.
"""

from __future__ import annotations

import hmac
import secrets
import string
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from server.accounts.models import User
from server.errors import BadRequest, Forbidden, Locked, NotFound, PreconditionFailed
from server.files import selectors as file_selectors
from server.files import services as file_services
from server.files.models import Node

from .folders import DELETED_SUFFIX, STAGED_SUFFIX, folder_get, in_encrypted_tree
from .models import FolderMetadata, Lock, StagedMetadata, StagedMove

TOKEN_ALPHABET = string.ascii_letters + string.digits
TOKEN_LENGTH = 64
ROLLBACK_AFTER = timedelta(hours=24)


def _new_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


def _lock_tree_rows(node: Node) -> None:
    """Row-lock the node and its ancestors, in the order every file write takes them."""
    file_services.node_lock_ancestry(node_ids=[node.id])


def locks_conflicting(*, node: Node, token: str | None) -> bool:
    """Is any part of this folder's tree (ancestors or descendants) locked by another token?"""
    ids = file_selectors.node_ancestor_ids(node_id=node.id)
    subtree = [n.id for n in file_selectors.node_subtree(node_id=node.id)]
    others = Lock.objects.filter(node_id__in=set(ids) | set(subtree))
    return any(token is None or not hmac.compare_digest(lock.token, token) for lock in others)


def lock_covering(*, node: Node, token: str) -> Lock | None:
    """The lock held with `token` on this node or an ancestor, if any."""
    ids = file_selectors.node_ancestor_ids(node_id=node.id)
    for lock in Lock.objects.filter(node_id__in=ids):
        if hmac.compare_digest(lock.token, token):
            return lock
    return None


def lock_acquire(*, user: User, node_id: int, counter: int | None, token: str | None) -> str:
    """Lock a folder of an encrypted tree. `counter` is the v2 X-NC-E2EE-COUNTER (None for v1).

    A retry with the token of an existing lock on this folder returns that token."""
    if counter is not None and counter < 1:
        raise BadRequest("X-NC-E2EE-COUNTER must be a positive integer")
    with transaction.atomic():
        folder = folder_get(user=user, node_id=node_id, write=True)
        if folder.is_root:
            raise Forbidden("The home folder cannot be locked")
        _lock_tree_rows(folder)
        if not in_encrypted_tree(node=folder):
            raise Forbidden("The folder is not encrypted")
        if token:
            existing = Lock.objects.filter(node=folder).first()
            if existing is not None and hmac.compare_digest(existing.token, token):
                Lock.objects.filter(pk=existing.pk).update(touched_at=timezone.now())
                return existing.token
            raise Locked("The folder is locked by another client")
        if locks_conflicting(node=folder, token=None):
            raise Locked("The folder is locked by another client")
        committed = FolderMetadata.objects.filter(node=folder).first()
        if counter is not None and committed is not None and counter <= committed.counter:
            raise PreconditionFailed("The counter is not greater than the stored counter")
        lock = Lock.objects.create(
            node=folder,
            user=user,
            token=_new_token(),
            counter=counter if committed is not None else None,
        )
        return lock.token


def _lock_for_release(*, user: User, node_id: int, token: str) -> Lock:
    if not token:
        raise BadRequest("Missing e2e-token")
    folder = folder_get(user=user, node_id=node_id, write=True)
    lock = Lock.objects.select_for_update().filter(node=folder).first()
    if lock is None:
        raise NotFound("The folder is not locked")
    if not hmac.compare_digest(lock.token, token):
        raise Forbidden("Wrong e2e-token")
    return lock


def lock_release(*, user: User, node_id: int, token: str, abort: bool) -> None:
    """Unlock: commit every touched folder (or, with `abort`, revert everything), then drop it."""
    with transaction.atomic():
        lock = _lock_for_release(user=user, node_id=node_id, token=token)
        _lock_tree_rows(lock.node)
        if abort:
            staging_revert(lock=lock)
        else:
            staging_commit(lock=lock)
        lock.delete()


def _settle(*, user: User, folder_id: int, commit: bool) -> None:
    """One folder's staged writes, all at once: on commit staged names become final (replacing
    what is there) and staged deletes happen; on revert staged nodes go and staged deletes get
    their names back."""
    children = Node.objects.filter(parent_id=folder_id)
    staged = list(children.filter(name__endswith=STAGED_SUFFIX))
    deleted = list(children.filter(name__endswith=DELETED_SUFFIX))
    kept, suffix = (staged, STAGED_SUFFIX) if commit else (deleted, DELETED_SUFFIX)
    file_services.children_settle(
        user=user,
        parent=Node(id=folder_id),
        deletes=deleted if commit else staged,
        renames={node.id: node.name[: -len(suffix)] for node in kept},
    )


def _depth_order(lock: Lock) -> list[Node]:
    """The locked subtree's folders, deepest first."""
    folders = [n for n in file_selectors.node_subtree(node_id=lock.node_id) if n.is_dir]
    return list(reversed(folders))


def _revert_folders(*, user: User, folder_ids: list[int]) -> None:
    for folder_id in folder_ids:  # deepest first: a staged folder goes after its contents
        _settle(user=user, folder_id=folder_id, commit=False)


def staging_commit(*, lock: Lock) -> None:
    """Finalise the folders whose metadata was uploaded under this lock, deepest first: staged
    names become final, staged deletes happen, metadata and counter are promoted. Staged writes in
    folders whose metadata was not uploaded are reverted: committing bytes the metadata does not
    describe would leave undecryptable entries."""
    owner = lock.node.owner
    staged_metadata = {s.node_id: s for s in StagedMetadata.objects.filter(lock=lock)}
    folders = _depth_order(lock)
    touched = [f.id for f in folders if f.id in staged_metadata]
    untouched = [f.id for f in folders if f.id not in staged_metadata]
    _undo_moves(lock, in_folders=untouched)
    _revert_folders(user=owner, folder_ids=untouched)
    # A reverted staged folder may have taken touched folders below it with it.
    alive = set(Node.objects.filter(id__in=touched).values_list("id", flat=True))
    for folder_id in [f for f in touched if f in alive]:  # deepest first
        _settle(user=owner, folder_id=folder_id, commit=True)
        _promote(staged_metadata[folder_id], lock=lock)


def _promote(staged: StagedMetadata, *, lock: Lock) -> None:
    if staged.document is None:
        FolderMetadata.objects.filter(node_id=staged.node_id).delete()
        return
    record, _ = FolderMetadata.objects.get_or_create(node_id=staged.node_id)
    record.document, record.signature = staged.document, staged.signature
    if staged.node_id == lock.node_id and lock.counter is not None:
        record.counter = lock.counter
    record.save()


def _undo_moves(lock: Lock, *, in_folders: list[int] | None = None) -> None:
    """Put nodes moved under this lock back (newest move first) before staged names are
    removed: a moved node must not be deleted as if it were a staged upload."""
    moves = StagedMove.objects.filter(lock=lock).select_related("node").order_by("-id")
    for move in moves:
        node = move.node
        if in_folders is not None and node.parent_id not in in_folders:
            continue
        if node.name.endswith(STAGED_SUFFIX):
            file_services.node_move(
                user=lock.node.owner,
                node=node,
                new_parent=move.from_parent,
                new_name=move.from_name,
                overwrite=False,
            )


def staging_revert(*, lock: Lock) -> None:
    """Abort: staged moves undone, staged files removed, staged deletes undone, staged metadata
    discarded."""
    _undo_moves(lock)
    _revert_folders(user=lock.node.owner, folder_ids=[f.id for f in _depth_order(lock)])
    StagedMetadata.objects.filter(lock=lock).delete()


def locks_roll_back_stale(*, older_than: timedelta = ROLLBACK_AFTER) -> list[int]:
    """Revert and remove locks unused for `older_than` (crashed clients); returns folder ids."""
    cutoff = timezone.now() - older_than
    rolled_back = []
    for lock_id in Lock.objects.filter(touched_at__lt=cutoff).values_list("id", flat=True):
        with transaction.atomic():
            lock = (
                Lock.objects.select_for_update().filter(id=lock_id, touched_at__lt=cutoff).first()
            )
            if lock is None:
                continue  # released or used meanwhile
            staging_revert(lock=lock)
            rolled_back.append(lock.node_id)
            lock.delete()
    return rolled_back


def lock_touch(lock: Lock) -> None:
    Lock.objects.filter(pk=lock.pk).update(touched_at=timezone.now())


def lock_force_release(*, lock_id: int) -> int:
    """An admin ends a lock (a client crashed and its user cannot wait 24 h): everything staged
    under it is reverted, as on abort. Returns the folder id."""
    with transaction.atomic():
        lock = Lock.objects.select_for_update().filter(pk=lock_id).first()
        if lock is None:
            raise NotFound("The lock no longer exists")
        _lock_tree_rows(lock.node)
        staging_revert(lock=lock)
        lock.delete()
        return lock.node_id
