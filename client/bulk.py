"""Response bodies as readers (``readinto``), and large GETs read straight off the socket.

httpx parses a body through h11 in 64 KiB pieces and tops out near 450 MB/s on this machine
kind, one core busy; http.client's ``readinto`` lands the bytes in the caller's 1 MiB buffer
with no intermediate copy and keeps up with curl (~1 GB/s; bench/client_transfer.py). Only
large downloads take that path; everything else, and any setup httpx would treat differently
(an injected transport, a proxy from the environment), stays on the one httpx client.

Same trust as httpx: its SSL context (``httpx.create_ssl_context``), the same headers and
timeout, no redirects. The Authorization header never appears in an exception or a repr.
"""

from __future__ import annotations

import base64
import http.client
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx

from client.errors import ServerError

#: Bodies at least this large (by the listing's size hint) take the http.client path.
BULK_MIN = 4 << 20


class ChunkReader:
    """``readinto`` over an iterator of chunks (an httpx body), one copy per chunk."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._current = memoryview(b"")

    def readinto(self, buffer: memoryview) -> int:
        while not self._current:
            nxt = next(self._chunks, None)
            if nxt is None:
                return 0
            self._current = memoryview(nxt)
        n = min(len(buffer), len(self._current))
        buffer[:n] = self._current[:n]
        self._current = self._current[n:]
        return n


def basic_auth(user: str, password: str) -> str:
    """The Authorization value httpx sends for ``auth=(user, password)`` (UTF-8)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def usable(base_url: str) -> bool:
    """False when httpx would send requests for this URL through a proxy from the environment."""
    parts = urlsplit(base_url)
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return True
    return bool(urllib.request.proxy_bypass_environment(parts.hostname or "", proxies))


class BulkResponse:
    """Status, headers and a ``readinto`` body; connection failures become ServerError."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = httpx.Headers(response.getheaders())
        length = self.headers.get("Content-Length")
        self.length = int(length) if length and length.isdigit() else None

    def readinto(self, buffer: memoryview) -> int:
        try:
            return self._response.readinto(buffer)
        except (OSError, http.client.HTTPException) as exc:
            raise ServerError(f"download: connection broke ({type(exc).__name__})") from None

    def as_httpx(self) -> httpx.Response:
        """The status, headers and (at most 64 KiB of) body, for the usual error mapping."""
        try:
            body = self._response.read(1 << 16)
        except (OSError, http.client.HTTPException):
            body = b""
        headers = {k: v for k, v in self.headers.items() if k.lower() != "content-length"}
        return httpx.Response(self.status, headers=headers, content=body)


@contextmanager
def get(
    base_url: str, path: str, headers: Mapping[str, str], *, timeout: float
) -> Iterator[BulkResponse]:
    """GET ``path`` below ``base_url``'s own path on a fresh connection, closed afterwards
    (bulk bodies are few and large: the handshake is noise next to them)."""
    parts = urlsplit(base_url)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=httpx.create_ssl_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        try:
            connection.request("GET", parts.path.rstrip("/") + path, headers=dict(headers))
            response = BulkResponse(connection.getresponse())
        except (OSError, http.client.HTTPException) as exc:
            raise ServerError(f"download: connection failed ({type(exc).__name__})") from None
        yield response
    finally:
        connection.close()
