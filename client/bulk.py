"""Response bodies as readers (``readinto``), and downloads read straight off the socket.

httpx parses a body through h11 in 64 KiB pieces and tops out near 450 MB/s on this machine
kind, one core busy; http.client's ``readinto`` lands the bytes in the caller's 1 MiB buffer
with no intermediate copy and keeps up with curl (~1 GB/s; bench/client_transfer.py). For
small files it costs a third of httpx's CPU per request (0.27 vs 0.71 ms), which is what a
sync of many files is bound by. So downloads take this path; every other request, and
downloads under a setup httpx would treat differently (an injected transport, a proxy from
the environment), stay on the one httpx client.

Same trust as httpx: its SSL context (``httpx.create_ssl_context``), the same headers and
timeout, no redirects. The Authorization header never appears in an exception or a repr.
"""

from __future__ import annotations

import base64
import http.client
import ssl
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from client.errors import ServerError

#: Downloads at least this large (by the listing's size hint) write from a disk thread.
BULK_MIN = 4 << 20


class Readable(Protocol):
    def readinto(self, buffer: memoryview, /) -> int: ...


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
    return bool(urllib.request.proxy_bypass(parts.hostname or ""))


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


class Getter:
    """GETs over http.client, one keep-alive connection per thread (sync's download threads
    each reuse theirs). A reused connection the server has closed meanwhile is retried once
    on a fresh one (GET is idempotent); a body left unread closes its connection."""

    def __init__(self, base_url: str, headers: Mapping[str, str], *, timeout: float) -> None:
        parts = urlsplit(base_url)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname or "", parts.port
        self._prefix = parts.path.rstrip("/")
        self._headers = dict(headers)
        self._timeout = timeout
        self._context: ssl.SSLContext | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[tuple[threading.Thread, http.client.HTTPConnection]] = []

    def __repr__(self) -> str:
        return f"Getter({self._host!r}, {self._port!r})"

    def _connect(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._https:
            with self._lock:
                self._context = self._context or httpx.create_ssl_context()
            connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=self._context
            )
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        with self._lock:  # close what finished threads left behind
            for thread, old in [item for item in self._open if not item[0].is_alive()]:
                old.close()
                self._open.remove((thread, old))
            self._open.append((threading.current_thread(), connection))
        self._local.connection = connection
        return connection

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        self._local.connection = None

    def close(self) -> None:
        with self._lock:
            for _, connection in self._open:
                connection.close()
            self._open.clear()

    @contextmanager
    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Iterator[BulkResponse]:
        """GET ``path`` (with its query) below the base URL's own path."""
        connection = getattr(self._local, "connection", None)
        reused = connection is not None
        while True:
            if connection is None:
                connection = self._connect()
            try:
                connection.request(
                    "GET", self._prefix + path, headers={**self._headers, **(headers or {})}
                )
                raw = connection.getresponse()
                break
            except (OSError, http.client.HTTPException) as exc:
                self._drop(connection)
                connection = None
                if not (reused and isinstance(exc, _STALE)):
                    kind = type(exc).__name__
                    raise ServerError(f"download: connection failed ({kind})") from None
                reused = False
        response = BulkResponse(raw)
        try:
            yield response
        finally:
            if not raw.isclosed():  # not read to its end: the connection cannot be reused
                self._drop(connection)


#: How a kept-alive connection the server closed meanwhile shows up on the next request.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
