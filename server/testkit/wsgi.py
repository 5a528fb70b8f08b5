"""The ephemeral stack's WSGI callable: the real one (server.wsgi) behind a fault injector.

    gunicorn server.testkit.wsgi:application      # only `e2ee-stack serve --ephemeral` does this

The injector sits in front of Django and WebDAV alike, so the E2EE views and the WebDAV provider
never know about faults: an injected 423 or 500 is answered here without calling them (nothing
stored), a dropped upload reaches WebDAV as a body that breaks off, a delay sleeps first.
Every fault that fires is appended to the audit log (`testkit.fault_fired`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "server.settings")

from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.db import close_old_connections  # noqa: E402

from server.wsgi import application as stack_application  # noqa: E402

from .faults import (  # noqa: E402
    LOCK_PATH,
    TESTKIT_PREFIX,
    Fault,
    FaultStore,
    basic_user,
    fault_store,
    testkit_enabled,
)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class DroppedConnection(ConnectionResetError):
    """Raised into the WebDAV PUT when an injected drop cuts its body off."""


class _DroppingInput:
    """wsgi.input that lets `after_bytes` through, then closes the client's socket."""

    def __init__(self, inner: Any, after_bytes: int, sock: socket.socket | None) -> None:
        self._inner, self._left, self._sock = inner, after_bytes, sock

    def _drop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        raise DroppedConnection("injected fault: the connection was dropped mid-upload")

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            self._drop()
        want = self._left if size is None or size < 0 else min(size, self._left)
        data = self._inner.read(want)
        if not data:  # the whole body was shorter than after_bytes: drop at its end
            self._drop()
        self._left -= len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


def _ocs_error(
    environ: dict[str, Any], start_response: Callable[..., Any], status: int, message: str
) -> list[bytes]:
    """The OCS envelope the real views send for this status (JSON or XML, v1 or v2)."""
    from server.ocs import OCSXMLRenderer, envelope

    path = environ.get("PATH_INFO", "")
    body_data, sent = envelope(
        data={"message": message},
        http_status=status,
        message=message,
        v1=path.startswith("/ocs/v1.php"),
    )
    wants_json = "format=json" in environ.get("QUERY_STRING", "") or "json" in environ.get(
        "HTTP_ACCEPT", ""
    )
    if wants_json:
        body, content_type = json.dumps(body_data).encode(), "application/json"
    else:
        body, content_type = OCSXMLRenderer().render(body_data), "application/xml; charset=utf-8"
    reason = {200: "OK", 423: "Locked", 500: "Internal Server Error"}[sent]
    start_response(
        f"{sent} {reason}", [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    )
    return [body]


def _audit_fired(fault: Fault, environ: dict[str, Any], user: str | None) -> None:
    """Ids and kinds only: the path of a WebDAV request may carry a folder's clear name."""
    from server.audit.services import audit_record

    try:
        audit_record(
            actor="testkit",
            action="testkit.fault_fired",
            target=f"fault:{fault.id}",
            outcome="success",
            source_address=environ.get("REMOTE_ADDR") or None,
            details={
                "fault": fault.fault,
                "method": environ.get("REQUEST_METHOD", ""),
                "user": (user or "")[:150],
            },
        )
    finally:
        close_old_connections()  # this thread's connection ends with the request, as in Django


class FaultInjector:
    def __init__(self, app: WSGIApp, store: FaultStore) -> None:
        self.app, self.store = app, store

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if TESTKIT_PREFIX.match(path):  # the control endpoint itself never suffers a fault
            return self.app(environ, start_response)
        user = basic_user(environ)
        fault = self.store.take(environ.get("REQUEST_METHOD", ""), path, user)
        if fault is None:
            return self.app(environ, start_response)
        _audit_fired(fault, environ, user)
        if fault.fault == "delay":
            time.sleep(fault.seconds)
        elif fault.fault == "lock-423":
            assert LOCK_PATH.match(path)
            return _ocs_error(
                environ,
                start_response,
                423,
                "The folder is locked by another client (injected fault)",
            )
        elif fault.fault == "metadata-500":
            return _ocs_error(
                environ,
                start_response,
                500,
                "Internal server error (injected fault): nothing was stored",
            )
        elif fault.fault == "drop-upload":
            environ["wsgi.input"] = _DroppingInput(
                environ["wsgi.input"], fault.after_bytes, environ.get("gunicorn.socket")
            )
        return self.app(environ, start_response)


def build(app: WSGIApp = stack_application) -> FaultInjector:
    if not testkit_enabled():
        raise ImproperlyConfigured(
            "server.testkit.wsgi serves ephemeral stacks only (E2EE_TESTKIT=1); "
            "serve server.wsgi:application otherwise"
        )
    return FaultInjector(app, fault_store())


application = build()
