"""A sharee's WebDAV view of a folder shared with them: it appears in their root under the
share's target name, and every read and write acts on the owner's nodes within the share's
permission bits. The outsider sees nothing."""

from urllib.parse import unquote
from xml.etree import ElementTree

import pytest

from server.files.models import Node
from tests.e2ee.test_folders_locks_metadata import mkcol, put_blob
from tests.sharing.conftest import data, share

BOB = "/remote.php/dav/files/bob"


def shared_team(client, owner, permissions=31):
    folder = mkcol(client, owner, "Team")
    put_blob(client, owner, "Team/plan.txt", b"owner's plan")
    assert share(client, owner, "/Team", permissions=permissions).status_code == 200
    return folder


def names(client, who, path):
    response = client.request("PROPFIND", f"{BOB}/{path}", headers={**who, "Depth": "1"})
    assert response.status_code == 207, response.text
    hrefs = [
        unquote(el.text or "") for el in ElementTree.fromstring(response.content).iter("{DAV:}href")
    ]
    return sorted(href.split(f"{BOB}/", 1)[1].rstrip("/") for href in hrefs)


def test_the_shared_folder_appears_in_the_sharees_root(wsgi_client, owner, sharee):
    shared_team(wsgi_client, owner)
    assert "Team" in names(wsgi_client, sharee, "")
    assert names(wsgi_client, sharee, "Team") == ["Team", "Team/plan.txt"]
    response = wsgi_client.get(f"{BOB}/Team/plan.txt", headers=sharee)
    assert response.status_code == 200 and response.content == b"owner's plan"


def test_sharee_writes_land_in_the_owners_tree(wsgi_client, owner, sharee):
    folder = shared_team(wsgi_client, owner)
    assert wsgi_client.put(f"{BOB}/Team/new.txt", headers=sharee, content=b"b").status_code == 201
    assert wsgi_client.request("MKCOL", f"{BOB}/Team/sub", headers=sharee).status_code == 201
    assert wsgi_client.delete(f"{BOB}/Team/plan.txt", headers=sharee).status_code == 204
    assert sorted(Node.objects.filter(parent_id=folder).values_list("name", flat=True)) == [
        "new.txt",
        "sub",
    ]
    assert set(Node.objects.filter(parent_id=folder).values_list("owner__username", flat=True)) == {
        "alice"
    }


@pytest.mark.parametrize(
    ("permissions", "method", "path", "allowed"),
    [
        (1, "PUT", "Team/new.txt", False),  # CREATE missing
        (5, "PUT", "Team/new.txt", True),
        (5, "PUT", "Team/plan.txt", False),  # UPDATE missing
        (3, "PUT", "Team/plan.txt", True),
        (1, "MKCOL", "Team/sub", False),
        (5, "MKCOL", "Team/sub", True),
        (7, "DELETE", "Team/plan.txt", False),  # DELETE missing
        (9, "DELETE", "Team/plan.txt", True),
    ],
)
def test_share_permission_bits(wsgi_client, owner, sharee, permissions, method, path, allowed):
    shared_team(wsgi_client, owner, permissions)
    body = b"x" if method == "PUT" else None
    response = wsgi_client.request(method, f"{BOB}/{path}", headers=sharee, content=body)
    assert (response.status_code < 300) is allowed, (response.status_code, response.text)


def test_the_share_itself_cannot_be_deleted_or_moved_by_the_sharee(wsgi_client, owner, sharee):
    folder = shared_team(wsgi_client, owner)
    assert wsgi_client.delete(f"{BOB}/Team", headers=sharee).status_code == 403
    response = wsgi_client.request(
        "MOVE", f"{BOB}/Team", headers={**sharee, "Destination": f"http://testserver{BOB}/T2"}
    )
    assert response.status_code == 403
    assert Node.objects.filter(pk=folder).exists()


def test_moving_out_of_a_share_is_refused(wsgi_client, owner, sharee):
    shared_team(wsgi_client, owner)
    response = wsgi_client.request(
        "MOVE",
        f"{BOB}/Team/plan.txt",
        headers={**sharee, "Destination": f"http://testserver{BOB}/mine.txt"},
    )
    assert response.status_code == 403
    response = wsgi_client.request(
        "MOVE",
        f"{BOB}/Team/plan.txt",
        headers={**sharee, "Destination": f"http://testserver{BOB}/Team/renamed.txt"},
    )
    assert response.status_code in (201, 204)  # twin: inside the share


def test_sharee_permissions_property(wsgi_client, owner, sharee):
    shared_team(wsgi_client, owner, permissions=5)
    response = wsgi_client.request(
        "PROPFIND",
        f"{BOB}/Team/plan.txt",
        headers={**sharee, "Depth": "0"},
        content='<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
        "<d:prop><oc:permissions/></d:prop></d:propfind>",
    )
    found = ElementTree.fromstring(response.content).find(".//{http://owncloud.org/ns}permissions")
    assert found is not None and found.text == "SG"


def test_outsider_and_after_unshare_see_nothing(wsgi_client, owner, sharee, outsider):
    shared_team(wsgi_client, owner)
    mallory = "/remote.php/dav/files/mallory"
    assert wsgi_client.get(f"{mallory}/Team/plan.txt", headers=outsider).status_code == 404
    assert wsgi_client.get(f"{BOB}/Team/plan.txt", headers=outsider).status_code == 404
    share_id = data(
        wsgi_client.get("/ocs/v2.php/apps/files_sharing/api/v1/shares?format=json", headers=owner)
    )[0]["id"]
    wsgi_client.delete(
        f"/ocs/v2.php/apps/files_sharing/api/v1/shares/{share_id}?format=json", headers=owner
    )
    assert wsgi_client.get(f"{BOB}/Team/plan.txt", headers=sharee).status_code == 404


def root_etag(client, who, base):
    response = client.request("PROPFIND", f"{base}/", headers={**who, "Depth": "0"})
    return ElementTree.fromstring(response.content).find(".//{DAV:}getetag").text


def test_changes_in_a_shared_folder_change_the_sharees_root_etag(
    wsgi_client, owner, sharee, django_capture_on_commit_callbacks
):
    shared_team(wsgi_client, owner)
    mkcol(wsgi_client, owner, "Private")
    before = root_etag(wsgi_client, sharee, BOB)
    with django_capture_on_commit_callbacks(execute=True):
        put_blob(wsgi_client, owner, "Private/diary.txt", b"not shared")
    assert root_etag(wsgi_client, sharee, BOB) == before  # twin: unrelated changes stay unseen
    # the sharee's root is touched after the owner's commit (the test transaction never commits)
    with django_capture_on_commit_callbacks(execute=True):
        put_blob(wsgi_client, owner, "Team/deep.txt", b"new for the team")
    after = root_etag(wsgi_client, sharee, BOB)
    assert after != before  # a sync client polling its root notices the shared change
