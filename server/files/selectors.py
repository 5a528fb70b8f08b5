"""Access-checked reads of the node tree. "Missing" and "not yours" are the same answer:
NodeNotFound. Every lookup is scoped to the acting user."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import BinaryIO

from django.db import connection

from server.accounts.models import User

from .blobstore import get_blob_store
from .errors import NodeNotFound
from .models import Node


def node_root_find(*, user: User) -> Node | None:
    """The user's root folder, or None before it was first created (services create it)."""
    return Node.objects.filter(owner=user, parent__isnull=True).first()


def node_get(*, user: User, node_id: int) -> Node:
    node = Node.objects.filter(owner=user, id=node_id).first()
    if node is None:
        raise NodeNotFound()
    return node


def node_get_by_path(*, user: User, root: Node, parts: Sequence[str]) -> Node:
    """Resolve names below `root` in one query: the deepest name joined up through its parents,
    the topmost one anchored at `root`."""
    if root.owner_id != user.pk:
        raise NodeNotFound()
    if not parts:
        return root
    lookup: dict[str, object] = {"owner": user}
    prefix = ""
    for name in reversed(parts):
        lookup[prefix + "name"] = name
        prefix += "parent__"
    lookup[prefix[: -len("__")] + "_id"] = root.id
    node = Node.objects.filter(**lookup).first()
    if node is None:
        raise NodeNotFound()
    return node


def node_children(*, user: User, node: Node) -> list[Node]:
    if node.owner_id != user.pk:
        raise NodeNotFound()
    return list(Node.objects.filter(parent=node).order_by("name"))


def node_child_find(*, user: User, parent: Node, name: str) -> Node | None:
    """The member `name` of `parent`, or None if there is none."""
    if parent.owner_id != user.pk:
        raise NodeNotFound()
    return Node.objects.filter(parent=parent, name=name).first()


def node_ancestor_ids(*, node_id: int) -> list[int]:
    """`node_id` and every ancestor up to the root, nearest first (one recursive query)."""
    table = Node._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH RECURSIVE anc(id, parent_id, depth) AS ("  # noqa: S608 - table name is ours
            f" SELECT id, parent_id, 0 FROM {table} WHERE id = %s"
            f" UNION ALL SELECT n.id, n.parent_id, anc.depth + 1 FROM {table} n"
            f" JOIN anc ON n.id = anc.parent_id) SELECT id FROM anc ORDER BY depth",
            [node_id],
        )
        return [row[0] for row in cursor.fetchall()]


def node_subtree(*, node_id: int) -> list[Node]:
    """`node_id` and everything below it, parents before children (one recursive query)."""
    table = Node._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH RECURSIVE sub(id, depth) AS ("  # noqa: S608 - table name is ours
            f" SELECT id, 0 FROM {table} WHERE id = %s"
            f" UNION ALL SELECT n.id, sub.depth + 1 FROM {table} n"
            f" JOIN sub ON n.parent_id = sub.id) SELECT id, depth FROM sub",
            [node_id],
        )
        depth_of = dict(cursor.fetchall())
    nodes = list(Node.objects.filter(id__in=depth_of))
    nodes.sort(key=lambda n: (depth_of[n.id], n.id))
    return nodes


def node_is_inside(*, node_id: int, ancestor_id: int) -> bool:
    """True if `node_id` is `ancestor_id` or lies below it."""
    return ancestor_id in node_ancestor_ids(node_id=node_id)


def node_path(*, node: Node) -> str:
    """The node's path below its owner's root, "/" for the root itself."""
    ids = node_ancestor_ids(node_id=node.id)
    names = dict(Node.objects.filter(id__in=ids).values_list("id", "name"))
    return "/" + "/".join(names[i] for i in reversed(ids) if names[i])


def file_open(*, user: User, node: Node) -> BinaryIO:
    """A seekable reader over the file's current version."""
    if node.owner_id != user.pk or not node.is_file:
        raise NodeNotFound()
    if not node.blob_key:  # rows created by other means than an upload may have no bytes yet
        return io.BytesIO(b"")
    return get_blob_store().open_read(node.blob_key)
