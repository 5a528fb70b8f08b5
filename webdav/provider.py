"""A WsgiDAV provider over the node tree. Resources are thin: they parse, ask the write gate,
call one service or selector, and render. Nothing here touches the filesystem directly."""

from __future__ import annotations

import contextlib
import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from django.conf import settings
from wsgidav import util
from wsgidav.dav_error import (
    HTTP_BAD_REQUEST,
    HTTP_CONFLICT,
    HTTP_FORBIDDEN,
    HTTP_NOT_FOUND,
    HTTP_SERVICE_UNAVAILABLE,
    DAVError,
)
from wsgidav.dav_provider import DAVCollection, DAVNonCollection, DAVProvider

from server.accounts.models import User
from server.files import chunking, selectors, services
from server.files.blobstore import BlobStoreUnavailable
from server.files.errors import FilesError, NodeNotFound
from server.files.ids import oc_id
from server.files.models import Node
from server.sharing import permissions as perms
from server.sharing.models import Share
from server.sharing.selectors import share_mount_find, shares_received

from . import archive
from .auth import USER_KEY
from .gates import GateRefused, Operation, WriteIntent, gate_write
from .properties import PERMISSIONS, permission_letters, property_names, property_value
from .reads import (
    READ_METHODS,
    Entry,
    ReadContext,
    filter_check,
    filter_listing,
    filter_missing,
    filter_property_names,
    filter_property_value,
)

# Per-request state in the environ: headers to add to a 2xx answer, a status to use instead
# of WsgiDAV's (it answers 204 to every natively handled MOVE/COPY), the user's root.
EXTRA_HEADERS_KEY = "e2ee.response_headers"
STATUS_KEY = "e2ee.status"
ROOT_KEY = "e2ee.root"

_MTIME_PROPS = ("{DAV:}lastmodified", "{DAV:}getlastmodified")


@dataclass(frozen=True)
class Access:
    """How the request reaches a resource: whose tree it is in (services act as that owner),
    the share permission bits (all for one's own tree), and the share it came through."""

    owner: User
    permissions: int = perms.ALL
    share: Share | None = None
    # The resource is the share's own node as a sharee (or a public link) sees it: it cannot
    # be deleted, moved or changed from there.
    mount: bool = False
    # Reached anonymously through a public link (/public.php/dav/files/<token>/).
    public: bool = False

    def below(self) -> Access:
        """The access to members of this resource."""
        return Access(self.owner, self.permissions, self.share, False, self.public)

    def require(self, *bits: int) -> None:
        if not perms.has(self.permissions, *bits):
            raise DAVError(HTTP_FORBIDDEN, "the share does not allow this")


def _own(environ: dict[str, Any]) -> Access:
    return Access(owner=_user(environ))


@contextlib.contextmanager
def dav_errors() -> Iterator[None]:
    """Service and gate errors become the HTTP status they name."""
    try:
        yield
    except FilesError as exc:
        raise DAVError(exc.status, str(exc)) from exc
    except GateRefused as exc:
        raise DAVError(exc.status, exc.message) from exc
    except BlobStoreUnavailable as exc:
        raise DAVError(HTTP_SERVICE_UNAVAILABLE, "the blob store is unavailable") from exc


def _user(environ: dict[str, Any]) -> User:
    user = environ.get(USER_KEY)
    if user is None:  # the authenticator runs first; this is a wiring error
        raise DAVError(HTTP_FORBIDDEN)
    return user


def _root(environ: dict[str, Any]) -> Node:
    if ROOT_KEY not in environ:
        environ[ROOT_KEY] = services.node_root_get_or_create(user=_user(environ))
    return environ[ROOT_KEY]


def _read_context(environ: dict[str, Any]) -> ReadContext:
    return ReadContext.of(environ, environ.get(USER_KEY))


