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


def pep3333_path(app):
    """httpx's WSGITransport puts the decoded path into PATH_INFO as a plain str; PEP 3333 (and
    gunicorn) carry the UTF-8 bytes as latin-1 characters. Translate, so non-ASCII names reach
    the app exactly as they do in production."""

    def wrapped(environ, start_response):
        environ["PATH_INFO"] = environ["PATH_INFO"].encode("utf-8").decode("latin-1")
        return app(environ, start_response)

    return wrapped


@pytest.fixture
def wsgi_app(db):
    """The real WSGI callable (Django + WebDAV) for in-process HTTP.

    Like Django's own test client, keep the test's connection open across requests: the handler
    would otherwise close it when a request ends and lose the test transaction. Django's test
    client reconnects those handlers after each of its requests, so disconnect on every call."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from server.wsgi import application

    app = pep3333_path(application)

    def keep_connection(environ, start_response):  # type: ignore[no-untyped-def]
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        return app(environ, start_response)

    try:
        yield keep_connection
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def wsgi_client(wsgi_app):
    with httpx.Client(
        transport=httpx.WSGITransport(app=wsgi_app), base_url="http://testserver"
    ) as client:
        yield client


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


# SeaweedFS fixtures and the S3 pass (E2EE_TEST_BLOB_STORE=s3); imported last: it uses require().
from tests.s3.plugin import (  # noqa: E402, F401
    _s3_pass_environment,
    _s3_pass_settings,
    s3_blob_settings,
    seaweedfs,
)
