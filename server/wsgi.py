"""The one WSGI callable: WebDAV paths go to WsgiDAV, everything else to Django.

gunicorn server.wsgi:application
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "server.settings")

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.core.signals import request_finished, request_started  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

# Sets Django up (apps, models) before anything below imports models.
django_application = get_wsgi_application()

from webdav.app import PREFIXES, build_webdav_app  # noqa: E402

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# Things a well-formed WebDAV path never carries, seen in the raw request target before any
# decoding: encoded slashes and backslashes (a name cannot contain either, so "%2F" can only be
# an attempt to smuggle a separator), encoded NUL.
_RAW_FORBIDDEN = ("%2f", "%5c", "%00")


def _is_dav_path(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in PREFIXES)


def _bad_request(start_response: Callable[..., Any], why: str) -> list[bytes]:
    body = f"400 Bad Request: {why}\n".encode()
    start_response("400 Bad Request", [("Content-Type", "text/plain; charset=utf-8"),
                                       ("Content-Length", str(len(body)))])
    return [body]


def _path_problem(environ: dict[str, Any]) -> str | None:
    raw = (environ.get("RAW_URI") or environ.get("REQUEST_URI") or "").split("?", 1)[0].lower()
    if any(token in raw for token in _RAW_FORBIDDEN):
        return "encoded separators are not allowed in paths"
    path = environ.get("PATH_INFO", "")
    if "\x00" in path or "\\" in path:
        return "forbidden character in path"
    if any(segment in (".", "..") for segment in path.split("/")):
        return "relative path segments are not allowed"
    destination = environ.get("HTTP_DESTINATION", "").lower()
    if any(token in destination for token in _RAW_FORBIDDEN) or "/../" in destination + "/" \
            or "/./" in destination + "/":
        return "bad Destination header"
    return None


class _DjangoRequestScope:
    """Wraps a WsgiDAV response so Django's per-request signals fire around it, exactly as for
    Django's own views: stale DB connections are closed and per-request state is reset."""

    def __init__(self, iterable: Iterable[bytes]) -> None:
        self._iterable = iterable

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._iterable)

    def close(self) -> None:
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        finally:
            request_finished.send(sender=WSGIHandler)


class Dispatcher:
    def __init__(self, django_app: WSGIApp, webdav_app: WSGIApp) -> None:
        self.django_app = django_app
        self.webdav_app = webdav_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if not _is_dav_path(path):
            return self.django_app(environ, start_response)
        problem = _path_problem(environ)
        if problem is not None:
            return _bad_request(start_response, problem)
        request_started.send(sender=WSGIHandler, environ=environ)
        try:
            return _DjangoRequestScope(self.webdav_app(environ, start_response))
        except BaseException:
            request_finished.send(sender=WSGIHandler)
            raise


application = Dispatcher(django_application, build_webdav_app())
