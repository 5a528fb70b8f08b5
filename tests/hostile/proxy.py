"""The malicious server: a real HTTP hop in front of the real stack.

:class:`HostileProxy` listens on a free 127.0.0.1 port (a ``ThreadingHTTPServer`` thread in the
test process) and forwards every request to the real gunicorn stack over a fresh HTTP/1.1
connection. Between the two it runs the rules a test installs:

* a *request rule* sees the :class:`Exchange` before it is forwarded and may edit the request
  or answer it itself (``exchange.respond(...)``: the real server never sees it);
* a *response rule* sees the exchange after the real server answered and may rewrite status,
  headers and body (capabilities, server key, certificates, private key, metadata and its
  signature header, lock answers, PROPFIND, blobs, shares, file drops: everything is bytes).

Every exchange is appended to :attr:`HostileProxy.archive` (request and response, bodies
included): the server's "keeps every version forever" power, used by replay and rollback
attacks and by the leak oracle. Bodies are buffered whole; the tests move small files.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
}
E2EE_API = "/ocs/v2.php/apps/end_to_end_encryption/api/v2"
SIGNATURE = "X-NC-E2EE-SIGNATURE"


@dataclass
class Exchange:
    method: str
    target: str  # path plus query, as the client sent it
    request_headers: dict[str, str]
    request_body: bytes
    status: int = 0
    reason: str = ""
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes = b""
    answered_by_proxy: bool = False

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)

    def request_form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.request_body.decode("utf-8", "replace")).items()}

    def header(self, name: str) -> str | None:
        for key, value in self.response_headers:
            if key.lower() == name.lower():
                return value
        return None

    def set_header(self, name: str, value: str | None) -> None:
        self.response_headers = [
            (k, v) for k, v in self.response_headers if k.lower() != name.lower()
        ]
        if value is not None:
            self.response_headers.append((name, value))

    def respond(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        """Answer without asking the real server (from a request rule)."""
        self.status, self.reason, self.response_body = status, "", body
        self.response_headers = list((headers or {}).items())
        self.answered_by_proxy = True

    # --- OCS JSON helpers -------------------------------------------------------------------

    def ocs_data(self) -> Any:
        return json.loads(self.response_body)["ocs"]["data"]

    def set_ocs_data(self, data: Any) -> None:
        body = json.loads(self.response_body) if self.response_body else {"ocs": {"meta": {}}}
        body["ocs"]["data"] = data
        self.response_body = json.dumps(body).encode()
        self.set_header("Content-Type", "application/json; charset=utf-8")


Rule = Callable[[Exchange], None]


class HostileProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.archive: list[Exchange] = []
        self.request_rules: list[Rule] = []
        self.response_rules: list[Rule] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return bytes(out)
                        out += self.rfile.read(size)
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                exchange = Exchange(
                    method=self.command,
                    target=self.path,
                    request_headers={k: v for k, v in self.headers.items()},
                    request_body=self._body(),
                )
                proxy.forward(exchange)
                self.send_response(exchange.status, exchange.reason or None)
                for key, value in exchange.response_headers:
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(exchange.response_body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(exchange.response_body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle  # noqa: N815
            do_PROPFIND = do_MKCOL = do_MOVE = do_COPY = do_PROPPATCH = _handle  # noqa: N815
            do_LOCK = do_UNLOCK = do_OPTIONS = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HostileProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- forwarding -------------------------------------------------------------------------

    def forward(self, exchange: Exchange) -> None:
        with self._lock:
            request_rules = list(self.request_rules)
            response_rules = list(self.response_rules)
        for rule in request_rules:
            rule(exchange)
            if exchange.answered_by_proxy:
                break
        if not exchange.answered_by_proxy:
            conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=300)
            try:
                headers = {
                    k: v for k, v in exchange.request_headers.items() if k.lower() not in HOP_BY_HOP
                }
                headers["Content-Length"] = str(len(exchange.request_body))
                conn.request(exchange.method, exchange.target, exchange.request_body, headers)
                response = conn.getresponse()
                exchange.status, exchange.reason = response.status, response.reason
                exchange.response_headers = list(response.getheaders())
                exchange.response_body = response.read()
            finally:
                conn.close()
        for rule in response_rules:
            rule(exchange)
        with self._lock:
            self.archive.append(exchange)

    # --- rules ------------------------------------------------------------------------------

    def on_request(self, rule: Rule) -> Rule:
        with self._lock:
            self.request_rules.append(rule)
        return rule

    def on_response(self, rule: Rule) -> Rule:
        with self._lock:
            self.response_rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.request_rules.clear()
            self.response_rules.clear()

    @contextmanager
    def attack(
        self, *, response: Rule | None = None, request: Rule | None = None
    ) -> Iterator[HostileProxy]:
        """Install rules for the block only (the honest twin runs outside it)."""
        if response is not None:
            self.on_response(response)
        if request is not None:
            self.on_request(request)
        try:
            yield self
        finally:
            with self._lock:
                if response is not None:
                    self.response_rules.remove(response)
                if request is not None:
                    self.request_rules.remove(request)

    # --- the archive ------------------------------------------------------------------------

    def mark(self) -> int:
        """An index into the archive: "everything after this point"."""
        with self._lock:
            return len(self.archive)

    def since(self, mark: int) -> list[Exchange]:
        with self._lock:
            return list(self.archive[mark:])

    def uploads(self, since: int = 0) -> list[Exchange]:
        """Requests that carried data to the server."""
        return [
            e
            for e in self.since(since)
            if e.method in ("PUT", "POST", "MKCOL", "MOVE", "PROPPATCH") or e.request_body
        ]

    def metadata_uploads(self, since: int = 0) -> list[tuple[int, dict[str, Any], str]]:
        """(folder id, outer document, signature) of every metadata POST/PUT the server got."""
        return [m for e in self.since(since) if (m := metadata_upload(e)) is not None]

    def metadata_served(self, file_id: int, since: int = 0) -> list[tuple[str, str]]:
        """(document text, signature) of every metadata GET answered for ``file_id``."""
        out = []
        for e in self.since(since):
            if (
                e.method == "GET"
                and e.path == f"{E2EE_API}/meta-data/{file_id}"
                and e.status == 200
            ):
                out.append((e.ocs_data()["meta-data"], e.header(SIGNATURE) or ""))
        return out

    def requests_to(self, method: str, path_part: str, since: int = 0) -> list[Exchange]:
        return [e for e in self.since(since) if e.method == method and path_part in e.path]


def metadata_upload(e: Exchange) -> tuple[int, dict[str, Any], str] | None:
    """(folder id, outer document, signature) if ``e`` uploaded folder metadata."""
    if e.method not in ("POST", "PUT") or not e.path.startswith(f"{E2EE_API}/meta-data/"):
        return None
    rest = e.path.removeprefix(f"{E2EE_API}/meta-data/")
    text = e.request_form().get("metaData") if rest.isdigit() else None
    if not text:
        return None
    return int(rest), json.loads(text), e.request_headers.get(SIGNATURE, "")


# --- ready-made rules ------------------------------------------------------------------------


def is_metadata_get(exchange: Exchange, file_id: int | None = None) -> bool:
    if exchange.method != "GET" or not exchange.path.startswith(f"{E2EE_API}/meta-data/"):
        return False
    rest = exchange.path.removeprefix(f"{E2EE_API}/meta-data/")
    return rest.isdigit() and (file_id is None or int(rest) == file_id)


def serve_metadata(file_id: int, text: str, signature: str) -> Rule:
    """Answer GET meta-data/{file_id} with this document and signature (replay, forgery)."""

    def rule(exchange: Exchange) -> None:
        if is_metadata_get(exchange, file_id):
            exchange.status = 200
            exchange.set_ocs_data({"meta-data": text})
            exchange.set_header(SIGNATURE, signature)

    return rule


def edit_metadata(file_id: int, edit: Callable[[dict[str, Any]], Any]) -> Rule:
    """Rewrite the served outer document of ``file_id`` in place (the signature stays)."""

    def rule(exchange: Exchange) -> None:
        if is_metadata_get(exchange, file_id) and exchange.status == 200:
            doc = json.loads(exchange.ocs_data()["meta-data"])
            result = edit(doc)
            text = result if isinstance(result, str) else json.dumps(doc)
            exchange.set_ocs_data({"meta-data": text})

    return rule


def edit_public_keys(edit: Callable[[dict[str, str]], None]) -> Rule:
    def rule(exchange: Exchange) -> None:
        if exchange.method == "GET" and exchange.path == f"{E2EE_API}/public-key":
            data = exchange.ocs_data()
            keys = dict(data.get("public-keys") or {})
            edit(keys)
            exchange.set_ocs_data({**data, "public-keys": keys})

    return rule


def edit_ocs(method: str, path: str, edit: Callable[[Any], Any]) -> Rule:
    def rule(exchange: Exchange) -> None:
        if exchange.method == method and exchange.path == path and exchange.status < 400:
            exchange.set_ocs_data(edit(exchange.ocs_data()))

    return rule


def edit_body(method: str, path_part: str, edit: Callable[[bytes], bytes]) -> Rule:
    def rule(exchange: Exchange) -> None:
        if exchange.method == method and path_part in exchange.path and exchange.status < 400:
            exchange.response_body = edit(exchange.response_body)

    return rule
