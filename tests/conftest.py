"""Shared fixtures. Services the suite needs are required in CI (env CI set): there a missing
service fails the test instead of skipping it."""

import base64
import os

import httpx
import pytest


def require(available: bool, what: str) -> None:
    """Skip locally when `what` is missing; fail in CI, where nothing may be skipped."""
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} is not available here")


def basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(autouse=True)
def _blobs_in_tmp(settings, tmp_path):
    """Every test gets its own blob folder, never the checkout's ./var."""
    settings.BLOB_DIR = tmp_path / "blobs"


@pytest.fixture
def wsgi_client(db):
    """HTTP through the real WSGI callable (Django + WebDAV), in-process.

    Like Django's own test client, keep the test's connection open across requests: the handler
    would otherwise close it when a request ends and lose the test transaction."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from server.wsgi import application

    with httpx.Client(
        transport=httpx.WSGITransport(app=application), base_url="http://testserver"
    ) as client:
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            yield client
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


@pytest.fixture
def make_user(db):
    from django.contrib.auth import get_user_model

    def make(uid: str = "alice", password: str = "correct horse battery staple"):
        return get_user_model().objects.create_user(username=uid, password=password)

    return make


@pytest.fixture
def app_password(db):
    from server.accounts.services import app_password_create

    def make(user, name: str = "test device") -> str:
        return app_password_create(user=user, name=name)[1]

    return make
