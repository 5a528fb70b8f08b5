"""In-process WebDAV fixtures: the real WSGI callable (server.wsgi.application) via httpx's
WSGITransport, real files in a per-test blob dir, the test database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.live import live_stack, make_live_stack  # noqa: F401 - gunicorn fixtures for this package

PASSWORD = "correct horse battery staple"
FILES = "/remote.php/dav/files"


@pytest.fixture
def blob_dir(settings, tmp_path: Path) -> Path:
    settings.BLOB_DIR = tmp_path / "blobs"
    return settings.BLOB_DIR


@pytest.fixture
def application(wsgi_app, blob_dir):  # type: ignore[no-untyped-def]
    return wsgi_app


@pytest.fixture
def dav_client(application) -> Iterator[Callable[..., httpx.Client]]:  # type: ignore[no-untyped-def]
    """dav_client(uid, password) -> an httpx client with Basic auth (None: no credentials)."""
    clients: list[httpx.Client] = []

    def make(uid: str | None = None, password: str | None = None) -> httpx.Client:
        auth = None if uid is None else (uid, password or PASSWORD)
        client = httpx.Client(transport=httpx.WSGITransport(app=application),
                              base_url="http://testserver", auth=auth)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def alice(make_user, dav_client):  # type: ignore[no-untyped-def]
    make_user("alice", PASSWORD)
    return dav_client("alice", PASSWORD)


@pytest.fixture
def bob(make_user, dav_client):  # type: ignore[no-untyped-def]
    make_user("bob", PASSWORD)
    return dav_client("bob", PASSWORD)
