"""One change to an encrypted tree: lock the topmost folder with counter+1, stage blobs with the
token, upload the signed metadata of every touched folder, unlock — or abort on any failure so
the remote tree is exactly as it was (PROTOCOL.md §3.3, flows C–H).

The root is always re-uploaded: its counter is the one the server checks on the next lock.
File-drop entries of touched folders are moved into ``files`` on the way (§1.10), flagged as
dropped. Every document written names its place and the version it replaces (links).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from client import crypto
from client.crypto.lineage import Head, links_for
from client.crypto.metadata import Recipient, build_root_document, build_subfolder_document
from client.crypto.verify import FolderHistory
from client.errors import E2EEError, LockedError, LockTakenError, UsageProblem
from client.ops import recovery
from client.ops.session import Session, now
from client.ops.tree import EncryptedFolder
from client.protocol import FolderMetadata, version_hash


def _compact(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def free_name(folder: EncryptedFolder, filename: str) -> str:
    """``filename``, or ``name (2).ext`` … if the folder already holds that name."""
    taken = {e.filename for e in folder.files.values()} | set(folder.folders.values())
    if filename not in taken:
        return filename
    stem, dot, ext = filename.rpartition(".")
    if not stem:
        stem, dot, ext = filename, "", ""
    n = 2
    while f"{stem} ({n}){dot}{ext}" in taken:
        n += 1
    return f"{stem} ({n}){dot}{ext}"


P = ParamSpec("P")
R = TypeVar("R")

#: How long a change waits for another client's lock, in seconds (E2EE_LOCK_WAIT; 0: not at
#: all). Locks are held for one change, seconds at most, unless a client crashed with one.
LOCK_WAIT = 20.0
FIRST_DELAY, MAX_DELAY = 0.2, 2.0
_waiting = threading.local()


def lock_wait() -> float:
    value = os.environ.get("E2EE_LOCK_WAIT", "")
    try:
        seconds = float(value) if value else LOCK_WAIT
    except ValueError:
        raise UsageProblem(f"E2EE_LOCK_WAIT={value!r} is not a number of seconds") from None
    if not 0 <= seconds <= 3600:
        raise UsageProblem("E2EE_LOCK_WAIT must be between 0 and 3600 seconds")
    return seconds


def waits_for_lock(operation: Callable[P, R]) -> Callable[P, R]:
    """Run a change again, from its first read, while its lock is taken by another client or
    the folder changed between the read and the lock (THREATS S5: bounded retries with
    backoff, never a loop). Nothing was written when that happens, and the new try reads the
    metadata the other client committed, so its counter is fresh. Nested changes (mkdir -p)
    wait in the outermost one only."""

    @functools.wraps(operation)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        if getattr(_waiting, "active", False):
            return operation(*args, **kwargs)
        wait = lock_wait()
        deadline, delay = time.monotonic() + wait, FIRST_DELAY
        _waiting.active = True
        try:
            while True:
                try:
                    return operation(*args, **kwargs)
                except LockTakenError as exc:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        waited = f" (waited {wait:g} s)" if wait else ""
                        raise LockTakenError(
                            f"{exc}{waited}; try again (a lock left by a crashed client "
                            "expires within 24 h)",
                            exc.status,
                        ) from None
                time.sleep(min(delay, left))
                delay = min(2 * delay, MAX_DELAY)
        finally:
            _waiting.active = False

    return run


class Transaction:
    """``with Transaction(session, root) as tx: … tx.touch(folder) …`` — commits on success."""

    def __init__(self, session: Session, root: EncryptedFolder) -> None:
        if not root.is_root:
            raise ValueError("transactions lock the topmost encrypted folder")
        self.session = session
        self.root = root
        self.token = ""
        self.counter = 0
        self.touched: dict[int, EncryptedFolder] = {root.file_id: root}
        self.removed_root = False
        self.root_users: list[Recipient] = []
        self._done = False

    def __repr__(self) -> str:  # never the token
        return f"Transaction(root={self.root.file_id})"

    # --- lock ------------------------------------------------------------------------------

    def __enter__(self) -> Transaction:
        api, keystore = self.session.api, self.session.keystore
        stale = keystore.held_locks().get(str(self.root.file_id))
        if stale:  # a crashed earlier run: put its staged writes back first
            with contextlib.suppress(E2EEError):
                api.unlock(self.root.file_id, stale, abort=True)
            keystore.forget_lock(self.root.file_id)
        recovery.offer(self.session)  # a swapped recovery key refuses before anything is locked
        history = keystore.folder_history(self.root.file_id)
        self.counter = max(self.root.counter, history.highest_counter or 0) + 1
        try:
            self.token = api.lock(self.root.file_id, self.counter)
        except LockedError as exc:
            raise LockTakenError(
                f"{self.root.clear_path!r} is locked by another client or changed meanwhile",
                exc.status,
            ) from None
        keystore.remember_lock(self.root.file_id, self.token)
        return self

    def touch(self, folder: EncryptedFolder) -> None:
        self.touched[folder.file_id] = folder

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
            return
        self.abort()

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        with contextlib.suppress(E2EEError):
            self.session.api.unlock(self.root.file_id, self.token, abort=True)
        self.session.keystore.forget_lock(self.root.file_id)

    # --- commit ----------------------------------------------------------------------------

    def migrate_filedrops(self, folder: EncryptedFolder) -> int:
        """Move file-drop entries into ``files`` (never overwriting a name); return how many."""
        me = self.session.identity
        moved = 0
        for uuid, dropped in folder.filedrop.items():
            entry = crypto.open_filedrop_entry(
                dropped, self.session.user, me.private_key, folder=folder.node_id
            )
            name = free_name(folder, entry.filename)
            folder.files[uuid] = dataclasses.replace(entry, filename=name, dropped=True)
            moved += 1
        folder.filedrop = {}
        return moved

    def _document(self, folder: EncryptedFolder, counter: int) -> dict[str, Any]:
        root = self.root
        links = links_for(folder.place, folder.head, folder.links)
        if folder.is_root:
            inner = FolderMetadata(
                counter=counter,
                files=dict(folder.files),
                folders=dict(folder.folders),
                key_checksums=tuple(root.key_checksums),
                deleted=folder.deleted,
                links=links,
            )
            recipients = recovery.recipients(self.session, root.certificates)
            self.root_users = recipients
            version = "2.1" if any(uid.startswith("s:") for uid in root.certificates) else "2.0"
            return build_root_document(inner, root.key, recipients, version=version)
        inner = FolderMetadata(
            counter=counter, files=dict(folder.files), folders=dict(folder.folders), links=links
        )
        return build_subfolder_document(inner, root.key)

    def upload_metadata(self, folder: EncryptedFolder) -> Head:
        """Sign and store ``folder``'s next version; return it (counter and version hash)."""
        me = self.session.identity
        counter = self.counter if folder.is_root else folder.counter + 1
        if folder.filedrop:
            self.migrate_filedrops(folder)
        document = self._document(folder, counter)
        signature = crypto.sign_metadata(
            document, me.certificate, me.private_key, signing_time=now()
        )
        self.session.api.store_metadata(
            folder.file_id, _compact(document), signature, self.token, create=folder.is_new
        )
        return Head(counter, version_hash(document))

    def commit(self) -> None:
        if self._done:
            return
        try:
            # Children first: a reader who sees the new root also finds the new children.
            order = sorted(self.touched.values(), key=lambda f: (f.is_root, -f.dav_path.count("/")))
            heads = {f.file_id: self.upload_metadata(f) for f in order}
            self.session.api.unlock(self.root.file_id, self.token)
        except BaseException:
            self.abort()
            raise
        self._done = True
        keystore = self.session.keystore
        keystore.forget_lock(self.root.file_id)
        recovery.written(self.session, self.root.file_id, self.root.clear_path, self.root_users)
        checksums = frozenset(self.root.key_checksums)
        for folder in order:
            folder.links = links_for(folder.place, folder.head, folder.links)  # as written
            folder.head = heads[folder.file_id]
            folder.counter = folder.head.counter
            folder.is_new = False
            keystore.remember_head(folder.file_id, folder.head, linked=True)
            keystore.remember_folder(
                folder.file_id,
                FolderHistory(
                    highest_counter=folder.counter,
                    key_checksums=checksums if folder.is_root else frozenset(),
                    version="2.0",
                    encrypted=True,
                ),
            )