def _parse_mtime(value: str) -> int:
    """X-OC-MTime and PROPPATCH lastmodified: unix seconds (maybe with a fraction), or an
    HTTP date."""
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            return int(parsedate_to_datetime(value).timestamp())
        except (TypeError, ValueError):
            raise DAVError(HTTP_BAD_REQUEST, "invalid modification time") from None
    if not 0 <= seconds < 2**41:
        raise DAVError(HTTP_BAD_REQUEST, "invalid modification time")
    return int(seconds)


def _header_mtime(environ: dict[str, Any]) -> int | None:
    value = environ.get("HTTP_X_OC_MTIME")
    return None if value is None else _parse_mtime(value)


def _node_headers(environ: dict[str, Any], node: Node, *, mtime_accepted: bool = False) -> None:
    headers: list[tuple[str, str]] = environ.setdefault(EXTRA_HEADERS_KEY, [])
    headers += [("OC-FileId", oc_id(node.id)), ("OC-ETag", f'"{node.etag}"')]
    if mtime_accepted:
        headers.append(("X-OC-MTime", "accepted"))


def _gate(environ: dict[str, Any], operation: Operation, *, access: Access, parent: Node,
          name: str, node: Node | None) -> WriteIntent:
    """The share permission the operation needs, then the write gates. The intent's user is
    the owner of the tree: services act as them."""
    if operation == "put":
        access.require(perms.UPDATE if node is not None else perms.CREATE)
    elif operation in ("mkcol", "copy", "move"):
        access.require(perms.CREATE)
    elif operation == "delete":
        access.require(perms.DELETE)
    else:
        access.require(perms.UPDATE)
    with dav_errors():
        return gate_write(WriteIntent(operation=operation, user=access.owner, parent=parent,
                                      name=name, node=node, environ=environ,
                                      link_share=access.public))


