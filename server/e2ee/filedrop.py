"""Secure file drop (PROTOCOL.md §1.10): uploaders without the folder key add entries to the
`filedrop` map of the committed metadata. The server merges them under an internal lock and
commits at once; it never looks inside an entry."""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction

from server.accounts.models import User
from server.errors import BadRequest, Forbidden, NotFound, PreconditionFailed
from server.files import selectors as file_selectors
from server.files.errors import NodeNotFound
from server.files.models import Node
from server.sharing import permissions
from server.sharing.selectors import link_share_get, node_access

from .locks import _lock_tree_rows, locks_conflicting
from .models import FolderMetadata


def _drop_folder(*, user: User | None, share_token: str | None, node_id: int) -> Node:
    """The folder and the permission bits the caller has on it: by share token (anyone who
    holds it), else as the signed-in user (owner or sharee)."""
    if share_token:
        share = link_share_get(token=share_token)
        node = Node.objects.filter(id=node_id).first()
        if node is None or not file_selectors.node_is_inside(
            node_id=node.id, ancestor_id=share.node_id
        ):
            raise Forbidden("The folder is outside the share")
        bits = share.permissions
    elif user is None:
        raise BadRequest("Anonymous file drop needs a shareToken")
    else:
        try:
            access = node_access(user=user, node_id=node_id)
        except NodeNotFound:
            raise NotFound("Could not find the folder") from None
        node, bits = access.node, access.permissions
    if not permissions.has(bits, permissions.CREATE):
        raise Forbidden("The share does not allow adding files")
    if not (node.is_dir and node.is_encrypted):
        raise Forbidden("The folder is not end-to-end encrypted")
    return node


def filedrop_entries_parse(*, raw: str) -> dict[str, Any]:
    try:
        entries = json.loads(raw)
    except ValueError:
        raise BadRequest("filedrop is not JSON") from None
    if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
        raise BadRequest("filedrop must be a JSON object of entries")
    return entries


def filedrop_merge(
    *, user: User | None, share_token: str | None, node_id: int, entries: dict[str, Any]
) -> dict[str, Any]:
    """Merge `entries` (uuid -> entry) into the committed metadata's `filedrop` map."""
    folder = _drop_folder(user=user, share_token=share_token, node_id=node_id)
    with transaction.atomic():
        _lock_tree_rows(folder)  # the same row locks lock_acquire takes: no lock can slip in
        if locks_conflicting(node=folder, token=None):
            raise PreconditionFailed("The folder is locked by a client")
        record = FolderMetadata.objects.select_for_update().filter(node=folder).first()
        if record is None:
            raise NotFound("Could not find metadata for the folder")
        try:
            document = json.loads(record.document)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise BadRequest("The stored metadata cannot take file drop entries")
        merged = document.get("filedrop")
        merged = dict(merged) if isinstance(merged, dict) else {}
        merged.update(entries)
        document["filedrop"] = merged
        record.document = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        record.save(update_fields=["document", "updated_at"])
    return merged
