"""Writes of shares. Keyword-only, typed, `<thing>_<action>`."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from server.accounts.models import User
from server.certificates.models import Certificate
from server.e2ee.models import WrappedPrivateKey
from server.errors import BadRequest, Forbidden, NotFound
from server.files import selectors as file_selectors
from server.files import services as file_services
from server.files.errors import NodeNotFound
from server.files.models import Node

from . import permissions
from .models import Share, new_token
from .selectors import share_get


def _node_at(*, user: User, path: str) -> Node:
    root = file_services.node_root_get_or_create(user=user)
    parts = [p for p in path.split("/") if p]
    try:
        return file_selectors.node_get_by_path(user=user, root=root, parts=parts)
    except NodeNotFound:
        raise NotFound("Wrong path, file/folder does not exist") from None


def _check_encryption(node: Node) -> None:
    """Only the topmost folder of an encrypted tree may be shared (PROTOCOL.md §4.7)."""
    above = file_selectors.node_ancestor_ids(node_id=node.id)[1:]
    if Node.objects.filter(id__in=above, is_encrypted=True).exists():
        raise Forbidden("Only the topmost end-to-end encrypted folder can be shared")


def _permissions_checked(*, node: Node, requested: int | None, default: int) -> int:
    bits = default if requested is None else requested
    if not 0 < bits <= permissions.ALL:
        raise BadRequest("Invalid permissions")
    if node.is_file:
        bits &= ~(permissions.CREATE | permissions.DELETE)  # files cannot hold members
    return bits


def _target_name(*, sharee: User, name: str) -> str:
    """The node's name, or "name (2)", "name (3)"… if the sharee's root already has it."""
    root = file_services.node_root_get_or_create(user=sharee)
    taken = set(Node.objects.filter(parent=root).values_list("name", flat=True))
    taken |= set(
        Share.objects.filter(share_type=Share.Type.USER, share_with=sharee).values_list(
            "target_name", flat=True
        )
    )
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name} ({n})"
    return candidate


def share_create(
    *,
    user: User,
    path: str,
    share_type: int,
    share_with: str | None = None,
    permissions_requested: int | None = None,
) -> Share:
    node = _node_at(user=user, path=path)
    if node.is_root:
        raise Forbidden("You cannot share your root folder")
    _check_encryption(node)
    if share_type == Share.Type.USER:
        return _user_share_create(
            user=user, node=node, share_with=share_with, requested=permissions_requested
        )
    if share_type == Share.Type.LINK:
        bits = _permissions_checked(
            node=node, requested=permissions_requested, default=permissions.READ
        )
        if node.is_file and bits & permissions.CREATE:
            raise BadRequest("File drop is only possible for folders")
        return Share.objects.create(
            share_type=Share.Type.LINK,
            owner=user,
            node=node,
            token=new_token(),
            permissions=bits,
            target_name=node.name,
        )
    raise BadRequest("Unknown share type")


def _user_share_create(
    *, user: User, node: Node, share_with: str | None, requested: int | None
) -> Share:
    sharee = get_user_model().objects.filter(username=share_with or "", is_active=True).first()
    if sharee is None:
        raise NotFound("Please specify a valid user")
    if sharee.pk == user.pk:
        raise Forbidden("Sharing with yourself is not possible")
    bits = _permissions_checked(node=node, requested=requested, default=permissions.ALL)
    if not bits & permissions.READ:
        raise BadRequest("Shares need at least read permissions")
    try:
        with transaction.atomic():
            return Share.objects.create(
                share_type=Share.Type.USER,
                owner=user,
                node=node,
                share_with=sharee,
                permissions=bits,
                target_name=_target_name(sharee=sharee, name=node.name),
            )
    except IntegrityError:
        raise Forbidden("This item is already shared with this user") from None


def share_delete(*, user: User, share_id: int) -> None:
    """The owner deletes a share; a sharee may leave a share they received. A link share's
    E2EE keys ("s:<token>") go with it."""
    share = share_get(user=user, share_id=share_id)
    with transaction.atomic():
        if share.is_link:
            identity = share.identity
            WrappedPrivateKey.objects.filter(key_owner=identity).delete()
            Certificate.objects.filter(key_owner=identity, deleted_at__isnull=True).update(
                deleted_at=timezone.now()
            )
        share.delete()


def sharee_roots_touch(sender: object, node_ids: list[int], **kwargs: object) -> None:
    """A change inside a shared folder changes each sharee's root etag too: that is where the
    share is mounted, and what a sync client polls."""
    sharees = list(
        Share.objects.filter(node_id__in=node_ids, share_type=Share.Type.USER).values_list(
            "share_with_id", flat=True
        )
    )
    # After the commit: touching other users' roots inside the writer's transaction would take
    # row locks outside its own tree's order.
    if sharees:
        transaction.on_commit(lambda: file_services.roots_touch(owner_ids=sharees))
