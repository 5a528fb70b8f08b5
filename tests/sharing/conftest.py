"""An owner (alice), a sharee (bob) and an outsider (mallory), each with an app password."""

import pytest

from tests.e2ee.helpers import headers

PASSWORD = "correct horse battery staple"
SHARES = "/ocs/v2.php/apps/files_sharing/api/v1/shares"
OCS = {"OCS-APIRequest": "true"}


@pytest.fixture
def owner(make_user, app_password):
    return headers("alice", app_password(make_user("alice", PASSWORD)))


@pytest.fixture
def sharee(make_user, app_password):
    return headers("bob", app_password(make_user("bob", PASSWORD)))


@pytest.fixture
def outsider(make_user, app_password):
    return headers("mallory", app_password(make_user("mallory", PASSWORD)))


def data(response):
    return response.json()["ocs"]["data"]


def share(client, who, path, share_with="bob", permissions=None, share_type=0):
    body = {"path": path, "shareType": str(share_type)}
    if share_with is not None:
        body["shareWith"] = share_with
    if permissions is not None:
        body["permissions"] = str(permissions)
    return client.post(f"{SHARES}?format=json", headers=who, data=body)
