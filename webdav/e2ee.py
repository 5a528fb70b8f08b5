"""The E2EE write gate (PROTOCOL.md §3.4): writes in an encrypted tree need a supported client
and the e2e-token of a lock covering them, and are staged until that lock is released.

And the E2EE read filter: readers see the committed state (staged names hidden, staged deletes
still there), the nc:e2ee-* properties, and clients without E2EE support are kept out."""

from __future__ import annotations

from urllib.parse import parse_qs

from server.e2ee.folders import DELETED_SUFFIX, STAGED_SUFFIX, in_encrypted_tree
from server.e2ee.gates import user_agent_supported
from server.e2ee.locks import lock_covering, lock_touch
from server.e2ee.models import FolderMetadata, StagedMove
from server.files.models import Node

from .gates import GateRefused, WriteIntent
from .properties import NC, OC
from .reads import Entry, ReadContext, ReadFilter


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
    if intent.link_share and op == "put" and node is None:
        # Secure file drop (PROTOCOL.md §1.10): the uploader has no lock and no folder key; the
        # new name is committed at once, like the filedrop metadata entry that describes it.
        return intent
    dest_inside = _inside(intent.parent)
    # The topmost encrypted folder itself lives in plain space: deleting or renaming it needs
    # the token of its own lock, and happens at once (there is no staging outside the tree).
    source_parent = node.parent if node is not None else None
    source_inside = source_parent is not None and _inside(source_parent)
    is_top = node is not None and node.is_encrypted and not source_inside
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
    covered = [node] if is_top and node is not None else [intent.parent]
    if op == "move" and source_parent is not None and source_inside:
        covered.append(source_parent)
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


# --- reads ----------------------------------------------------------------------------------

IS_ENCRYPTED = NC + "is-encrypted"
E2EE_IS_ENCRYPTED = NC + "e2ee-is-encrypted"
E2EE_METADATA = NC + "e2ee-metadata"
E2EE_METADATA_SIGNATURE = NC + "e2ee-metadata-signature"
PERMISSIONS = OC + "permissions"


def _supported(ctx: ReadContext) -> bool:
    environ = ctx.environ
    return user_agent_supported(
        environ.get("HTTP_USER_AGENT", ""), environ.get("HTTP_X_E2EE_SUPPORTED")
    )


def _flagged_here_or_above(node: Node) -> bool:
    """Nextcloud's rule for nc:e2ee-is-encrypted: the node or its parent folder is flagged
    (every folder of an encrypted tree is flagged, so that is the whole tree)."""
    if node.is_encrypted:
        return True
    return node.parent_id is not None and node.parent is not None and node.parent.is_encrypted


def _committed(node: Node) -> tuple[str, str] | None:
    if not (node.is_dir and node.is_encrypted):
        return None
    row = FolderMetadata.objects.filter(node=node).values_list("document", "signature").first()
    return None if row is None else (row[0], row[1])


def _staged_name(name: str) -> bool:
    """A staged upload's or delete's name under a lock ("x.e2e-to-save", "x.e2e-to-delete")."""
    return name.endswith((STAGED_SUFFIX, DELETED_SUFFIX))


def _names_a_staged_node(ctx: ReadContext) -> bool:
    """Does the request path pass through a staged name? Cheap, so the query behind _inside
    runs only for such paths."""
    return any(_staged_name(part) for part in ctx.environ.get("PATH_INFO", "").split("/"))


class E2EEReadFilter(ReadFilter):
    def listing(self, ctx: ReadContext, folder: Node, entries: list[Entry]) -> list[Entry]:
        suffixed = any(_staged_name(e.name) for e in entries)
        if not suffixed or not _inside(folder):
            return entries
        shown = []
        for entry in entries:
            if entry.name.endswith(STAGED_SUFFIX):
                continue  # staged under a lock: not there until it commits
            if entry.name.endswith(DELETED_SUFFIX):
                entry = Entry(entry.name[: -len(DELETED_SUFFIX)], entry.node)
            shown.append(entry)
        return shown

    def missing(self, ctx: ReadContext, parent: Node, name: str) -> Node | None:
        if _staged_name(name) or not _inside(parent):
            return None
        return Node.objects.filter(parent=parent, name=name + DELETED_SUFFIX).first()

    def check(self, ctx: ReadContext, node: Node) -> None:
        if _names_a_staged_node(ctx) and node.parent is not None and _inside(node.parent):
            # Listings hide staged names and show staged deletes under their own name; asked
            # for by the staged name itself, they are not there either (until the unlock).
            raise GateRefused(404, "Not Found")
        if ctx.method == "PROPFIND" and node.is_dir and node.is_encrypted and not _supported(ctx):
            raise GateRefused(
                403, "This client is not allowed to access end-to-end encrypted content"
            )

    def property_names(self, ctx: ReadContext, node: Node) -> list[str]:
        names = [E2EE_IS_ENCRYPTED]
        if node.is_dir and node.is_encrypted:
            names += [E2EE_METADATA, E2EE_METADATA_SIGNATURE]
        return names

    def property_value(self, ctx: ReadContext, node: Node, name: str, value: object) -> object:
        if name == E2EE_IS_ENCRYPTED:
            return "1" if _flagged_here_or_above(node) else "0"
        if name in (E2EE_METADATA, E2EE_METADATA_SIGNATURE):
            committed = _committed(node)
            if committed is None:
                return value
            return committed[0] if name == E2EE_METADATA else committed[1]
        if name == PERMISSIONS and node.is_dir and node.is_encrypted and not _supported(ctx):
            return ""  # clients without E2EE must not write into an encrypted folder
        return value


e2ee_read_filter = E2EEReadFilter()
