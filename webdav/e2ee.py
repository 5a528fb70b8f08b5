"""The E2EE write gate (PROTOCOL.md §3.4): writes in an encrypted tree need a supported client
and the e2e-token of a lock covering them, and are staged until that lock is released."""

from __future__ import annotations

from urllib.parse import parse_qs

from server.e2ee.folders import DELETED_SUFFIX, STAGED_SUFFIX, in_encrypted_tree
from server.e2ee.gates import user_agent_supported
from server.e2ee.locks import lock_covering, lock_touch
from server.e2ee.models import StagedMove
from server.files.models import Node

from .gates import GateRefused, WriteIntent


def _token(intent: WriteIntent) -> str:
    environ = intent.environ
    token = environ.get("HTTP_E2E_TOKEN", "")
    if not token:
        token = parse_qs(environ.get("QUERY_STRING", "")).get("e2e-token", [""])[0]
    return token


def _inside(folder: Node) -> bool:
    return in_encrypted_tree(node=folder)


def e2ee_write_gate(intent: WriteIntent) -> WriteIntent:
    op, node = intent.operation, intent.node
    if op == "proppatch":
        return intent
    dest_inside = _inside(intent.parent)
    # The topmost encrypted folder itself lives in plain space: deleting or renaming it needs
    # the token of its own lock, and happens at once (there is no staging outside the tree).
    is_top = (
        node is not None
        and node.is_encrypted
        and not (node.parent_id is not None and _inside(node.parent))
    )
    source_inside = node is not None and node.parent_id is not None and _inside(node.parent)
    if op in ("move", "copy") and source_inside != dest_inside:
        raise GateRefused(403, "Moving or copying across the encrypted boundary is not allowed")
    if not (dest_inside or source_inside or (is_top and op in ("delete", "move"))):
        return intent

    environ = intent.environ
    if not user_agent_supported(
        environ.get("HTTP_USER_AGENT", ""), environ.get("HTTP_X_E2EE_SUPPORTED")
    ):
        raise GateRefused(403, "This client does not support end-to-end encryption")
    token = _token(intent)
    if not token:
        raise GateRefused(403, "Writing to an encrypted folder requires an e2e-token")
    covered = [intent.parent] if not is_top else [node]
    if op == "move" and source_inside:
        covered.append(node.parent)  # type: ignore[union-attr]
    locks = [lock_covering(node=folder, token=token) for folder in covered]
    if any(lock is None for lock in locks):
        raise GateRefused(423, "The encrypted folder is not locked with this e2e-token")
    lock = locks[0]
    assert lock is not None
    lock_touch(lock)

    if is_top:
        return intent
    if op in ("put", "mkcol", "copy"):
        return intent.replace(name=intent.name + STAGED_SUFFIX)
    if op == "delete":
        return intent.replace(operation="move", name=intent.name + DELETED_SUFFIX)
    # move inside the tree: staged at the destination, remembered so abort can undo it
    assert node is not None and node.parent_id is not None
    StagedMove.objects.create(
        lock=lock, node=node, from_parent_id=node.parent_id, from_name=node.name
    )
    return intent.replace(name=intent.name + STAGED_SUFFIX)
