"""WebDAV multistatus parsing for :mod:`client.api`: what PROPFIND answers, as server hints.

Nothing parsed here is trusted for a security decision: names, sizes and dates inside an
encrypted tree come from verified metadata; this only says what the server claims to hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import unquote
from xml.etree import ElementTree

from client.errors import ServerError

DAV_NS, OC_NS, NC_NS = "DAV:", "http://owncloud.org/ns", "http://nextcloud.org/ns"
_PROPS = (
    ("d", "resourcetype"),
    ("d", "getcontentlength"),
    ("d", "getlastmodified"),
    ("d", "getetag"),
    ("oc", "fileid"),
    ("oc", "size"),
    ("nc", "is-encrypted"),
    ("nc", "e2ee-is-encrypted"),
)
PROPFIND_BODY = (
    '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" '
    'xmlns:nc="http://nextcloud.org/ns"><d:prop>'
    + "".join(f"<{ns}:{name}/>" for ns, name in _PROPS)
    + "</d:prop></d:propfind>"
)


@dataclass(frozen=True)
class DavEntry:
    """One PROPFIND response entry: a server hint, never trusted for security decisions."""

    path: str  # relative to the DAV root that was queried, no leading or trailing "/"
    is_dir: bool
    file_id: int | None
    size: int
    modified: float | None
    etag: str
    is_encrypted: bool

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def text(element: ElementTree.Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def parse_multistatus(body: bytes, root_href: str) -> list[DavEntry]:
    """PROPFIND 207 → entries with paths relative to the DAV files root of ``root_href``."""
    try:
        tree = ElementTree.fromstring(body)  # noqa: S314 - no entity expansion in stdlib ET
    except ElementTree.ParseError:
        raise ServerError("list: the server sent malformed XML") from None
    marker = "/remote.php/dav/files/"
    entries = []
    for response in tree.iter(f"{{{DAV_NS}}}response"):
        href = unquote(text(response.find(f"{{{DAV_NS}}}href")))
        after = href.split(marker, 1)[1] if marker in href else href
        path = after.split("/", 1)[1].strip("/") if "/" in after else ""
        props: dict[str, ElementTree.Element] = {}
        for propstat in response.iter(f"{{{DAV_NS}}}propstat"):
            if "200" not in text(propstat.find(f"{{{DAV_NS}}}status")):
                continue
            prop = propstat.find(f"{{{DAV_NS}}}prop")
            for child in prop if prop is not None else ():
                props[child.tag] = child
        resourcetype = props.get(f"{{{DAV_NS}}}resourcetype")
        is_dir = resourcetype is not None and (
            resourcetype.find(f"{{{DAV_NS}}}collection") is not None
        )
        file_id = text(props.get(f"{{{OC_NS}}}fileid"))
        size = text(props.get(f"{{{DAV_NS}}}getcontentlength")) or text(
            props.get(f"{{{OC_NS}}}size")
        )
        modified = text(props.get(f"{{{DAV_NS}}}getlastmodified"))
        try:
            mtime = parsedate_to_datetime(modified).timestamp() if modified else None
        except (TypeError, ValueError):
            mtime = None
        entries.append(
            DavEntry(
                path=path,
                is_dir=is_dir,
                file_id=int(file_id) if file_id.isdigit() else None,
                size=int(size) if size.isdigit() else 0,
                modified=mtime,
                etag=text(props.get(f"{{{DAV_NS}}}getetag")).strip('"'),
                is_encrypted=text(props.get(f"{{{NC_NS}}}is-encrypted")) == "1",
            )
        )
    return entries
