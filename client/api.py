"""The server as the client sees it: OCS and WebDAV over httpx, one method per endpoint.

No judgement happens here: this module moves bytes and turns HTTP failures into
:class:`~client.errors.ServerError` subclasses. Everything it returns is untrusted until
:mod:`client.ops` has verified it. Large bodies stream in 1 MiB pieces both ways. Credentials
never appear in an exception, a repr or a log line.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree

import httpx

from client import __version__, bulk
from client.davxml import DAV_NS, NC_NS, OC_NS, PROPFIND_BODY, DavEntry, parse_multistatus, text
from client.errors import (
    AuthenticationError,
    E2EEUnavailableError,
    LockedError,
    RemotePathError,
    ServerError,
)
from client.protocol import COUNTER_HEADER, SIGNATURE_HEADER, TOKEN_HEADER

CHUNK = 1 << 20
E2EE = "/ocs/v2.php/apps/end_to_end_encryption/api/v2"
SHARES = "/ocs/v2.php/apps/files_sharing/api/v1/shares"
REVOKED = "/ocs/v2.php/apps/e2ee_stack/api/v1/revoked"  # our extension
USER_AGENT = f"Mozilla/5.0 (Linux) e2ee-stack/{__version__}"
# Share types and permission bits of Nextcloud's OCS share API.
SHARE_USER, SHARE_LINK = 0, 3
PERMISSION_ALL, PERMISSION_CREATE = 31, 4


@dataclass(frozen=True)
class Share:
    share_id: int
    share_type: int
    share_with: str | None
    path: str
    token: str | None
    file_id: int
    permissions: int


def quote_path(path: str) -> str:
    return "/".join(quote(part, safe="") for part in path.strip("/").split("/") if part)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
        ocs = body.get("ocs", {})
        data = ocs.get("data")
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return data["message"]
        message = ocs.get("meta", {}).get("message")
        if isinstance(message, str) and message:
            return message
    except (ValueError, AttributeError):
        pass
    return response.reason_phrase or "request failed"


def raise_for(response: httpx.Response, what: str) -> None:
    status = response.status_code
    if status < 400:
        return
    message = f"{what}: HTTP {status}: {_message(response)[:200]}"
    if status == 401:
        raise AuthenticationError(f"{what}: the server rejected the credentials", status)
    if status in (412, 423):
        raise LockedError(message, status)
    if status == 404:
        raise RemotePathError(message)
    raise ServerError(message, status)


def _tls_context(base_url: str) -> ssl.SSLContext | bool:
    """httpx's default (the system's trust, SSL_CERT_FILE) for an https server. A plain-http
    server needs none, and loading the trust store costs ~35 ms of every command: it gets a
    context that trusts nothing, so a TLS connection there could only fail."""
    if urlsplit(base_url).scheme == "https":
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificates and host names


class ServerApi:
    """One account on one server. ``password`` is an app password or the account password."""

    def __init__(
        self,
        base_url: str,
        user: str | None = None,
        password: str | None = None,
        *,
        timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.user = user
        auth = (user, password) if user is not None and password is not None else None
        headers = {"User-Agent": USER_AGENT, "X-E2EE-SUPPORTED": "true"}
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=auth,
            timeout=timeout,
            headers=headers,
            transport=transport,
            verify=_tls_context(self.base_url),
        )
        # downloads bypass h11 (client.bulk) unless httpx was set up specially
        self._getter: bulk.Getter | None = None
        if transport is None and bulk.usable(self.base_url):
            credentials = {"Authorization": bulk.basic_auth(*auth)} if auth is not None else {}
            self._getter = bulk.Getter(self.base_url, {**headers, **credentials}, timeout=timeout)

    def __repr__(self) -> str:
        return f"ServerApi({self.base_url!r}, user={self.user!r})"

    def close(self) -> None:
        self._http.close()
        if self._getter is not None:
            self._getter.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------------

    def _request(self, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerError(f"{what}: cannot reach the server ({type(exc).__name__})") from None
        raise_for(response, what)
        return response

    def _ocs(self, method: str, path: str, what: str, **kwargs: Any) -> tuple[Any, httpx.Response]:
        headers = {"OCS-APIRequest": "true", **kwargs.pop("headers", {})}
        params = {"format": "json", **kwargs.pop("params", {})}
        response = self._request(method, path, what, headers=headers, params=params, **kwargs)
        try:
            data = response.json()["ocs"]["data"]
        except (ValueError, KeyError, TypeError):
            raise ServerError(f"{what}: the server sent no OCS envelope") from None
        return data, response

    @staticmethod
    def _field(data: Any, name: str, what: str) -> str:
        value = data.get(name) if isinstance(data, dict) else None
        if not isinstance(value, str):
            raise ServerError(f"{what}: the answer has no {name!r}")
        return value

    def dav_url(self, path: str) -> str:
        if self.user is None:
            raise ServerError("WebDAV needs a signed-in user")
        return f"/remote.php/dav/files/{quote(self.user, safe='')}/{quote_path(path)}"

    # --- account --------------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        data, _ = self._ocs("GET", "/ocs/v2.php/cloud/capabilities", "capabilities")
        caps = data.get("capabilities") if isinstance(data, dict) else None
        return caps if isinstance(caps, dict) else {}

    def e2ee_capability(self) -> dict[str, Any]:
        caps = self.capabilities().get("end-to-end-encryption")
        if not isinstance(caps, dict) or not caps.get("enabled"):
            raise E2EEUnavailableError("the server offers no end-to-end encryption to this account")
        return caps

    def current_user(self) -> str:
        data, _ = self._ocs("GET", "/ocs/v2.php/cloud/user", "sign-in")
        return self._field(data, "id", "sign-in")

    # --- keys -----------------------------------------------------------------------------

    def server_key(self) -> str:
        data, _ = self._ocs("GET", f"{E2EE}/server-key", "server key")
        return self._field(data, "public-key", "server key")

    def public_keys(self, users: Iterable[str] = ()) -> dict[str, str]:
        params = {"users": json.dumps(list(users))}
        data, _ = self._ocs("GET", f"{E2EE}/public-key", "public keys", params=params)
        keys = data.get("public-keys") if isinstance(data, dict) else None
        if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
            raise ServerError("public keys: malformed answer")
        return keys

    def revocation_list(self) -> tuple[str, str] | None:
        """The CA-signed revoked list (our extension): (document, base64 signature), or None
        when the server offers none (404 on a Nextcloud server; null before a first edition)."""
        try:
            data, _ = self._ocs("GET", REVOKED, "revoked list")
        except RemotePathError:
            return None
        document = data.get("list") if isinstance(data, dict) else None
        signature = data.get("signature") if isinstance(data, dict) else None
        if document is None and signature is None:
            return None
        if not isinstance(document, str) or not isinstance(signature, str):
            raise ServerError("revoked list: malformed answer")
        return document, signature

    def submit_csr(self, csr_pem: str) -> str:
        data, _ = self._ocs("POST", f"{E2EE}/public-key", "certificate", data={"csr": csr_pem})
        return self._field(data, "public-key", "certificate")

    def private_key(self) -> str:
        data, _ = self._ocs("GET", f"{E2EE}/private-key", "private key")
        return self._field(data, "private-key", "private key")

    def store_private_key(self, wrapped: str) -> None:
        self._ocs("POST", f"{E2EE}/private-key", "store private key", data={"privateKey": wrapped})

    # --- encrypted folders, locks, metadata ----------------------------------------------

    def set_encrypted(self, file_id: int) -> None:
        self._ocs("PUT", f"{E2EE}/encrypted/{file_id}", "mark folder encrypted")

    def lock(self, file_id: int, counter: int, token: str | None = None) -> str:
        data = {"e2e-token": token} if token else None
        found, _ = self._ocs(
            "POST",
            f"{E2EE}/lock/{file_id}",
            "lock",
            headers={COUNTER_HEADER: str(counter)},
            data=data,
        )
        return self._field(found, "e2e-token", "lock")

    def unlock(self, file_id: int, token: str, *, abort: bool = False) -> None:
        params = {"abort": "true"} if abort else {}
        self._ocs(
            "DELETE",
            f"{E2EE}/lock/{file_id}",
            "abort lock" if abort else "unlock",
            headers={TOKEN_HEADER: token},
            params=params,
        )

    def metadata(self, file_id: int) -> tuple[str, str]:
        """The stored metadata document (JSON text) and its signature header."""
        data, response = self._ocs("GET", f"{E2EE}/meta-data/{file_id}", "metadata")
        return self._field(data, "meta-data", "metadata"), response.headers.get(
            SIGNATURE_HEADER, ""
        )

    def store_metadata(
        self, file_id: int, document: str, signature: str, token: str, *, create: bool
    ) -> None:
        self._ocs(
            "POST" if create else "PUT",
            f"{E2EE}/meta-data/{file_id}",
            "upload metadata",
            headers={TOKEN_HEADER: token, SIGNATURE_HEADER: signature},
            data={"metaData": document},
        )

    def delete_metadata(self, file_id: int, token: str) -> None:
        self._ocs(
            "DELETE",
            f"{E2EE}/meta-data/{file_id}",
            "delete metadata",
            headers={TOKEN_HEADER: token},
        )

    def add_filedrop(self, file_id: int, entries: Mapping[str, Any], share_token: str) -> None:
        self._ocs(
            "PUT",
            f"{E2EE}/meta-data/{file_id}/filedrop",
            "file drop",
            data={"filedrop": json.dumps(entries), "shareToken": share_token},
        )

    # --- sharing --------------------------------------------------------------------------

    def create_share(
        self, path: str, share_type: int, *, share_with: str | None = None, permissions: int
    ) -> Share:
        form: dict[str, Any] = {"path": "/" + path.strip("/"), "shareType": share_type}
        form["permissions"] = permissions
        if share_with is not None:
            form["shareWith"] = share_with
        data, _ = self._ocs("POST", SHARES, "share", data=form)
        return _share(data)

    def shares(self) -> list[Share]:
        data, _ = self._ocs("GET", SHARES, "list shares")
        return [_share(item) for item in data] if isinstance(data, list) else []

    def delete_share(self, share_id: int) -> None:
        self._ocs("DELETE", f"{SHARES}/{share_id}", "unshare")

    # --- WebDAV ---------------------------------------------------------------------------

    def propfind(self, path: str, depth: int = 1) -> list[DavEntry]:
        """Entries of ``path`` (itself first); ``[]`` if it does not exist."""
        url = self.dav_url(path)
        try:
            response = self._request(
                "PROPFIND",
                url,
                "list",
                headers={"Depth": str(depth), "Content-Type": "application/xml"},
                content=PROPFIND_BODY,
            )
        except RemotePathError:
            return []
        return parse_multistatus(response.content, urlsplit(self.base_url + url).path)

    def mkcol(self, path: str, token: str | None = None) -> int:
        headers = {TOKEN_HEADER: token} if token else {}
        response = self._request("MKCOL", self.dav_url(path), "create folder", headers=headers)
        return _file_id(response, "create folder")

    def upload(
        self, path: str, body: Iterable[bytes], length: int, token: str | None = None
    ) -> int | None:
        """PUT a body of known length, streamed; returns the file id if the server says it."""
        headers = {"Content-Length": str(length), "Content-Type": "application/octet-stream"}
        if token:
            headers[TOKEN_HEADER] = token
        response = self._request("PUT", self.dav_url(path), "upload", headers=headers, content=body)
        header = response.headers.get("OC-FileId")
        return _file_id(response, "upload") if header else None

    @contextmanager
    def download(self, path: str) -> Iterator[tuple[int | None, Iterator[bytes]]]:
        """GET streamed: yields (Content-Length or None, an iterator of ~1 MiB chunks)."""
        try:
            with self._http.stream("GET", self.dav_url(path)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise_for(response, "download")
                length = response.headers.get("Content-Length")
                yield (int(length) if length and length.isdigit() else None), _chunks(response)
        except httpx.HTTPError as exc:
            raise ServerError(f"download: connection failed ({type(exc).__name__})") from None

    @contextmanager
    def open_download(self, path: str) -> Iterator[tuple[int | None, bulk.Readable]]:
        """GET streamed as a reader: yields (Content-Length or None, an object with
        ``readinto``), through client.bulk unless httpx was set up specially."""
        if self._getter is None:
            with self.download(path) as (length, chunks):
                yield length, bulk.ChunkReader(chunks)
            return
        with self._getter.get(self.dav_url(path)) as response:
            if response.status >= 400:
                raise_for(response.as_httpx(), "download")
            yield response.length, response

    @contextmanager
    def open_archive(self, folder: str, names: list[str]) -> Iterator[bulk.Readable | None]:
        """GET ``names`` of ``folder`` as one tar stream (Nextcloud 30's folder download):
        yields a reader, or None when this server (or this client's setup) has no such
        download, so the caller fetches them one by one."""
        if self._getter is None:
            yield None
            return
        query = "?files=" + quote(json.dumps(names, separators=(",", ":")), safe="")
        headers = {"Accept": "application/x-tar"}
        with self._getter.get(self.dav_url(folder) + query, headers) as response:
            kind = response.headers.get("Content-Type", "").split(";")[0].strip()
            if response.status == 200 and kind == "application/x-tar":
                yield response
                return
            if response.status == 401:
                raise_for(response.as_httpx(), "archive download")
            yield None  # anything else: the files one by one say what is wrong, if anything

    def delete(self, path: str, token: str | None = None) -> None:
        headers = {TOKEN_HEADER: token} if token else {}
        self._request("DELETE", self.dav_url(path), "delete", headers=headers)

    def move(self, source: str, destination: str, token: str | None = None) -> None:
        headers = {"Destination": self.base_url + self.dav_url(destination), "Overwrite": "F"}
        if token:
            headers[TOKEN_HEADER] = token
        self._request("MOVE", self.dav_url(source), "move", headers=headers)

    # --- public link (anonymous file drop) ------------------------------------------------

    def public_folder_metadata(self, share_token: str) -> tuple[int, str, str]:
        """(file id, metadata JSON, signature) of a link share's folder, via public WebDAV."""
        url = f"/public.php/dav/files/{quote(share_token, safe='')}/"
        body = (
            '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" '
            'xmlns:nc="http://nextcloud.org/ns"><d:prop><oc:fileid/><nc:e2ee-metadata/>'
            "<nc:e2ee-metadata-signature/></d:prop></d:propfind>"
        )
        response = self._request(
            "PROPFIND", url, "file drop link", headers={"Depth": "0"}, content=body
        )
        try:
            tree = ElementTree.fromstring(response.content)  # noqa: S314
        except ElementTree.ParseError:
            raise ServerError("file drop link: malformed XML") from None
        found = {
            child.tag: text(child) for prop in tree.iter(f"{{{DAV_NS}}}prop") for child in prop
        }
        file_id = found.get(f"{{{OC_NS}}}fileid", "")
        metadata = found.get(f"{{{NC_NS}}}e2ee-metadata", "")
        if not file_id.isdigit() or not metadata:
            raise ServerError("file drop link: the server gave no folder metadata")
        return int(file_id), metadata, found.get(f"{{{NC_NS}}}e2ee-metadata-signature", "")

    def public_upload(
        self, share_token: str, name: str, body: Iterable[bytes], length: int
    ) -> None:
        url = f"/public.php/dav/files/{quote(share_token, safe='')}/{quote(name, safe='')}"
        headers = {"Content-Length": str(length), "Content-Type": "application/octet-stream"}
        self._request("PUT", url, "file drop upload", headers=headers, content=body)


def _chunks(response: httpx.Response) -> Iterator[bytes]:
    try:
        yield from response.iter_bytes()
    except httpx.HTTPError as exc:
        raise ServerError(f"download: connection broke ({type(exc).__name__})") from None


def _file_id(response: httpx.Response, what: str) -> int:
    header = response.headers.get("OC-FileId", "")
    # "<8-digit id><instance id>" (Nextcloud's format)
    if len(header) < 8 or not header[:8].isdigit():
        raise ServerError(f"{what}: the server sent no file id")
    return int(header[:8])


def _share(data: Any) -> Share:
    if not isinstance(data, dict):
        raise ServerError("share: malformed answer")
    try:
        return Share(
            share_id=int(data["id"]),
            share_type=int(data["share_type"]),
            share_with=data.get("share_with"),
            path=str(data.get("path") or ""),
            token=data.get("token") or None,
            file_id=int(data.get("file_source") or data.get("item_source") or ""),
            permissions=int(data.get("permissions", 0)),
        )
    except (KeyError, TypeError, ValueError):
        raise ServerError("share: malformed answer") from None
