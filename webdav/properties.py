"""The Nextcloud/ownCloud WebDAV properties a sync client reads, computed from a Node."""

from __future__ import annotations

from collections.abc import Callable

from wsgidav.util import etree

from server.files.ids import oc_id
from server.files.models import Node

OC = "{http://owncloud.org/ns}"
NC = "{http://nextcloud.org/ns}"

# Nextcloud's permission letters for an owner: R shareable, G readable, D deletable,
# N renamable, V movable, W writable (files), C create files, K create folders (folders).
FILE_PERMISSIONS = "RGDNVW"
DIR_PERMISSIONS = "RGDNVCK"


def _checksums(node: Node) -> object:
    el = etree.Element(OC + "checksums")
    etree.SubElement(el, OC + "checksum").text = node.checksum
    return el


PERMISSIONS = OC + "permissions"


def permission_letters(node: Node, bits: int, *, shared: bool, mount: bool) -> str:
    """oc:permissions from share bits, as Nextcloud shows shared items: S shared with me,
    M the share's own node (mounted), then what the bits allow."""
    letters = ("S" if shared else "") + ("M" if mount else "")
    if bits & 16:
        letters += "R"
    if bits & 1:
        letters += "G"
    if bits & 8 and not mount:
        letters += "D"
    if bits & 2 and not mount:
        letters += "NV"
    if node.is_file and bits & 2:
        letters += "W"
    if node.is_dir and bits & 4:
        letters += "CK"
    return letters


_COMMON: dict[str, Callable[[Node], object]] = {
    OC + "fileid": lambda n: str(n.id),
    OC + "id": lambda n: oc_id(n.id),
    OC + "permissions": lambda n: DIR_PERMISSIONS if n.is_dir else FILE_PERMISSIONS,
    OC + "size": lambda n: str(n.size),
}
_DIR_ONLY: dict[str, Callable[[Node], object]] = {
    NC + "is-encrypted": lambda n: "1" if n.is_encrypted else "0",
}
_FILE_ONLY: dict[str, Callable[[Node], object]] = {
    OC + "checksums": _checksums,
}


def property_names(node: Node) -> list[str]:
    names = list(_COMMON)
    if node.is_dir:
        names += list(_DIR_ONLY)
    elif node.checksum:
        names += list(_FILE_ONLY)
    return names


def property_value(node: Node, name: str) -> object | None:
    """The value (text or element), or None if this node does not have the property."""
    getter = _COMMON.get(name)
    if getter is None and node.is_dir:
        getter = _DIR_ONLY.get(name)
    if getter is None and node.is_file and node.checksum:
        getter = _FILE_ONLY.get(name)
    return getter(node) if getter is not None else None
