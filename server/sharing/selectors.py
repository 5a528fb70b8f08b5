"""Access-checked reads of shares, and the access a user has to a node through them.

"Missing" and "not yours" are the same answer (NotFound / NodeNotFound)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from server.accounts.models import User
from server.errors import NotFound
from server.files import selectors as file_selectors
from server.files.errors import NodeNotFound
from server.files.models import Node

from . import permissions
from .models import Share


@dataclass(frozen=True)
class NodeAccess:
    """A node as a user may use it: whose tree it is in (services act as that owner), with
    which permission bits, and through which share (None: the user's own node)."""

    node: Node
    owner: User
    permissions: int
    share: Share | None = None


def own_access(*, user: User, node: Node) -> NodeAccess:
    return NodeAccess(node=node, owner=user, permissions=permissions.ALL)


def node_access(*, user: User, node_id: int) -> NodeAccess:
    """The user's own node, or one in (or at) a folder shared with the user."""
    node = Node.objects.filter(id=node_id).select_related("owner").first()
    if node is None:
        raise NodeNotFound()
    if node.owner_id == user.pk:
        return own_access(user=user, node=node)
    ancestors = file_selectors.node_ancestor_ids(node_id=node.id)
    share = (
        Share.objects.filter(share_type=Share.Type.USER, share_with=user, node_id__in=ancestors)
        .select_related("owner")
        .order_by("-permissions")
        .first()
    )
    if share is None:
        raise NodeNotFound()
    return NodeAccess(node=node, owner=share.owner, permissions=share.permissions, share=share)


def share_get(*, user: User, share_id: int) -> Share:
    """A share the user created or received."""
    share = (
        Share.objects.filter(Q(owner=user) | Q(share_with=user), id=share_id)
        .select_related("owner", "share_with", "node")
        .first()
    )
    if share is None:
        raise NotFound("Wrong share ID, share does not exist")
    return share


def shares_owned(*, user: User, node: Node | None = None) -> list[Share]:
    shares = Share.objects.filter(owner=user).select_related("owner", "share_with", "node")
    if node is not None:
        shares = shares.filter(node=node)
    return list(shares)


def shares_received(*, user: User) -> list[Share]:
    return list(
        Share.objects.filter(share_type=Share.Type.USER, share_with=user).select_related(
            "owner", "share_with", "node"
        )
    )


def share_mount_find(*, user: User, target_name: str) -> Share | None:
    """The received share shown in the user's root folder under `target_name`."""
    return (
        Share.objects.filter(share_type=Share.Type.USER, share_with=user, target_name=target_name)
        .select_related("owner", "node")
        .first()
    )


def link_share_get(*, token: str) -> Share:
    """A public-link share by its token: anyone who knows the token may use it."""
    share = (
        Share.objects.filter(share_type=Share.Type.LINK, token=token)
        .select_related("owner", "node")
        .first()
        if token
        else None
    )
    if share is None:
        raise NotFound("Share not found")
    return share


def link_share_owned(*, user: User, token: str) -> Share:
    """A link share the user created (for its E2EE keys)."""
    share = Share.objects.filter(share_type=Share.Type.LINK, token=token, owner=user).first()
    if share is None:
        raise NotFound("Share not found")
    return share
