"""Encrypted folders: access checks, the encrypted flag, the tree they form."""

from __future__ import annotations

from django.db import transaction

from server.accounts.models import User
from server.errors import Forbidden, NotFound
from server.files import selectors as file_selectors
from server.files import services as file_services
from server.files.errors import NodeNotFound
from server.files.models import Node
from server.sharing import permissions
from server.sharing.selectors import node_access

from .models import FolderMetadata

STAGED_SUFFIX = ".e2e-to-save"
DELETED_SUFFIX = ".e2e-to-delete"


def folder_get(*, user: User, node_id: int, write: bool = False) -> Node:
    """A folder the user may use for E2EE ("missing" and "not yours" are both 404).

    A sharee resolves the owner's folder (PROTOCOL.md §4.4): reads need the share's READ bit,
    writes (`write`, locks and metadata uploads) its UPDATE bit; owners have both. Services
    acting on the folder's nodes act as `node.owner`.
    """
    try:
        access = node_access(user=user, node_id=node_id)
    except NodeNotFound:
        raise NotFound("Could not find the folder") from None
    if not access.node.is_dir:
        raise NotFound("Not a folder")
    needed = permissions.UPDATE if write else permissions.READ
    if not permissions.has(access.permissions, needed):
        raise Forbidden("The share does not allow this")
    return access.node


def encrypted_ancestry(*, node: Node) -> list[Node]:
    """The node and its ancestors, nearest first."""
    ids = file_selectors.node_ancestor_ids(node_id=node.id)
    by_id = {n.id: n for n in Node.objects.filter(id__in=ids)}
    return [by_id[i] for i in ids]


def in_encrypted_tree(*, node: Node) -> bool:
    """True for a flagged folder and everything below one."""
    return any(n.is_encrypted for n in encrypted_ancestry(node=node))


def topmost_encrypted(*, node: Node) -> Node | None:
    """The encrypted root of the tree `node` is in (the flagged folder whose parent is not)."""
    top = None
    for ancestor in encrypted_ancestry(node=node):
        if ancestor.is_encrypted:
            top = ancestor
    return top


def _has_children(node: Node) -> bool:
    return Node.objects.filter(parent=node).exists()


def encrypted_flag_set(*, user: User, node_id: int) -> Node:
    folder = folder_get(user=user, node_id=node_id, write=True)
    if folder.is_root:
        raise Forbidden("The home folder cannot be encrypted")
    if _has_children(folder):
        raise NotFound("The folder is not empty")
    if folder.is_encrypted:
        return folder
    return file_services.node_set_encrypted(user=folder.owner, node=folder, encrypted=True)


def encrypted_flag_unset(*, user: User, node_id: int) -> Node:
    folder = folder_get(user=user, node_id=node_id, write=True)
    if _has_children(folder):
        raise NotFound("The folder is not empty")
    with transaction.atomic():
        FolderMetadata.objects.filter(node=folder).delete()
        return file_services.node_set_encrypted(user=folder.owner, node=folder, encrypted=False)


def encrypted_folders_reset(*, user: User) -> list[int]:
    """Delete every encrypted folder of the user with its content and metadata ("reset")."""
    flagged = list(Node.objects.filter(owner=user, is_encrypted=True, kind=Node.Kind.DIR))
    deleted: list[int] = [n.id for n in flagged]
    topmost = [n for n in flagged if topmost_encrypted(node=n) == n]
    for folder in topmost:
        file_services.node_delete(user=user, node=folder)
    return deleted
