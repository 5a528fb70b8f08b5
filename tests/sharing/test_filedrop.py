"""Secure file drop (PROTOCOL.md §1.10) end to end over HTTP through the real WSGI app: an
anonymous uploader with a file-drop link PUTs into /public.php/dav/files/<token>/ and adds
entries with PUT meta-data/{id}/filedrop. Every documented status code, with twins."""

import json

import pytest

from server.e2ee.models import FolderMetadata
from server.files.models import Node
from tests.e2ee.helpers import API, v2_document
from tests.e2ee.test_folders_locks_metadata import (
    committed_folder,
    lock,
    mkcol,
    token_of,
    unlock,
)
from tests.sharing.conftest import OCS, data, share

PUBLIC = "/public.php/dav/files"
BROWSER = {**OCS, "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}
ENTRY = {
    "ciphertext": "Y3Q=",
    "nonce": "bm9uY2U=",
    "authenticationTag": "dGFn",
    "users": [{"userId": "alice", "encryptedFiledropKey": "a2V5"}],
}


def _link(client, owner, path="/Secret", permissions=4):
    response = share(client, owner, path, share_with=None, permissions=permissions, share_type=3)
    assert response.status_code == 200, response.text
    return data(response)["token"]


def drop(client, folder, entries, *, token=None, who=BROWSER):
    body = {"filedrop": json.dumps(entries)}
    if token:
        body["shareToken"] = token
    return client.put(f"{API}/meta-data/{folder}/filedrop?format=json", headers=who, data=body)


def test_file_drop_end_to_end(wsgi_client, owner):
    folder = committed_folder(wsgi_client, owner)
    token = _link(wsgi_client, owner)
    name = "7f6b3e0c5d2a4f1e9b8c7d6e5f4a3b2c"
    response = wsgi_client.put(f"{PUBLIC}/{token}/{name}", headers=BROWSER, content=b"ct||tag")
    assert response.status_code == 201, response.text
    assert Node.objects.get(parent_id=folder, name=name).owner.username == "alice"
    response = drop(wsgi_client, folder, {name: ENTRY}, token=token)
    assert response.status_code == 200, response.text
    assert data(response)["filedrop"] == {name: ENTRY}
    stored = json.loads(FolderMetadata.objects.get(node_id=folder).document)
    assert stored["filedrop"] == {name: ENTRY}
    assert stored["metadata"] == json.loads(v2_document())["metadata"]  # the rest untouched
    # a second drop merges
    drop(wsgi_client, folder, {"other": ENTRY}, token=token)
    stored = json.loads(FolderMetadata.objects.get(node_id=folder).document)
    assert sorted(stored["filedrop"]) == sorted([name, "other"])
    # the owner reads the committed metadata with its filedrop map at once
    got = wsgi_client.get(f"{API}/meta-data/{folder}?format=json", headers=owner)
    assert json.loads(data(got)["meta-data"])["filedrop"][name] == ENTRY


def test_non_ascii_drop_name(wsgi_client, owner):
    folder = committed_folder(wsgi_client, owner)
    token = _link(wsgi_client, owner)
    response = wsgi_client.put(f"{PUBLIC}/{token}/Grüße.bin", headers=BROWSER, content=b"x")
    assert response.status_code == 201
    assert Node.objects.filter(parent_id=folder, name="Grüße.bin").exists()


def test_public_dav_is_create_only(wsgi_client, owner):
    folder = committed_folder(wsgi_client, owner)
    token = _link(wsgi_client, owner)
    base = f"{PUBLIC}/{token}"
    assert wsgi_client.put(f"{base}/a", headers=BROWSER, content=b"1").status_code == 201
    assert wsgi_client.put(f"{base}/a", headers=BROWSER, content=b"2").status_code == 403
    assert wsgi_client.get(f"{base}/a", headers=BROWSER).status_code == 404
    assert wsgi_client.delete(f"{base}/a", headers=BROWSER).status_code in (403, 404)
    assert wsgi_client.request("MKCOL", f"{base}/d", headers=BROWSER).status_code == 403
    listing = wsgi_client.request(
        "PROPFIND", f"{base}/", headers={**BROWSER, "X-E2EE-SUPPORTED": "true", "Depth": "1"}
    )
    assert listing.status_code == 207 and "/a<" not in listing.text
    assert Node.objects.get(parent_id=folder, name="a").size == 1
    assert (
        wsgi_client.put(f"{PUBLIC}/wrongtoken/b", headers=BROWSER, content=b"x").status_code == 404
    )


def test_public_dav_needs_create_permission(wsgi_client, owner):
    committed_folder(wsgi_client, owner)
    token = _link(wsgi_client, owner, permissions=1)
    assert wsgi_client.put(f"{PUBLIC}/{token}/a", headers=BROWSER, content=b"1").status_code == 403


def test_filedrop_status_codes(wsgi_client, owner, sharee, outsider):
    folder = committed_folder(wsgi_client, owner)
    plain = mkcol(wsgi_client, owner, "Plain")
    token = _link(wsgi_client, owner)
    read_only = _link(wsgi_client, owner, permissions=1)
    plain_token = _link(wsgi_client, owner, path="/Plain")
    assert drop(wsgi_client, folder, {"u": ENTRY}).status_code == 400  # anonymous, no token
    assert drop(wsgi_client, folder, {"u": ENTRY}, token=read_only).status_code == 403
    assert drop(wsgi_client, plain, {"u": ENTRY}, token=plain_token).status_code == 403
    assert drop(wsgi_client, plain, {"u": ENTRY}, token=token).status_code == 403  # outside
    assert drop(wsgi_client, folder, {"u": ENTRY}, token="nope").status_code == 404
    assert drop(wsgi_client, folder, {"u": ENTRY}, who=outsider).status_code == 404
    bad = wsgi_client.put(
        f"{API}/meta-data/{folder}/filedrop?format=json",
        headers=BROWSER,
        data={"filedrop": "[1]", "shareToken": token},
    )
    assert bad.status_code == 400
    lock_token = token_of(lock(wsgi_client, owner, folder, counter=2))
    assert drop(wsgi_client, folder, {"u": ENTRY}, token=token).status_code == 412
    unlock(wsgi_client, owner, folder, lock_token, abort=True)
    assert drop(wsgi_client, folder, {"u": ENTRY}, token=token).status_code == 200  # twin
    assert drop(wsgi_client, folder, {"v": ENTRY}, who=owner).status_code == 200  # signed in


@pytest.mark.parametrize("permissions", [4, 1])
def test_sharee_filedrop_needs_create(wsgi_client, owner, sharee, permissions):
    folder = committed_folder(wsgi_client, owner)
    share(wsgi_client, owner, "/Secret", permissions=permissions | 1)
    expected = 200 if permissions & 4 else 403
    assert drop(wsgi_client, folder, {"u": ENTRY}, who=sharee).status_code == expected
