"""E2EE endpoints for shared folders: a sharee locks and writes the owner's folder within the
share's bits; link shares have their own "s:<token>" keys. The outsider sees nothing (404)."""

# ruff: noqa: F811 - fixtures imported below are used as test parameters

from server.certificates.models import Certificate
from server.e2ee.models import FolderMetadata, WrappedPrivateKey
from tests.e2ee.helpers import API, make_csr, v2_document, wrapped_private_key
from tests.e2ee.test_folders_locks_metadata import (
    committed_folder,
    get_metadata,
    lock,
    put_metadata,
    token_of,
    unlock,
)
from tests.e2ee.test_keys_api import ca_key_file  # noqa: F401
from tests.sharing.conftest import data, share

BOB = "/remote.php/dav/files/bob"


def test_sharee_locks_and_writes_the_owners_metadata(wsgi_client, owner, sharee):
    folder = committed_folder(wsgi_client, owner)
    assert share(wsgi_client, owner, "/Secret", permissions=15).status_code == 200
    assert data(get_metadata(wsgi_client, sharee, folder))["meta-data"] == v2_document()
    token = token_of(lock(wsgi_client, sharee, folder, counter=2))
    # the sharee's staged upload goes into the owner's folder through the sharee's mount
    response = wsgi_client.put(
        f"{BOB}/Secret/0a1b", headers={**sharee, "e2e-token": token}, content=b"sealed"
    )
    assert response.status_code == 201
    assert lock(wsgi_client, owner, folder, counter=3).status_code == 423  # one holder
    assert (
        put_metadata(wsgi_client, sharee, folder, token, v2_document(2, "bob")).status_code == 200
    )
    assert unlock(wsgi_client, sharee, folder, token).status_code == 200
    assert FolderMetadata.objects.get(node_id=folder).document == v2_document(2, "bob")
    assert wsgi_client.get(f"{BOB}/Secret/0a1b", headers=sharee).content == b"sealed"
    owner_view = wsgi_client.get("/remote.php/dav/files/alice/Secret/0a1b", headers=owner)
    assert owner_view.content == b"sealed"


def test_read_only_sharee_reads_but_cannot_lock(wsgi_client, owner, sharee):
    folder = committed_folder(wsgi_client, owner)
    share(wsgi_client, owner, "/Secret", permissions=1)
    assert get_metadata(wsgi_client, sharee, folder).status_code == 200
    assert lock(wsgi_client, sharee, folder, counter=2).status_code == 403
    assert lock(wsgi_client, owner, folder, counter=2).status_code == 200  # twin


def test_outsider_learns_nothing(wsgi_client, owner, sharee, outsider):
    folder = committed_folder(wsgi_client, owner)
    share(wsgi_client, owner, "/Secret")
    assert get_metadata(wsgi_client, outsider, folder).status_code == 404
    assert lock(wsgi_client, outsider, folder, counter=2).status_code == 404
    assert get_metadata(wsgi_client, sharee, folder).status_code == 200  # twin


def _link(client, owner, path="/Secret", permissions=4):
    response = share(client, owner, path, share_with=None, permissions=permissions, share_type=3)
    assert response.status_code == 200, response.text
    return data(response)["token"]


def test_link_share_keys_live_under_s_token(wsgi_client, owner, sharee, outsider, ca_key_file):
    committed_folder(wsgi_client, owner)
    token = _link(wsgi_client, owner)
    url = f"{API}/public-key?format=json"
    wrong_cn = {"csr": make_csr("alice"), "shareToken": token}
    assert wsgi_client.post(url, headers=owner, data=wrong_cn).status_code == 403
    for who in (sharee, outsider):
        body = {"csr": make_csr(f"s:{token}"), "shareToken": token}
        assert wsgi_client.post(url, headers=who, data=body).status_code == 403
    unknown = {"csr": make_csr("s:nope"), "shareToken": "nope"}
    assert wsgi_client.post(url, headers=owner, data=unknown).status_code == 404
    body = {"csr": make_csr(f"s:{token}"), "shareToken": token}
    response = wsgi_client.post(url, headers=owner, data=body)
    assert response.status_code == 200, response.text
    assert Certificate.objects.get(key_owner=f"s:{token}").user.username == "alice"

    wrapped = wrapped_private_key()
    response = wsgi_client.post(
        f"{API}/private-key?format=json",
        headers=owner,
        data={"privateKey": wrapped, "shareToken": token},
    )
    assert response.status_code == 200
    assert WrappedPrivateKey.objects.get(key_owner=f"s:{token}").wrapped == wrapped
    response = wsgi_client.get(
        f"{API}/private-key?format=json", headers={**owner, "X-NC-E2EE-SHARE-TOKEN": token}
    )
    assert data(response)["private-key"] == wrapped
    assert wsgi_client.get(f"{API}/private-key?format=json", headers=owner).status_code == 404


def test_deleting_a_link_share_deletes_its_keys(wsgi_client, owner):
    committed_folder(wsgi_client, owner)
    token = _link(wsgi_client, owner)
    wsgi_client.post(
        f"{API}/private-key?format=json",
        headers=owner,
        data={"privateKey": wrapped_private_key(), "shareToken": token},
    )
    share_id = data(
        wsgi_client.get("/ocs/v2.php/apps/files_sharing/api/v1/shares?format=json", headers=owner)
    )[0]["id"]
    wsgi_client.delete(
        f"/ocs/v2.php/apps/files_sharing/api/v1/shares/{share_id}?format=json", headers=owner
    )
    assert not WrappedPrivateKey.objects.filter(key_owner=f"s:{token}").exists()
