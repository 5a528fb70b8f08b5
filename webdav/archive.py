"""GET on a folder as one archive, as Nextcloud's WebDAV answers it (since Nextcloud 30).

WebDAV leaves GET on a collection to the server. With ``Accept: application/x-tar`` (or
``application/zip``; ``?accept=tar|zip`` for browser links) the folder comes back as one
streamed archive of what its listing shows, recursively. ``?files=["a","b/c"]`` (a JSON array)
or ``X-NC-Files`` headers (comma-separated) restrict it to those members, named as given;
without them every name starts with the folder's own name ("download" for the root).

A sync client fetching many small files asks for them in a few requests instead of one each.
The bytes are the stored ones: in an encrypted folder, ciphertext under the encrypted names.
Read filters apply as to any read (E2EE: staged uploads hidden, staged deletes still there).
A member asked for that does not exist is a 404 before anything is sent; a blob that breaks
off mid-stream ends the response early, which the client sees as a truncated archive.
"""

from __future__ import annotations

import json
import tarfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs

from wsgidav.dav_error import HTTP_BAD_REQUEST, HTTP_NOT_FOUND, DAVError

from .reads import filter_check

if TYPE_CHECKING:
    from .provider import DirResource, _NodeResource

TAR, ZIP = "application/x-tar", "application/zip"
_KINDS = {TAR: TAR, "tar": TAR, ZIP: ZIP, "zip": ZIP}
_BLOCK = tarfile.BLOCKSIZE
_ZIP_EPOCH = 315532800  # 1980-01-01: the earliest time a zip entry can carry


def requested_kind(environ: dict[str, Any]) -> str | None:
    """TAR or ZIP if the request asks for an archive (the query's `accept` wins), else None."""
    query = parse_qs(environ.get("QUERY_STRING", ""))
    accepted = query["accept"][0] if "accept" in query else environ.get("HTTP_ACCEPT", "")
    for item in accepted.split(","):
        kind = _KINDS.get(item.split(";")[0].strip().lower())
        if kind is not None:
            return kind
    return None


def requested_members(environ: dict[str, Any]) -> list[str]:
    """The members asked for (`files` query, else X-NC-Files headers); [] means all."""
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "files" in query:
        try:
            files = json.loads(query["files"][0])
        except ValueError:
            raise DAVError(HTTP_BAD_REQUEST, "files must be a JSON array of names") from None
        files = files if isinstance(files, list) else [files]
        if not all(isinstance(name, str) and name.strip("/") for name in files):
            raise DAVError(HTTP_BAD_REQUEST, "files must be a JSON array of names")
        return files
    header = environ.get("HTTP_X_NC_FILES", "")
    return [name.strip() for name in header.split(",") if name.strip()]


def _member(folder: DirResource, path: str, listed: dict[str, _NodeResource]) -> _NodeResource:
    """The member at `path` below `folder`; `listed` is the folder's listing by name (one query
    for all first names, and what the read filters show: E2EE staged names are not there)."""
    from .provider import DirResource

    first, *rest = [part for part in path.split("/") if part]
    resource = listed.get(first)
    for name in rest:
        resource = resource.get_member(name) if isinstance(resource, DirResource) else None
    if resource is None:
        raise DAVError(HTTP_NOT_FOUND, f"{path!r} is not in this folder")
    return resource


def _walk(resource: _NodeResource, name: str) -> Iterator[tuple[str, _NodeResource]]:
    """(archive name, resource) for `resource` and, for a folder, everything below it."""
    from .provider import DirResource, _read_context

    filter_check(_read_context(resource.environ), resource.node)
    yield name, resource
    if isinstance(resource, DirResource):
        for member in resource.get_member_list():
            yield from _walk(member, f"{name}/{member.name}")


def _blob(resource: _NodeResource, block: int) -> Iterator[bytes]:
    """The file's stored bytes, exactly its recorded size (a short blob breaks the stream)."""
    from .provider import FileResource, dav_errors

    assert isinstance(resource, FileResource)
    left = resource.node.size
    with dav_errors(), resource.get_content() as reader:
        while left:
            piece = reader.read(min(block, left))
            if not piece:
                raise OSError(f"blob of node {resource.node.id} ended {left} bytes early")
            left -= len(piece)
            yield piece


def _tar_header(name: str, resource: _NodeResource) -> bytes:
    info = tarfile.TarInfo(name)
    info.mtime = resource.node.mtime
    if resource.node.is_dir:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.size, info.mode = resource.node.size, 0o644
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _padding(size: int) -> int:
    return -size % _BLOCK


def _stored(resource: _NodeResource) -> int:
    """The bytes a member's content takes in the tar, padding included."""
    size = resource.node.size if resource.node.is_file else 0
    return size + _padding(size)


def _tar(entries: list[tuple[bytes, _NodeResource]], block: int) -> Iterator[bytes]:
    for header, resource in entries:
        yield header
        if resource.node.is_file:
            yield from _blob(resource, block)
            yield bytes(_padding(resource.node.size))
    yield bytes(2 * _BLOCK)  # end of archive


class _Sink:
    """What zipfile writes into; the generator hands on what it holds after each step."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _zip(items: Iterable[tuple[str, _NodeResource]], block: int) -> Iterator[bytes]:
    sink = _Sink()
    with zipfile.ZipFile(cast(IO[bytes], sink), "w", zipfile.ZIP_STORED) as archive:
        for name, resource in items:
            node = resource.node
            stamp = time.gmtime(max(node.mtime, _ZIP_EPOCH))[:6]
            info = zipfile.ZipInfo(name + "/" if node.is_dir else name, date_time=stamp)
            if node.is_dir:
                archive.writestr(info, b"")
            else:
                info.file_size = node.size
                with archive.open(info, "w", force_zip64=node.size >= zipfile.ZIP64_LIMIT) as out:
                    for piece in _blob(resource, block):
                        out.write(piece)
                        yield sink.take()
            yield sink.take()
    yield sink.take()


def respond(folder: DirResource, kind: str, start_response: Any, block: int) -> Iterable[bytes]:
    """The archive response for `folder`: every member resolved (404 if one is missing) before
    the status goes out, then the archive streamed. A tar's length is known in advance, so it
    goes with a Content-Length (the connection stays open, a cut-off body is detectable)."""
    members = requested_members(folder.environ)
    if members:
        listed = {member.name: member for member in folder.get_member_list()}
        items = [
            pair
            for path in members
            for pair in _walk(_member(folder, path, listed), path.strip("/"))
        ]
        base = folder.name or "download"
    else:
        base = folder.name if folder.node.parent_id is not None else "download"
        items = list(_walk(folder, base))
    filename = "".join(c for c in base if c.isprintable() and c not in '"\\') or "download"
    headers = [("Content-Type", kind), ("Cache-Control", "no-store")]
    if kind == TAR:
        entries = [(_tar_header(name, resource), resource) for name, resource in items]
        length = 2 * _BLOCK + sum(len(header) + _stored(res) for header, res in entries)
        headers += [("Content-Length", str(length))]
        body = _tar(entries, block)
    else:
        body = _zip(items, block)
    extension = "tar" if kind == TAR else "zip"
    headers.append(("Content-Disposition", f'attachment; filename="{filename}.{extension}"'))
    start_response("200 OK", headers)
    return body