class _NodeResource:
    """What files and folders share. Mixed in before WsgiDAV's resource classes."""

    node: Node
    # The name the node is shown under (a read filter may show it under another one).
    name: str
    access: Access
    path: str
    environ: dict[str, Any]
    provider: NodeProvider
    is_collection: bool

    def get_etag(self) -> str:
        return self.node.etag

    def support_etag(self) -> bool:
        return True

    def get_last_modified(self) -> float:
        return float(self.node.mtime)

    def get_creation_date(self) -> float:
        return self.node.created_at.timestamp()

    def get_display_name(self) -> str:
        return self.name

    def prevent_locking(self) -> bool:
        return True

    # --- properties ---

    def get_property_names(self, *, is_allprop: bool) -> list[str]:
        names = super().get_property_names(is_allprop=is_allprop)  # type: ignore[misc]
        names += property_names(self.node)
        extra = filter_property_names(_read_context(self.environ), self.node)
        return names + [n for n in extra if n not in names]

    def get_property_value(self, name: str) -> object:
        if name == "{DAV:}getetag":
            # Nextcloud sends the quoted form in PROPFIND; clients compare it as is.
            return f'"{self.node.etag}"'
        value = property_value(self.node, name)
        if name == PERMISSIONS and (self.access.share is not None or self.access.public):
            value = permission_letters(self.node, self.access.permissions,
                                       shared=True, mount=self.access.mount)
        value = filter_property_value(_read_context(self.environ), self.node, name, value)
        if value is not None:
            return value
        if name == "{DAV:}quota-used-bytes" and self.node.is_dir:
            return str(self.node.size)
        if name == "{DAV:}quota-available-bytes" and self.node.is_dir:
            return "-3"  # Nextcloud's "unlimited"
        return super().get_property_value(name)  # type: ignore[misc]

    def set_property_value(self, name: str, value: Any, *, dry_run: bool = False) -> None:
        if name not in _MTIME_PROPS:
            raise DAVError(HTTP_FORBIDDEN, "only the modification time can be changed")
        if value is None:
            return  # removing the modification time is meaningless; a no-op like Nextcloud
        mtime = _parse_mtime(value.text or "")
        if dry_run:
            return
        self._not_the_mount()
        intent = self._gate("proppatch", parent=self._parent_or_self(), name=self.node.name,
                            node=self.node)
        with dav_errors():
            self.node = services.node_set_mtime(user=intent.user, node=self.node, mtime=mtime)

    # --- delete, move, copy: always handled natively, in one transaction each ---

    def _gate(self, operation: Operation, *, parent: Node, name: str,
              node: Node | None, access: Access | None = None) -> WriteIntent:
        return _gate(self.environ, operation, access=access or self.access, parent=parent,
                     name=name, node=node)

    def _not_the_mount(self) -> None:
        if self.access.mount:
            raise DAVError(HTTP_FORBIDDEN, "a shared item cannot be changed by its sharee")

    def _parent_or_self(self) -> Node:
        return self.node.parent if self.node.parent_id is not None else self.node  # type: ignore[return-value]

    def handle_delete(self) -> bool:
        if self.node.is_root:
            raise DAVError(HTTP_FORBIDDEN, "the root folder cannot be deleted")
        self._not_the_mount()
        intent = self._gate("delete", parent=self._parent_or_self(), name=self.node.name,
                            node=self.node)
        with dav_errors():
            if intent.operation == "move":
                # A gate may turn a delete into a move (E2EE: "<name>.e2e-to-delete").
                services.node_move(user=intent.user, node=self.node, new_parent=intent.parent,
                                   new_name=intent.name, overwrite=True)
            else:
                services.node_delete(user=intent.user, node=self.node)
        return True

    def support_recursive_delete(self) -> bool:
        return True

    def delete(self) -> None:
        self.handle_delete()

    def _destination(self, dest_path: str) -> tuple[Node, str, Access]:
        parent_res = self.provider.get_resource_inst(util.get_uri_parent(dest_path) or "/",
                                                     self.environ)
        if not isinstance(parent_res, DirResource):
            raise DAVError(HTTP_CONFLICT, "the destination folder does not exist")
        if parent_res.access.owner.pk != self.access.owner.pk:
            raise DAVError(HTTP_FORBIDDEN, "moving or copying between shares is not supported")
        return parent_res.node, util.get_uri_name(dest_path), parent_res.access

    def _place(self, operation: Operation, dest_path: str) -> bool:
        parent, name, dest_access = self._destination(dest_path)
        if operation == "move":
            self._not_the_mount()
            if parent.id == self.node.parent_id:
                self.access.require(perms.UPDATE)  # a rename
            else:
                self.access.require(perms.DELETE)
        intent = self._gate(operation, parent=parent, name=name, node=self.node,
                            access=dest_access)
        overwrite = self.environ.get("HTTP_OVERWRITE", "T") == "T"
        place = services.node_move if operation == "move" else services.node_copy
        with dav_errors():
            result = place(user=intent.user, node=self.node, new_parent=intent.parent,
                           new_name=intent.name, overwrite=overwrite)
        _node_headers(self.environ, result.node)
        self.environ[STATUS_KEY] = "204 No Content" if result.replaced else "201 Created"
        return True

    def handle_move(self, dest_path: str) -> bool:
        return self._place("move", dest_path)

    def handle_copy(self, dest_path: str, *, depth_infinity: bool) -> bool:
        if self.node.is_dir and not depth_infinity:
            # COPY with Depth 0 of a folder: an empty folder at the destination.
            parent, name, dest_access = self._destination(dest_path)
            intent = self._gate("mkcol", parent=parent, name=name, node=None, access=dest_access)
            with dav_errors():
                existing = Node.objects.filter(parent=intent.parent, name=intent.name).first()
                if existing is not None:
                    if self.environ.get("HTTP_OVERWRITE", "T") != "T":
                        raise DAVError(412)
                    services.node_delete(user=intent.user, node=existing)
                created = services.node_create_dir(user=intent.user, parent=intent.parent,
                                                   name=intent.name, mtime=self.node.mtime)
            _node_headers(self.environ, created)
            self.environ[STATUS_KEY] = "204 No Content" if existing else "201 Created"
            return True
        return self._place("copy", dest_path)


