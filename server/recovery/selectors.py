"""Reads of the recovery key, and the admin's ciphertext-only view of a user's encrypted tree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO

from server.accounts.models import User
from server.e2ee.models import FolderMetadata
from server.errors import BadRequest, NotFound
from server.files.errors import NodeNotFound
from server.files.models import Node
from server.files.selectors import (
    file_open,
    node_get,
    node_get_by_path,
    node_root_find,
    node_subtree,
)

from .models import RecoveryKey


def recovery_key_enabled() -> RecoveryKey | None:
    return RecoveryKey.objects.filter(
        status=RecoveryKey.Status.ISSUED, disabled_at__isnull=True
    ).first()


def _user(username: str) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:
        raise NotFound("No such user")
    return user


@dataclass(frozen=True)
class EncryptedTree:
    root_id: int
    nodes: list[dict[str, Any]]


def encrypted_tree_export(*, username: str, path: str) -> EncryptedTree:
    """The topmost encrypted folder at `path` of `username` and everything below it, as the
    server holds it: ids, server names (uuids below the root), sizes, the committed metadata
    documents and signatures. Ciphertext and public structure only: the server has no key."""
    user = _user(username)
    root = node_root_find(user=user)
    parts = [p for p in path.strip("/").split("/") if p]
    if root is None or not parts:
        raise NotFound("No such folder")
    try:
        top = node_get_by_path(user=user, root=root, parts=parts)
    except NodeNotFound:
        raise NotFound("No such folder") from None
    parent = top.parent
    if not top.is_dir or not top.is_encrypted or (parent is not None and parent.is_encrypted):
        raise BadRequest("Not a topmost end-to-end encrypted folder")
    nodes = node_subtree(node_id=top.id)
    documents = {
        m.node_id: m for m in FolderMetadata.objects.filter(node_id__in=[n.id for n in nodes])
    }
    out = []
    for node in nodes:
        entry: dict[str, Any] = {
            "id": node.id,
            "parent": node.parent_id if node.id != top.id else None,
            "name": node.name,
            "type": "dir" if node.is_dir else "file",
            "size": node.size,
        }
        if node.is_dir:
            record = documents.get(node.id)
            entry["encrypted"] = node.is_encrypted
            entry["metadata"] = record.document if record is not None else None
            entry["signature"] = record.signature if record is not None else None
        out.append(entry)
    return EncryptedTree(top.id, out)


def encrypted_blob_open(*, username: str, node_id: int) -> tuple[Node, BinaryIO]:
    """The stored bytes (ciphertext) of a file inside an encrypted folder of `username`."""
    user = _user(username)
    try:
        node = node_get(user=user, node_id=node_id)
    except NodeNotFound:
        raise NotFound("No such file") from None
    if not node.is_file or node.parent is None or not node.parent.is_encrypted:
        raise NotFound("No such file")
    return node, file_open(user=user, node=node)
