"""The OCS share API (create, list, get, delete) with an owner, a sharee and an outsider."""

from server.sharing.models import Share
from tests.e2ee.test_folders_locks_metadata import committed_folder, mkcol
from tests.sharing.conftest import SHARES, data, share

NEXTCLOUD_FIELDS = {
    "id",
    "share_type",
    "uid_owner",
    "displayname_owner",
    "permissions",
    "stime",
    "parent",
    "expiration",
    "token",
    "uid_file_owner",
    "displayname_file_owner",
    "path",
    "item_type",
    "mimetype",
    "storage_id",
    "storage",
    "item_source",
    "file_source",
    "file_parent",
    "file_target",
    "share_with",
    "share_with_displayname",
    "mail_send",
    "note",
    "label",
}


def test_create_a_user_share_in_nextclouds_shape(wsgi_client, owner, sharee):
    folder = mkcol(wsgi_client, owner, "Team")
    response = share(wsgi_client, owner, "/Team", permissions=15)
    assert response.status_code == 200, response.text
    created = data(response)
    assert set(created) >= NEXTCLOUD_FIELDS
    assert created["share_type"] == 0 and created["permissions"] == 15
    assert created["uid_owner"] == "alice" and created["share_with"] == "bob"
    assert created["path"] == "/Team" and created["file_target"] == "/Team"
    assert created["item_type"] == "folder" and created["file_source"] == folder
    assert created["token"] is None and isinstance(created["id"], str)


def test_ocs_v1_envelope(wsgi_client, owner, sharee):
    mkcol(wsgi_client, owner, "Team")
    response = wsgi_client.post(
        SHARES.replace("v2.php", "v1.php") + "?format=json",
        headers=owner,
        data={"path": "/Team", "shareType": "0", "shareWith": "bob"},
    )
    assert response.status_code == 200
    assert response.json()["ocs"]["meta"]["statuscode"] == 100


def test_create_errors(wsgi_client, owner, sharee, outsider):
    mkcol(wsgi_client, owner, "Team")
    assert share(wsgi_client, owner, "/Nope").status_code == 404
    assert share(wsgi_client, owner, "/Team", share_with="nobody").status_code == 404
    assert share(wsgi_client, owner, "/Team", share_with="alice").status_code == 403
    assert share(wsgi_client, owner, "/Team", permissions=2).status_code == 400
    assert share(wsgi_client, owner, "/Team", permissions=99).status_code == 400
    assert share(wsgi_client, owner, "/Team", share_type=7).status_code == 400
    assert share(wsgi_client, owner, "/").status_code == 403
    # an outsider cannot share what is not theirs: to them it does not exist
    assert share(wsgi_client, outsider, "/Team", share_with="bob").status_code == 404
    assert share(wsgi_client, owner, "/Team").status_code == 200  # twin
    assert share(wsgi_client, owner, "/Team").status_code == 403  # already shared
    no_header = {k: v for k, v in owner.items() if k != "OCS-APIRequest"}
    response = wsgi_client.post(
        f"{SHARES}?format=json", headers=no_header, data={"path": "/Team", "shareType": "0"}
    )
    assert response.status_code == 401


def test_only_the_topmost_encrypted_folder_can_be_shared(wsgi_client, owner, sharee):
    from server.files.models import Node

    top = committed_folder(wsgi_client, owner)
    Node.objects.create(
        owner_id=Node.objects.get(pk=top).owner_id,
        parent_id=top,
        name="sub",
        kind="dir",
        is_encrypted=True,
    )
    assert share(wsgi_client, owner, "/Secret/sub").status_code == 403
    assert share(wsgi_client, owner, "/Secret").status_code == 200


def test_target_names_do_not_clash(wsgi_client, owner, sharee):
    mkcol(wsgi_client, owner, "Team")
    wsgi_client.request("MKCOL", "/remote.php/dav/files/bob/Team", headers=sharee)
    assert data(share(wsgi_client, owner, "/Team"))["file_target"] == "/Team (2)"


def test_list_own_and_shared_with_me_and_get(wsgi_client, owner, sharee, outsider):
    mkcol(wsgi_client, owner, "Team")
    share_id = data(share(wsgi_client, owner, "/Team"))["id"]
    mine = data(wsgi_client.get(f"{SHARES}?format=json", headers=owner))
    assert [s["id"] for s in mine] == [share_id]
    assert data(wsgi_client.get(f"{SHARES}?format=json", headers=sharee)) == []
    received = data(wsgi_client.get(f"{SHARES}?format=json&shared_with_me=true", headers=sharee))
    assert [s["id"] for s in received] == [share_id]
    assert received[0]["path"] == "/Team"
    assert (
        data(wsgi_client.get(f"{SHARES}?format=json&shared_with_me=true", headers=outsider)) == []
    )
    for who in (owner, sharee):
        response = wsgi_client.get(f"{SHARES}/{share_id}?format=json", headers=who)
        assert response.status_code == 200 and data(response)[0]["id"] == share_id
    assert wsgi_client.get(f"{SHARES}/{share_id}?format=json", headers=outsider).status_code == 404
    assert wsgi_client.get(f"{SHARES}/99999?format=json", headers=owner).status_code == 404


def test_delete(wsgi_client, owner, sharee, outsider):
    mkcol(wsgi_client, owner, "Team")
    share_id = data(share(wsgi_client, owner, "/Team"))["id"]
    assert (
        wsgi_client.delete(f"{SHARES}/{share_id}?format=json", headers=outsider).status_code == 404
    )
    assert Share.objects.exists()
    assert wsgi_client.delete(f"{SHARES}/{share_id}?format=json", headers=owner).status_code == 200
    assert not Share.objects.exists()
    assert wsgi_client.delete(f"{SHARES}/{share_id}?format=json", headers=owner).status_code == 404


def test_a_sharee_may_leave_a_share(wsgi_client, owner, sharee):
    mkcol(wsgi_client, owner, "Team")
    share_id = data(share(wsgi_client, owner, "/Team"))["id"]
    assert wsgi_client.delete(f"{SHARES}/{share_id}?format=json", headers=sharee).status_code == 200
    assert not Share.objects.exists()


def test_link_share(wsgi_client, owner):
    mkcol(wsgi_client, owner, "Drop")
    created = data(share(wsgi_client, owner, "/Drop", share_with=None, permissions=4, share_type=3))
    assert created["share_type"] == 3 and created["permissions"] == 4
    assert len(created["token"]) == 15 and created["url"].endswith("/s/" + created["token"])