class DirResource(_NodeResource, DAVCollection):
    def __init__(self, path: str, environ: dict[str, Any], node: Node,
                 name: str | None = None, access: Access | None = None) -> None:
        DAVCollection.__init__(self, path, environ)
        self.node = node
        self.name = node.name if name is None else name
        self.access = access or _own(environ)

    def get_member_names(self) -> list[str]:
        return [entry.name for entry in self._entries()]

    def get_member(self, name: str) -> _NodeResource | None:
        child = _child(self.environ, self.access.owner, self.node, name)
        return None if child is None else _resource(util.join_uri(self.path, name),
                                                     self.environ, child, name,
                                                     self.access.below())

    def get_member_list(self) -> list[_NodeResource]:
        # One query for the whole listing (PROPFIND Depth 1), not one per member.
        mounts = self._mounts()
        return [_resource(util.join_uri(self.path, entry.name), self.environ, entry.node,
                          entry.name, mounts.get(entry.node.id) or self.access.below())
                for entry in self._entries(mounts)]

    def _mounts(self) -> dict[int, Access]:
        """In the user's own root: the folders shared with them, by node id."""
        if not self.node.is_root or self.access.share is not None or self.access.public:
            return {}
        return {share.node_id: Access(share.owner, share.permissions, share, mount=True)
                for share in shares_received(user=self.access.owner)}

    def _entries(self, mounts: dict[int, Access] | None = None) -> list[Entry]:
        with dav_errors():
            children = selectors.node_children(user=self.access.owner, node=self.node)
        for child in children:
            child.parent = self.node  # already loaded: properties need no query per member
        entries = [Entry(child.name, child) for child in children]
        for access in (self._mounts() if mounts is None else mounts).values():
            assert access.share is not None
            entries.append(Entry(access.share.target_name, access.share.node))
        return filter_listing(_read_context(self.environ), self.node, entries)

    def get_used_bytes(self) -> int:
        return self.node.size

    def get_available_bytes(self) -> int:
        return -3

    def create_empty_resource(self, name: str) -> PendingFileResource:
        # Nothing is stored yet: the row appears only when the upload commits.
        return PendingFileResource(util.join_uri(self.path, name), self.environ,
                                   parent=self.node, name=name, access=self.access.below())

    def create_collection(self, name: str) -> None:
        if self.access.public:
            raise DAVError(HTTP_FORBIDDEN, "a file drop takes files only")
        mtime = _header_mtime(self.environ)
        intent = self._gate("mkcol", parent=self.node, name=name, node=None)
        with dav_errors():
            node = services.node_create_dir(user=intent.user, parent=intent.parent,
                                            name=intent.name, mtime=mtime)
        _node_headers(self.environ, node, mtime_accepted=mtime is not None)

    def support_recursive_move(self, dest_path: str) -> bool:
        return True


class _UploadStream:
    """What WsgiDAV's PUT writes the body into; close() is a no-op, end_write decides."""

    def __init__(self, upload: services.FileUpload | chunking.ChunkUpload) -> None:
        self.write = upload.write

    def close(self) -> None:
        pass


