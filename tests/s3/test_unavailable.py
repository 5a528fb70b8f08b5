"""An object store that refuses the stack's requests is a 503 with a message, not a 500, and
loses nothing (the same request with working credentials is the positive twin)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.s3

PATH = "/remote.php/dav/files/alice/note.txt"


@pytest.fixture
def alice_auth(make_user, app_password):
    return ("alice", app_password(make_user("alice")))


def test_a_refusing_store_answers_503_and_keeps_the_previous_version(
    wsgi_client, alice_auth, settings, s3_blob_settings
):
    assert wsgi_client.put(PATH, content=b"first", auth=alice_auth).status_code == 201  # twin
    working = dict(settings.BLOB_S3)
    settings.BLOB_S3 = {**working, "SECRET_ACCESS_KEY": "wrong-" + "x" * 30}
    refused = wsgi_client.put(PATH, content=b"second", auth=alice_auth)
    assert refused.status_code == 503 and "blob store is unavailable" in refused.text
    assert "wrong-" not in refused.text
    assert wsgi_client.get(PATH, auth=alice_auth).status_code == 503
    settings.BLOB_S3 = working
    assert wsgi_client.get(PATH, auth=alice_auth).content == b"first"
