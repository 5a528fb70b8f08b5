"""share / unshare of a topmost encrypted folder (flow G): the OCS user share, then a new
metadata key wrapped for every member, its checksum appended, and the metadata of the root and
every sub-folder re-encrypted under one lock. Files are never re-encrypted: their keys live in
the metadata, which is what changes hands (a removed member keeps what they saw before, and
nothing written after — PROTOCOL.md §4.7, THREATS M9)."""

from __future__ import annotations

from typing import Any

from client import crypto
from client.api import PERMISSION_ALL, SHARE_USER
from client.crypto.keys import Certificate
from client.crypto.metadata import key_checksum
from client.errors import NotEncryptedError, UsageProblem
from client.ops.keys import certificate_of
from client.ops.session import Session
from client.ops.transaction import Transaction, waits_for_lock
from client.ops.tree import EncryptedFolder, locate, walk_tree


def _root_at(session: Session, remote_dir: str) -> EncryptedFolder:
    loc = locate(session, remote_dir)
    if loc.folder is None or not loc.folder.is_root:
        raise NotEncryptedError(f"{loc.path!r} is not a topmost encrypted folder")
    return loc.folder


def rotate(session: Session, root: EncryptedFolder, members: dict[str, Certificate]) -> int:
    """New metadata key for ``members``; returns how many folder documents were re-encrypted."""
    tree = walk_tree(session, root)  # verified with the current key, before it changes
    with Transaction(session, root) as tx:
        new_key = crypto.new_metadata_key()
        root.key = new_key
        root.key_checksums.append(key_checksum(new_key))
        root.certificates = dict(members)
        for folder in tree:
            tx.touch(folder)
    return len(tree)


@waits_for_lock
def share(session: Session, remote_dir: str, user: str) -> dict[str, Any]:
    if user == session.user:
        raise UsageProblem("a folder is always shared with its owner")
    root = _root_at(session, remote_dir)
    if user in root.certificates:
        raise UsageProblem(f"{root.clear_path!r} is shared with {user!r} already")
    cert = certificate_of(session, user)  # verified against the pinned server key, pinned
    if not _shares_with(session, root, user):
        session.api.create_share(
            root.dav_path, SHARE_USER, share_with=user, permissions=PERMISSION_ALL
        )
    folders = rotate(session, root, {**root.certificates, user: cert})
    return {
        "path": root.clear_path,
        "user": user,
        "members": sorted(root.certificates),
        "folders_rekeyed": folders,
    }


@waits_for_lock
def unshare(session: Session, remote_dir: str, user: str) -> dict[str, Any]:
    if user == session.user:
        raise UsageProblem("the owner cannot be removed")
    root = _root_at(session, remote_dir)
    shares = _shares_with(session, root, user)
    if user not in root.certificates and not shares:
        raise UsageProblem(f"{root.clear_path!r} is not shared with {user!r}")
    for found in shares:
        session.api.delete_share(found.share_id)
    members = {uid: cert for uid, cert in root.certificates.items() if uid != user}
    folders = rotate(session, root, members)
    return {
        "path": root.clear_path,
        "user": user,
        "members": sorted(members),
        "folders_rekeyed": folders,
    }


def _shares_with(session: Session, root: EncryptedFolder, user: str) -> list:
    return [
        s
        for s in session.api.shares()
        if s.file_id == root.file_id and s.share_type == SHARE_USER and s.share_with == user
    ]