class _Writable:
    """PUT support for an existing file or a name that does not exist yet."""

    environ: dict[str, Any]
    access: Access
    _upload: services.FileUpload | chunking.ChunkUpload | None
    _mtime: int | None

    def _begin(self, *, parent: Node, name: str, existing: Node | None) -> _UploadStream:
        self._upload = None
        self._mtime = _header_mtime(self.environ)
        piece: chunking.ChunkName | None = None
        if existing is None and self.environ.get("HTTP_OC_CHUNKED") == "1":
            # A piece of a legacy chunked upload: the gate judges the file it will become.
            with dav_errors():
                piece = chunking.chunk_name_parse(name=name)
            name = piece.name
            existing = Node.objects.filter(parent=parent, name=name).first()
        if self.access.public and (piece is not None or existing is not None or Node.objects.filter(
                parent=parent, name=name).exists()):
            # A file drop only adds new files; it never overwrites or reveals what is there.
            raise DAVError(HTTP_FORBIDDEN, "a file drop cannot overwrite")
        intent = _gate(self.environ, "put", access=self.access, parent=parent, name=name,
                       node=existing)
        chunked = "chunked" in self.environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        options: dict[str, Any] = {
            "user": intent.user, "parent": intent.parent,
            "expected_size": None if chunked else util.get_content_length(self.environ),
            "mtime": self._mtime, "checksum": self.environ.get("HTTP_OC_CHECKSUM") or None,
        }
        with dav_errors():
            if piece is None:
                self._upload = services.file_upload_begin(
                    name=intent.name, overwrite=not self.access.public, **options)
            else:
                self._upload = chunking.chunk_upload_begin(
                    name=f"{intent.name}-chunking-{piece.transfer_id}-{piece.count}-{piece.index}",
                    **options)
        return _UploadStream(self._upload)

    def _end(self, *, with_errors: bool) -> Node | None:
        upload, self._upload = self._upload, None
        if upload is None:
            return None
        if with_errors:
            upload.abort()
            return None
        with dav_errors():
            result = upload.commit()
        if result is None:
            return None  # a piece of a chunked upload; no ETag until the file is complete
        _node_headers(self.environ, result.node, mtime_accepted=self._mtime is not None)
        return result.node


class FileResource(_Writable, _NodeResource, DAVNonCollection):
    def __init__(self, path: str, environ: dict[str, Any], node: Node,
                 name: str | None = None, access: Access | None = None) -> None:
        DAVNonCollection.__init__(self, path, environ)
        self.node = node
        self.name = node.name if name is None else name
        self.access = access or _own(environ)
        self._upload = None

    def get_content_length(self) -> int:
        return self.node.size

    def get_content_type(self) -> str:
        return mimetypes.guess_type(self.name)[0] or "application/octet-stream"

    def get_content(self) -> Any:
        with dav_errors():
            return selectors.file_open(user=self.access.owner, node=self.node)

    def support_ranges(self) -> bool:
        return True

    def finalize_headers(self, environ: dict[str, Any], response_headers: list) -> None:
        response_headers += [("OC-FileId", oc_id(self.node.id)),
                             ("OC-ETag", f'"{self.node.etag}"')]
        if self.node.checksum:
            response_headers.append(("OC-Checksum", self.node.checksum))

    def begin_write(self, *, content_type: str | None = None) -> _UploadStream:
        assert self.node.parent is not None
        return self._begin(parent=self.node.parent, name=self.node.name, existing=self.node)

    def end_write(self, *, with_errors: bool) -> None:
        node = self._end(with_errors=with_errors)
        if node is not None:
            self.node = node


class PendingFileResource(_Writable, DAVNonCollection):
    """A PUT target that does not exist yet. It has no row until its upload commits."""

    def __init__(self, path: str, environ: dict[str, Any], *, parent: Node, name: str,
                 access: Access) -> None:
        DAVNonCollection.__init__(self, path, environ)
        self.parent, self.name, self.access = parent, name, access
        self.node: Node | None = None
        self._upload = None

    def get_content_length(self) -> int:
        return 0 if self.node is None else self.node.size

    def get_content_type(self) -> str:
        return "application/octet-stream"

    def get_content(self) -> Any:
        raise DAVError(HTTP_NOT_FOUND)

    def get_etag(self) -> str | None:
        return None if self.node is None else self.node.etag

    def support_etag(self) -> bool:
        return True

    def get_last_modified(self) -> float | None:
        return None if self.node is None else float(self.node.mtime)

    def prevent_locking(self) -> bool:
        return True

    def begin_write(self, *, content_type: str | None = None) -> _UploadStream:
        return self._begin(parent=self.parent, name=self.name, existing=None)

    def end_write(self, *, with_errors: bool) -> None:
        self.node = self._end(with_errors=with_errors)


def _resource(path: str, environ: dict[str, Any], node: Node, name: str | None = None,
              access: Access | None = None) -> _NodeResource:
    if node.is_dir:
        return DirResource(path, environ, node, name, access)
    return FileResource(path, environ, node, name, access)


