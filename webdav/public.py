"""/public.php/dav/files/<token>/: a public link share, anonymous, as a secure file drop
(PROTOCOL.md §1.10). Whoever knows the token may add new files to the shared folder (if the
share has CREATE); nothing inside is listed or readable, nothing is overwritten or removed."""

from __future__ import annotations

from typing import Any

from wsgidav.dav_error import HTTP_FORBIDDEN, DAVError

from server.errors import NotFound
from server.sharing.models import Share
from server.sharing.selectors import link_share_get

from .provider import Access, DirResource, NodeProvider, _NodeResource

SHARE_KEY = "e2ee.link_share"


class DropFolderResource(DirResource):
    """The shared folder: members stay invisible, uploads of new names are the only write."""

    def get_member_names(self) -> list[str]:
        return []

    def get_member(self, name: str) -> _NodeResource | None:
        return None

    def get_member_list(self) -> list[_NodeResource]:
        return []

    def handle_copy(self, dest_path: str, *, depth_infinity: bool) -> bool:
        raise DAVError(HTTP_FORBIDDEN, "a file drop takes new files only")


class PublicShareProvider(NodeProvider):
    def __init__(self) -> None:
        super().__init__(uid_in_path=True)

    def __repr__(self) -> str:
        return "PublicShareProvider()"

    def _share(self, token: str, environ: dict[str, Any]) -> Share | None:
        if SHARE_KEY not in environ:
            try:
                environ[SHARE_KEY] = link_share_get(token=token)
            except NotFound:
                environ[SHARE_KEY] = None
        return environ[SHARE_KEY]

    def _names(self, path: str, environ: dict[str, Any]) -> list[str] | None:
        parts = [p for p in path.split("/") if p]
        if not parts or self._share(parts[0], environ) is None:
            return None
        return parts[1:]

    def get_resource_inst(self, path: str, environ: dict[str, Any]) -> _NodeResource | None:
        names = self._names(path, environ)
        share: Share | None = environ.get(SHARE_KEY)
        if names is None or share is None or names or not share.node.is_dir:
            return None
        access = Access(share.owner, share.permissions, share, mount=True, public=True)
        return DropFolderResource(path, environ, share.node, share.target_name, access)
