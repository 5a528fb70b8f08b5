"""Two-way sync of a local folder with a folder of an encrypted tree.

The base of a three-way comparison is what the last run left in agreement, kept per pair in the
keystore: for every file its local size and mtime and the remote version's authentication tag
(unique per version: every upload has a fresh key and nonce). Per path:

- changed on one side only: copy it to the other side; deleted on one side and unchanged on
  the other: delete it there; deleted on one side, changed on the other: keep the change;
- changed on both sides (or new on both with different content): a conflict keeps both — the
  local file moves aside to ``name (conflict <user> <time>).ext`` (and is uploaded), the
  remote version takes the original name;
- a rename is a delete plus an add, so it arrives as a rename.

Downloads land one by one (temporary file, renamed after verification) and the base is saved
after each; uploads and remote deletes commit in batches under one lock each, the base saved
after each commit. An interrupted run therefore loses at most the batch in flight, which the
server rolls back (the next run aborts a lock it left) and the next run redoes. A second run
with nothing changed changes nothing.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.bulk import BULK_MIN
from client.cli_support import atomic_output  # noqa: F401 - re-exported for tests
from client.errors import LocalPathError, NotEncryptedError
from client.ops.session import Progress, Session
from client.ops.transaction import Transaction, waits_for_lock
from client.ops.transfer import (
    download_archive,
    download_entry,
    record_upload,
    seal_upload,
    sync_folder,
)
from client.ops.tree import EncryptedFolder, join, load_child, locate
from client.protocol import FileEntry, b64encode

#: Uploads per transaction; a batch also closes when it passes BATCH_BYTES.
BATCH_FILES, BATCH_BYTES = 500, 256 * 1024 * 1024
#: Transfers in flight at once: small files are bound by round trips, not bandwidth. Uploads
#: share one lock and write the database; downloads only read (8: the stack's default
#: gunicorn serves 2 workers x 4 threads; measured best of 4/8/16 in bench/client_transfer.py).
PARALLEL, PARALLEL_DOWNLOADS = 4, 8
#: Names per archive request: 32-hex-digit blob names keep its URL under 3 KB (servers refuse
#: request lines over 4 or 8 KB).
ARCHIVE_NAMES = 64


@dataclass
class RemoteFile:
    folder: EncryptedFolder
    uuid: str
    entry: FileEntry

    @property
    def tag(self) -> str:
        return b64encode(self.entry.authentication_tag)


@dataclass
class Report:
    uploaded: list[str] = field(default_factory=list)
    downloaded: list[str] = field(default_factory=list)
    deleted_local: list[str] = field(default_factory=list)
    deleted_remote: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    folders_created: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(vars(self).values())

    def as_dict(self) -> dict[str, Any]:
        return {k: sorted(v) for k, v in vars(self).items()}


def _pair_key(session: Session, local: Path, remote: str) -> str:
    text = f"{session.account.url}|{session.user}|{local.resolve()}|{remote}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _skip(name: str) -> bool:
    # our own temporary files (atomic_output) and hidden files stay local
    return name.startswith(".")


def scan_local(root: Path) -> tuple[dict[str, os.stat_result], set[str]]:
    files: dict[str, os.stat_result] = {}
    dirs: set[str] = set()
    for current, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not _skip(d))
        rel = Path(current).relative_to(root).as_posix()
        rel = "" if rel == "." else rel
        for d in subdirs:
            if not (Path(current) / d).is_symlink():
                dirs.add(join(rel, d))
        for name in names:
            path = Path(current) / name
            if _skip(name) or path.is_symlink() or not path.is_file():
                continue
            files[join(rel, name)] = path.stat()
    return files, dirs


def scan_remote(
    session: Session, folder: EncryptedFolder, rel: str = ""
) -> Iterator[tuple[str, EncryptedFolder | RemoteFile]]:
    """Every folder (relative path, folder) and file (relative path, RemoteFile) below."""
    for uuid, entry in folder.files.items():
        yield join(rel, entry.filename), RemoteFile(folder, uuid, entry)
    for uuid, name in sorted(folder.folders.items()):
        child = load_child(session, folder, uuid)
        yield join(rel, name), child
        yield from scan_remote(session, child, join(rel, name))


def _signature(st: os.stat_result) -> dict[str, int]:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def conflict_name(rel: str, user: str) -> str:
    head, _, name = rel.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not stem:
        stem, dot, ext = name, "", ""
    stamp = time.strftime("%Y-%m-%d %H%M%S")
    return join(head, f"{stem} (conflict {user} {stamp}){dot}{ext}")


class Syncer:
    def __init__(self, session: Session, local: Path, remote: str, progress: Progress | None):
        self.session, self.local, self.progress = session, local, progress
        loc = locate(session, remote)
        if loc.folder is None:
            raise NotEncryptedError(f"{loc.path!r} is not a folder of an encrypted tree")
        self.top = loc.folder
        self.root = loc.folder.top
        self.key = _pair_key(session, local, loc.path)
        self.state = session.keystore.sync_state(self.key)
        self.base: dict[str, dict[str, Any]] = dict(self.state.get("files", {}))
        self.base_dirs: set[str] = set(self.state.get("dirs", []))
        self.report = Report()
        self._archives = True  # until the server shows it has no archive download
        self._saved_at = self._save_cost = 0.0

    def save(self) -> None:
        start = time.monotonic()
        self.session.keystore.save_sync_state(
            self.key, {"files": self.base, "dirs": sorted(self.base_dirs)}
        )
        self._saved_at = time.monotonic()
        self._save_cost = self._saved_at - start

    def _save_due(self) -> bool:
        # Saving holds the GIL (JSON of the whole base: ~0.15 s for 1000 files), stalling
        # every transfer thread: keep it under ~5% of the run, and at least 2 s apart.
        return time.monotonic() - self._saved_at > max(2.0, 20 * self._save_cost)

    def _record(self, rel: str, tag: str, st: os.stat_result | None = None) -> None:
        st = st if st is not None else (self.local / rel).stat()
        self.base[rel] = {**_signature(st), "tag": tag}

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> Report:
        local_files, local_dirs = scan_local(self.local)
        remote_files: dict[str, RemoteFile] = {}
        remote_dirs: dict[str, EncryptedFolder] = {"": self.top}
        for rel, item in scan_remote(self.session, self.top):
            if isinstance(item, RemoteFile):
                remote_files[rel] = item
            else:
                remote_dirs[rel] = item

        uploads: list[str] = []
        remote_deletes: list[str] = []
        self.downloads: list[tuple[str, RemoteFile]] = []
        for rel in sorted(set(local_files) | set(remote_files) | set(self.base)):
            base, st, remote = self.base.get(rel), local_files.get(rel), remote_files.get(rel)
            local_changed = st is not None and (
                base is None or _signature(st) != {k: base[k] for k in ("size", "mtime_ns")}
            )
            remote_changed = remote is not None and (base is None or remote.tag != base["tag"])
            if st is not None and remote is not None:
                if base is None and self._same_content(rel, remote):
                    self._record(rel, remote.tag)
                elif local_changed and remote_changed:
                    uploads.append(self._conflict(rel, remote))
                elif local_changed:
                    uploads.append(rel)
                elif remote_changed:
                    self._download(rel, remote)
            elif st is not None:
                if base is None or local_changed:
                    uploads.append(rel)
                else:
                    self._delete_local(rel)
            elif remote is not None:
                if base is None or remote_changed:
                    self._download(rel, remote)
                else:
                    remote_deletes.append(rel)
            else:
                self.base.pop(rel, None)
        self._download_all()  # saves the base
        self._sync_dirs(local_dirs, remote_dirs, uploads)
        self._push(uploads, remote_deletes, remote_files, remote_dirs)
        self._prune_dirs(local_dirs, remote_dirs)
        self.save()
        return self.report

    # --- local side ------------------------------------------------------------------------

    def _download(self, rel: str, remote: RemoteFile) -> None:
        self.downloads.append((rel, remote))

    def _fetch(self, rel: str, remote: RemoteFile) -> None:
        target = self.local / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        download_entry(
            self.session,
            remote.folder,
            remote.uuid,
            remote.entry,
            target,
            self.progress,
            durable=False,  # each file is fsynced before its rename; folders in save_landed
        )

    def _fetch_group(self, group: list[tuple[str, RemoteFile]]) -> None:
        """Several small files of one folder in one archive request where the server has it;
        whatever did not come that way (or a single file) one by one."""
        left = group
        if len(group) > 1 and self._archives:
            folder = group[0][1].folder
            wanted = {}
            for rel, remote in group:
                (self.local / rel).parent.mkdir(parents=True, exist_ok=True)
                wanted[remote.uuid] = (remote.entry, self.local / rel)
            landed = download_archive(self.session, folder, wanted, self.progress)
            if landed is None:
                self._archives = False  # this server has none: no more asking
            else:
                left = [(rel, remote) for rel, remote in group if remote.uuid not in landed]
        for rel, remote in left:
            self._fetch(rel, remote)

    def _groups(self) -> list[list[tuple[str, RemoteFile]]]:
        """The downloads in groups, in order: small files of one folder together (spread so
        that every download thread gets some, each request's query short), others alone."""
        by_folder: dict[int, list[tuple[str, RemoteFile]]] = {}
        groups: list[list[tuple[str, RemoteFile]]] = []
        for rel, remote in self.downloads:
            listed = remote.folder.listing(self.session).get(remote.uuid)
            if listed is not None and listed.size < BULK_MIN:
                by_folder.setdefault(remote.folder.file_id, []).append((rel, remote))
            else:
                groups.append([(rel, remote)])
        for small in by_folder.values():
            size = min(ARCHIVE_NAMES, -(-len(small) // PARALLEL_DOWNLOADS))
            groups += [small[i : i + size] for i in range(0, len(small), size)]
        return groups

    def _download_all(self) -> None:
        """Several downloads at once (each lands on its own); the base follows in order."""
        for _, remote in self.downloads:  # fill the listings before threads share them
            remote.folder.listing(self.session)
        landed: set[Path] = set()
        with ThreadPoolExecutor(PARALLEL_DOWNLOADS) as pool:
            futures = [(group, pool.submit(self._fetch_group, group)) for group in self._groups()]
            for group, future in futures:
                future.result()
                for rel, remote in group:
                    landed.add((self.local / rel).parent)
                    self._record(rel, remote.tag)
                    self.report.downloaded.append(rel)
                # resumable: landed files reach the saved base often (a re-run redoes the
                # others, and finds them equal); not after each file, O(n²) for many files.
                if self._save_due():
                    self._save_landed(landed)
        self._save_landed(landed)
        self.downloads = []

    def _save_landed(self, folders: set[Path]) -> None:
        """The base may name a downloaded file only once its rename is durable: a base that
        outlived a lost rename would read as a local delete and delete the remote file."""
        for folder in folders:
            sync_folder(folder)
        folders.clear()
        self.save()

    def _same_content(self, rel: str, remote: RemoteFile) -> bool:
        """New on both sides: identical bytes are agreement, not a conflict."""
        path = self.local / rel
        listing = remote.folder.listing(self.session).get(remote.uuid)
        if listing is None or listing.size - 16 != path.stat().st_size:
            return False
        scratch = path.with_name(f".{path.name}.e2ee-compare")
        try:
            download_entry(self.session, remote.folder, remote.uuid, remote.entry, scratch)
            return _digest(scratch) == _digest(path)
        finally:
            scratch.unlink(missing_ok=True)

    def _conflict(self, rel: str, remote: RemoteFile) -> str:
        aside = conflict_name(rel, self.session.user)
        (self.local / rel).rename(self.local / aside)
        self.report.conflicts.append(rel)
        self._download(rel, remote)
        return aside

    def _delete_local(self, rel: str) -> None:
        (self.local / rel).unlink(missing_ok=True)
        self.base.pop(rel, None)
        self.report.deleted_local.append(rel)

    # --- folders ---------------------------------------------------------------------------

    def _sync_dirs(
        self, local_dirs: set[str], remote_dirs: dict[str, EncryptedFolder], uploads: list[str]
    ) -> None:
        for rel in sorted(remote_dirs):
            if rel and rel not in local_dirs and rel not in self.base_dirs:
                (self.local / rel).mkdir(parents=True, exist_ok=True)
                local_dirs.add(rel)
        needed = {d for d in local_dirs if d not in self.base_dirs or d in remote_dirs}
        for rel in uploads:
            parts = rel.split("/")[:-1]
            needed |= {"/".join(parts[: i + 1]) for i in range(len(parts))}
        missing = sorted((d for d in needed if d not in remote_dirs), key=lambda d: d.count("/"))
        from client.ops.folders import _new_subfolder

        depth = -1
        tx: Transaction | None = None
        try:
            for rel in missing:
                if rel.count("/") != depth:  # parents first, one commit per depth
                    if tx is not None:
                        tx.__exit__(None, None, None)
                    depth = rel.count("/")
                    tx = Transaction(self.session, self.root).__enter__()
                parent_rel, _, name = rel.rpartition("/")
                assert tx is not None
                remote_dirs[rel] = _new_subfolder(tx, remote_dirs[parent_rel], name)
                self.report.folders_created.append(rel)
            if tx is not None:
                tx.__exit__(None, None, None)
        except BaseException:
            if tx is not None:
                tx.abort()
            raise
        for folder in remote_dirs.values():
            folder._listing = None
        self.base_dirs |= {d for d in local_dirs if d in remote_dirs}

    def _prune_dirs(self, local_dirs: set[str], remote_dirs: dict[str, EncryptedFolder]) -> None:
        """A folder deleted on one side goes on the other once it holds nothing."""
        gone_local = [d for d in self.base_dirs if d not in local_dirs and d in remote_dirs]
        for rel in sorted(gone_local, key=lambda d: -d.count("/")):
            folder = remote_dirs[rel]
            if not folder.files and not folder.folders:
                from client.ops.folders import rm

                rm(self.session, join(self.top.clear_path, rel))
                self.base_dirs.discard(rel)
                self.report.deleted_remote.append(rel + "/")
        gone_remote = [d for d in self.base_dirs if d not in remote_dirs and d in local_dirs]
        for rel in sorted(gone_remote, key=lambda d: -d.count("/")):
            path = self.local / rel
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
                self.base_dirs.discard(rel)
                self.report.deleted_local.append(rel + "/")
        self.base_dirs &= set(local_dirs) | set(remote_dirs)

    # --- remote side -----------------------------------------------------------------------

    def _push(
        self,
        uploads: list[str],
        deletes: list[str],
        remote_files: dict[str, RemoteFile],
        remote_dirs: dict[str, EncryptedFolder],
    ) -> None:
        work = [("delete", rel) for rel in deletes] + [("upload", rel) for rel in uploads]
        while work:
            batch: list[tuple[str, str]] = []
            size = 0
            while work and len(batch) < BATCH_FILES and size < BATCH_BYTES:
                kind, rel = work.pop(0)
                batch.append((kind, rel))
                if kind == "upload":
                    size += (self.local / rel).stat().st_size
            done: list[tuple[str, str, str, os.stat_result | None]] = []
            with Transaction(self.session, self.root) as tx:
                for kind, rel in batch:
                    if kind == "delete":
                        folder = remote_dirs[rel.rpartition("/")[0]]
                        remote = remote_files[rel]
                        self.session.api.delete(join(folder.dav_path, remote.uuid), tx.token)
                        del folder.files[remote.uuid]
                        tx.touch(folder)
                        done.append((kind, rel, "", None))
                sending = [rel for kind, rel in batch if kind == "upload"]
                sent = {rel: (self.local / rel).stat() for rel in sending}  # even if it changes
                with ThreadPoolExecutor(PARALLEL) as pool:
                    sealed = [
                        pool.submit(
                            seal_upload,
                            tx,
                            remote_dirs[rel.rpartition("/")[0]],
                            self.local / rel,
                            self.progress,
                        )
                        for rel in sending
                    ]
                    results = [future.result() for future in sealed]
                for rel, result in zip(sending, results, strict=True):
                    parent_rel, _, name = rel.rpartition("/")
                    blob = record_upload(tx, remote_dirs[parent_rel], name, result)
                    tag = b64encode(remote_dirs[parent_rel].files[blob].authentication_tag)
                    done.append(("upload", rel, tag, sent[rel]))
            for kind, rel, tag, st in done:  # committed: now the base may say so
                if kind == "delete":
                    self.base.pop(rel, None)
                    self.report.deleted_remote.append(rel)
                else:
                    self._record(rel, tag, st)
                    self.report.uploaded.append(rel)
            self.save()


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@waits_for_lock
def sync(session: Session, local: Path, remote: str, progress: Progress | None = None) -> Report:
    if not local.is_dir():
        raise LocalPathError(f"{local} is not a folder")
    return Syncer(session, local, remote, progress).run()