def _child(environ: dict[str, Any], owner: User, parent: Node, name: str) -> Node | None:
    """The member `name` of `parent`; for reads, a read filter may find one that is missing."""
    with dav_errors():
        child = selectors.node_child_find(user=owner, parent=parent, name=name)
    if child is None:
        child = filter_missing(_read_context(environ), parent, name)
    return child


class NodeProvider(DAVProvider):
    """One user's tree. With `uid_in_path` the first path segment must be the authenticated
    user's id (/remote.php/dav/files/<uid>/...); without it the path starts at the user's root
    (/remote.php/webdav/...). Any other user's path is answered like a missing one."""

    def __init__(self, *, uid_in_path: bool) -> None:
        super().__init__()
        self.uid_in_path = uid_in_path

    def __repr__(self) -> str:
        return f"NodeProvider(uid_in_path={self.uid_in_path})"

    def _names(self, path: str, environ: dict[str, Any]) -> list[str] | None:
        """The names below the user's root, or None if the path is outside the user's tree."""
        parts = [p for p in path.split("/") if p]
        if self.uid_in_path:
            if not parts or parts[0] != _user(environ).username:
                return None
            parts = parts[1:]
        return parts

    def get_resource_inst(self, path: str, environ: dict[str, Any]) -> _NodeResource | None:
        names = self._names(path, environ)
        if names is None:
            return None
        base, access, rest = self._base(environ, names)
        try:
            node = selectors.node_get_by_path(user=access.owner, root=base, parts=rest)
        except NodeNotFound:
            if environ["REQUEST_METHOD"] not in READ_METHODS:
                return None
            found = self._resolve_filtered(environ, access.owner, base, rest)
            if found is None:
                return None
            node = found
        if environ["REQUEST_METHOD"] in READ_METHODS:
            with dav_errors():
                filter_check(_read_context(environ), node)
        return _resource(path, environ, node, names[-1] if names else None,
                         access if not rest else access.below())

    def _base(self, environ: dict[str, Any], names: list[str]) -> tuple[Node, Access, list[str]]:
        """Where resolution starts: a folder shared with the user when the first name is the
        name it is shown under in the user's root, else the user's own root."""
        if names:
            share = share_mount_find(user=_user(environ), target_name=names[0])
            if share is not None:
                return share.node, Access(share.owner, share.permissions, share,
                                          mount=True), names[1:]
        return _root(environ), _own(environ), names

    def _resolve_filtered(self, environ: dict[str, Any], owner: User, base: Node,
                          names: list[str]) -> Node | None:
        """Name by name, letting the read filters resolve missing names (only reached when the
        one-query lookup found nothing, so the common case stays one query)."""
        node = base
        for name in names:
            child = _child(environ, owner, node, name)
            if child is None:
                return None
            node = child
        return node

    def custom_request_handler(self, environ, start_response, default_handler):
        method = environ["REQUEST_METHOD"]
        if method != "OPTIONS" and self._names(environ["PATH_INFO"], environ) is None:
            # Someone else's tree (or the bare /files/ collection): no method may tell whether
            # anything exists there, not even PUT's usual 409 for a missing parent.
            raise DAVError(HTTP_NOT_FOUND)
        if method == "PROPFIND" and environ.get("HTTP_DEPTH") not in ("0", "1"):
            # Like Nextcloud (Sabre without propfind-depth-infinity): infinity means 1.
            environ["HTTP_DEPTH"] = "1"
        environ[EXTRA_HEADERS_KEY] = []
        if method == "GET" and (kind := archive.requested_kind(environ)) is not None:
            resource = self.get_resource_inst(environ["PATH_INFO"], environ)
            if isinstance(resource, DirResource) and not resource.access.public:
                return archive.respond(resource, kind, start_response, settings.WEBDAV_BLOCK_SIZE)

        def start(status: str, headers: list, exc_info: Any = None) -> Any:
            if status.startswith("2"):
                status = environ.get(STATUS_KEY) or status
                headers = list(headers) + environ[EXTRA_HEADERS_KEY]
            return start_response(status, headers, exc_info)

        return default_handler(environ, start)
