"""Encrypted flags, locks and metadata over HTTP through the real WSGI app (PROTOCOL.md §3.2-3.3,
flows C-H of §8)."""

import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from server.e2ee.models import FolderMetadata, Lock
from server.files.models import Node
from tests.e2ee.helpers import (
    API,
    V1_DOCUMENT,
    dav_url,
    file_id_of,
    headers,
    v2_document,
)

PASSWORD = "correct horse battery staple"
SIGNATURE = "TUlJQ0Fh"  # opaque to the server


@pytest.fixture
def alice(make_user, app_password):
    return headers("alice", app_password(make_user("alice", PASSWORD)))


@pytest.fixture
def outsider(make_user, app_password):
    return headers("mallory", app_password(make_user("mallory", PASSWORD + "m")))


def data(response):
    return response.json()["ocs"]["data"]


def mkcol(client, who, path):
    response = client.request("MKCOL", dav_url("alice", path), headers=who)
    assert response.status_code == 201, response.text
    return file_id_of(response)


def encrypted_folder(client, who, path="Secret"):
    folder = mkcol(client, who, path)
    assert client.put(f"{API}/encrypted/{folder}?format=json", headers=who).status_code == 200
    return folder


def lock(client, who, folder, counter=1, **extra):
    return client.post(
        f"{API}/lock/{folder}?format=json",
        headers={**who, "X-NC-E2EE-COUNTER": str(counter)},
        **extra,
    )


def token_of(response):
    assert response.status_code == 200, response.text
    return data(response)["e2e-token"]


def unlock(client, who, folder, token, abort=False):
    suffix = "&abort=true" if abort else ""
    return client.delete(
        f"{API}/lock/{folder}?format=json{suffix}", headers={**who, "e2e-token": token}
    )


def post_metadata(client, who, folder, token, document=None, signature=SIGNATURE):
    extra = {"e2e-token": token} if token else {}
    if signature:
        extra["X-NC-E2EE-SIGNATURE"] = signature
    return client.post(
        f"{API}/meta-data/{folder}?format=json",
        headers={**who, **extra},
        data={"metaData": document or v2_document()},
    )


def put_metadata(client, who, folder, token, document, signature=SIGNATURE):
    return client.put(
        f"{API}/meta-data/{folder}?format=json",
        headers={**who, "e2e-token": token, "X-NC-E2EE-SIGNATURE": signature},
        data={"metaData": document},
    )


def get_metadata(client, who, folder):
    return client.get(f"{API}/meta-data/{folder}?format=json", headers=who)


def committed_folder(client, who, path="Secret", document=None):
    """Flow C: create, flag, lock, POST metadata, unlock."""
    folder = encrypted_folder(client, who, path)
    token = token_of(lock(client, who, folder))
    assert post_metadata(client, who, folder, token, document).status_code == 200
    assert unlock(client, who, folder, token).status_code == 200
    return folder


def put_blob(client, who, path, body=b"ciphertext||tag", token=None):
    extra = {"e2e-token": token} if token else {}
    return client.put(dav_url("alice", path), headers={**who, **extra}, content=body)


def names_in(folder_id):
    return sorted(Node.objects.filter(parent_id=folder_id).values_list("name", flat=True))


# --- encrypted flag -------------------------------------------------------------------------


def test_flag_an_empty_folder(wsgi_client, alice):
    folder = mkcol(wsgi_client, alice, "Secret")
    response = wsgi_client.put(f"{API}/encrypted/{folder}?format=json", headers=alice)
    assert response.status_code == 200 and data(response) == []
    assert Node.objects.get(pk=folder).is_encrypted


def test_flag_refused_for_non_empty_folder_file_root_and_outsider(wsgi_client, alice, outsider):
    folder = mkcol(wsgi_client, alice, "Full")
    file_id = file_id_of(put_blob(wsgi_client, alice, "Full/a.txt"))
    root = Node.objects.get(owner__username="alice", parent=None).id
    assert (
        wsgi_client.put(f"{API}/encrypted/{folder}?format=json", headers=alice).status_code == 404
    )
    assert (
        wsgi_client.put(f"{API}/encrypted/{file_id}?format=json", headers=alice).status_code == 404
    )
    assert wsgi_client.put(f"{API}/encrypted/{root}?format=json", headers=alice).status_code == 403
    empty = mkcol(wsgi_client, alice, "Empty")
    assert (
        wsgi_client.put(f"{API}/encrypted/{empty}?format=json", headers=outsider).status_code == 404
    )
    assert wsgi_client.put(f"{API}/encrypted/999999?format=json", headers=alice).status_code == 404
    assert not Node.objects.filter(is_encrypted=True).exists()


def test_unflag_removes_metadata_only_when_empty(wsgi_client, alice):
    folder = committed_folder(wsgi_client, alice)
    assert FolderMetadata.objects.filter(node_id=folder).exists()
    response = wsgi_client.delete(f"{API}/encrypted/{folder}?format=json", headers=alice)
    assert response.status_code == 200
    assert not Node.objects.get(pk=folder).is_encrypted
    assert not FolderMetadata.objects.filter(node_id=folder).exists()

    other = committed_folder(wsgi_client, alice, "Other")
    token = token_of(lock(wsgi_client, alice, other, counter=2))
    put_blob(wsgi_client, alice, "Other/0123", token=token)
    put_metadata(wsgi_client, alice, other, token, v2_document(2))
    unlock(wsgi_client, alice, other, token)
    assert (
        wsgi_client.delete(f"{API}/encrypted/{other}?format=json", headers=alice).status_code == 404
    )
    assert Node.objects.get(pk=other).is_encrypted


def test_reset_deletes_every_encrypted_folder_with_account_password(wsgi_client, alice):
    one = committed_folder(wsgi_client, alice, "One")
    two = committed_folder(wsgi_client, alice, "Two")
    plain = mkcol(wsgi_client, alice, "Plain")
    assert (
        wsgi_client.delete(f"{API}/encrypted-files?format=json", headers=alice).status_code == 403
    )
    assert Node.objects.filter(pk__in=[one, two]).count() == 2
    account = headers("alice", PASSWORD)
    response = wsgi_client.delete(f"{API}/encrypted-files?format=json", headers=account)
    assert response.status_code == 200
    assert sorted(data(response)["deletedIds"]) == sorted([one, two])
    assert not Node.objects.filter(pk__in=[one, two]).exists()
    assert Node.objects.filter(pk=plain).exists()


# --- locks ----------------------------------------------------------------------------------


def test_lock_token_shape_and_exclusivity(wsgi_client, alice):
    folder = encrypted_folder(wsgi_client, alice)
    token = token_of(lock(wsgi_client, alice, folder))
    assert re.fullmatch(r"[A-Za-z0-9]{64}", token)
    assert lock(wsgi_client, alice, folder).status_code == 423
    # A retry with the same token (form field, as clients send it) gets the same lock back.
    assert token_of(lock(wsgi_client, alice, folder, data={"e2e-token": token})) == token
    assert lock(wsgi_client, alice, folder, data={"e2e-token": "x" * 64}).status_code == 423


@pytest.mark.parametrize("counter", [None, "0", "-1", "abc"])
def test_lock_needs_a_positive_counter(wsgi_client, alice, counter):
    folder = encrypted_folder(wsgi_client, alice)
    extra = {} if counter is None else {"X-NC-E2EE-COUNTER": counter}
    response = wsgi_client.post(f"{API}/lock/{folder}?format=json", headers={**alice, **extra})
    assert response.status_code == 400
    assert not Lock.objects.exists()


def test_lock_refused_on_plain_folder_root_and_for_outsider(wsgi_client, alice, outsider):
    plain = mkcol(wsgi_client, alice, "Plain")
    root = Node.objects.get(owner__username="alice", parent=None).id
    folder = encrypted_folder(wsgi_client, alice)
    assert lock(wsgi_client, alice, plain).status_code == 403
    assert lock(wsgi_client, alice, root).status_code == 403
    assert lock(wsgi_client, outsider, folder).status_code == 404
    assert token_of(lock(wsgi_client, alice, folder))  # twin: the owner can


def test_locks_are_hierarchical(wsgi_client, alice):
    root = committed_folder(wsgi_client, alice)
    token = token_of(lock(wsgi_client, alice, root, counter=2))
    sub = Node.objects.create(
        owner_id=Node.objects.get(pk=root).owner_id,
        parent_id=root,
        name="sub",
        kind="dir",
        is_encrypted=True,
    ).id
    assert lock(wsgi_client, alice, sub).status_code == 423
    assert unlock(wsgi_client, alice, root, token).status_code == 200
    sub_token = token_of(lock(wsgi_client, alice, sub))
    assert lock(wsgi_client, alice, root, counter=2).status_code == 423
    assert unlock(wsgi_client, alice, sub, sub_token).status_code == 200
    assert token_of(lock(wsgi_client, alice, root, counter=2))


def test_counter_must_grow_once_tracked(wsgi_client, alice):
    folder = encrypted_folder(wsgi_client, alice)
    token = token_of(lock(wsgi_client, alice, folder, counter=1))
    post_metadata(wsgi_client, alice, folder, token)
    unlock(wsgi_client, alice, folder, token)
    # No metadata existed at the first lock, so no counter was recorded (as Nextcloud does).
    assert FolderMetadata.objects.get(node_id=folder).counter == 0
    token = token_of(lock(wsgi_client, alice, folder, counter=1))
    put_metadata(wsgi_client, alice, folder, token, v2_document(1))
    unlock(wsgi_client, alice, folder, token)
    assert FolderMetadata.objects.get(node_id=folder).counter == 1
    assert lock(wsgi_client, alice, folder, counter=1).status_code == 412
    token = token_of(lock(wsgi_client, alice, folder, counter=5))
    put_metadata(wsgi_client, alice, folder, token, v2_document(5))
    unlock(wsgi_client, alice, folder, token)
    assert lock(wsgi_client, alice, folder, counter=5).status_code == 412
    assert lock(wsgi_client, alice, folder, counter=6).status_code == 200


def test_counter_of_an_aborted_lock_is_not_recorded(wsgi_client, alice):
    folder = committed_folder(wsgi_client, alice)
    token = token_of(lock(wsgi_client, alice, folder, counter=9))
    put_metadata(wsgi_client, alice, folder, token, v2_document(9))
    unlock(wsgi_client, alice, folder, token, abort=True)
    assert token_of(lock(wsgi_client, alice, folder, counter=2))


def test_unlock_errors(wsgi_client, alice, outsider):
    folder = encrypted_folder(wsgi_client, alice)
    assert unlock(wsgi_client, alice, folder, "t" * 64).status_code == 404
    token = token_of(lock(wsgi_client, alice, folder))
    no_token = wsgi_client.delete(f"{API}/lock/{folder}?format=json", headers=alice)
    assert no_token.status_code == 400
    assert unlock(wsgi_client, alice, folder, "t" * 64).status_code == 403
    assert unlock(wsgi_client, outsider, folder, token).status_code == 404
    assert unlock(wsgi_client, alice, folder, token).status_code == 200
    assert not Lock.objects.exists()


# --- metadata -------------------------------------------------------------------------------


def test_flow_c_create_root_metadata(wsgi_client, alice):
    folder = encrypted_folder(wsgi_client, alice)
    token = token_of(lock(wsgi_client, alice, folder))
    document = v2_document(1, "first")
    response = post_metadata(wsgi_client, alice, folder, token, document)
    assert response.status_code == 200 and data(response)["meta-data"] == document
    assert get_metadata(wsgi_client, alice, folder).status_code == 404  # staged, not committed
    assert unlock(wsgi_client, alice, folder, token).status_code == 200
    response = get_metadata(wsgi_client, alice, folder)
    assert response.status_code == 200
    assert data(response)["meta-data"] == document
    assert response.headers["X-NC-E2EE-SIGNATURE"] == SIGNATURE


def test_metadata_post_errors(wsgi_client, alice):
    folder = encrypted_folder(wsgi_client, alice)
    token = token_of(lock(wsgi_client, alice, folder))
    assert post_metadata(wsgi_client, alice, folder, token, signature="").status_code == 400
    assert post_metadata(wsgi_client, alice, folder, None).status_code == 403
    assert post_metadata(wsgi_client, alice, folder, "y" * 64).status_code == 403
    assert post_metadata(wsgi_client, alice, folder, token, document="{not json").status_code == 400
    assert post_metadata(wsgi_client, alice, folder, token).status_code == 200
    assert post_metadata(wsgi_client, alice, folder, token).status_code == 409
    unlock(wsgi_client, alice, folder, token)
    token = token_of(lock(wsgi_client, alice, folder, counter=2))
    assert post_metadata(wsgi_client, alice, folder, token).status_code == 409


def test_metadata_update_is_staged_until_unlock_and_abort_reverts(wsgi_client, alice):
    folder = committed_folder(wsgi_client, alice, document=v2_document(1, "v1"))
    token = token_of(lock(wsgi_client, alice, folder, counter=2))
    assert put_metadata(wsgi_client, alice, folder, token, v2_document(2, "v2")).status_code == 200
    assert data(get_metadata(wsgi_client, alice, folder))["meta-data"] == v2_document(1, "v1")
    assert unlock(wsgi_client, alice, folder, token, abort=True).status_code == 200
    assert data(get_metadata(wsgi_client, alice, folder))["meta-data"] == v2_document(1, "v1")

    token = token_of(lock(wsgi_client, alice, folder, counter=2))
    put_metadata(wsgi_client, alice, folder, token, v2_document(2, "v2"), signature="U0lHMg==")
    unlock(wsgi_client, alice, folder, token)
    response = get_metadata(wsgi_client, alice, folder)
    assert data(response)["meta-data"] == v2_document(2, "v2")
    assert response.headers["X-NC-E2EE-SIGNATURE"] == "U0lHMg=="


def test_metadata_put_errors(wsgi_client, alice):
    folder = encrypted_folder(wsgi_client, alice)
    token = token_of(lock(wsgi_client, alice, folder))
    assert put_metadata(wsgi_client, alice, folder, token, v2_document()).status_code == 404
    unlock(wsgi_client, alice, folder, token)
    folder = committed_folder(wsgi_client, alice, "Two")
    assert put_metadata(wsgi_client, alice, folder, "z" * 64, v2_document()).status_code == 412
    token = token_of(lock(wsgi_client, alice, folder, counter=2))
    assert (
        put_metadata(wsgi_client, alice, folder, token, v2_document(), signature="").status_code
        == 400
    )
    assert put_metadata(wsgi_client, alice, folder, token, v2_document()).status_code == 200


def test_metadata_delete_is_staged(wsgi_client, alice):
    folder = committed_folder(wsgi_client, alice)
    assert (
        wsgi_client.delete(f"{API}/meta-data/{folder}?format=json", headers=alice).status_code
        == 400
    )
    response = wsgi_client.delete(
        f"{API}/meta-data/{folder}?format=json", headers={**alice, "e2e-token": "q" * 64}
    )
    assert response.status_code == 412
    token = token_of(lock(wsgi_client, alice, folder, counter=2))
    response = wsgi_client.delete(
        f"{API}/meta-data/{folder}?format=json", headers={**alice, "e2e-token": token}
    )
    assert response.status_code == 200
    assert get_metadata(wsgi_client, alice, folder).status_code == 200
    unlock(wsgi_client, alice, folder, token)
    assert get_metadata(wsgi_client, alice, folder).status_code == 404


def test_metadata_of_outsider_and_missing(wsgi_client, alice, outsider):
    folder = committed_folder(wsgi_client, alice)
    assert get_metadata(wsgi_client, outsider, folder).status_code == 404
    assert get_metadata(wsgi_client, alice, 999999).status_code == 404
    assert get_metadata(wsgi_client, alice, folder).status_code == 200


def test_v1_endpoints_keep_to_v1_documents(wsgi_client, alice):
    v1 = API.replace("/api/v2", "/api/v1")
    folder = encrypted_folder(wsgi_client, alice, "Old")
    response = wsgi_client.post(
        f"{v1}/meta-data/{folder}?format=json", headers=alice, data={"metaData": V1_DOCUMENT}
    )
    assert response.status_code == 200  # v1 creates without a lock
    assert (
        data(wsgi_client.get(f"{v1}/meta-data/{folder}?format=json", headers=alice))["meta-data"]
        == V1_DOCUMENT
    )
    v2_folder = committed_folder(wsgi_client, alice, "New")
    response = wsgi_client.get(f"{v1}/meta-data/{v2_folder}?format=json", headers=alice)
    assert response.status_code == 403
    assert "v2" in data(response)["message"]
    # the v2 endpoints read both
    assert get_metadata(wsgi_client, alice, folder).status_code == 200
    v1_token = token_of(wsgi_client.post(f"{v1}/lock/{folder}?format=json", headers=alice))
    assert wsgi_client.post(f"{v1}/lock/{folder}?format=json", headers=alice).status_code == 403
    assert (
        wsgi_client.delete(
            f"{v1}/lock/{folder}?format=json", headers={**alice, "e2e-token": v1_token}
        ).status_code
        == 200
    )


# --- staged WebDAV writes -------------------------------------------------------------------


def test_writes_in_encrypted_folder_need_the_token(wsgi_client, alice):
    committed_folder(wsgi_client, alice)
    assert put_blob(wsgi_client, alice, "Secret/0a1b").status_code == 403
    assert put_blob(wsgi_client, alice, "Secret/0a1b", token="w" * 64).status_code == 423
    plain = put_blob(wsgi_client, alice, "plain.txt")
    assert plain.status_code in (201, 204)  # twin: outside encrypted trees nothing is gated


def test_writes_need_an_e2ee_client(wsgi_client, alice):
    folder = committed_folder(wsgi_client, alice)
    token = token_of(lock(wsgi_client, alice, folder, counter=2))
    browser = {k: v for k, v in alice.items() if k != "X-E2EE-SUPPORTED"}
    browser["User-Agent"] = "Mozilla/5.0 (X11) Firefox/140"
    assert put_blob(wsgi_client, browser, "Secret/0a1b", token=token).status_code == 403
    assert put_blob(wsgi_client, alice, "Secret/0a1b", token=token).status_code in (201, 204)


def test_flow_d_upload_is_staged_and_committed_with_metadata(wsgi_client, alice):
    folder = committed_folder(wsgi_client, alice)
    token = token_of(lock(wsgi_client, alice, folder, counter=2))
    response = put_blob(wsgi_client, alice, "Secret/0a1b", b"sealed bytes", token=token)
    assert response.status_code in (201, 204)
    assert names_in(folder) == ["0a1b.e2e-to-save"]
    assert wsgi_client.get(dav_url("alice", "Secret/0a1b"), headers=alice).status_code == 404
    put_metadata(wsgi_client, alice, folder, token, v2_document(2))
    assert unlock(wsgi_client, alice, folder, token).status_code == 200
    assert names_in(folder) == ["0a1b"]
    assert (
        wsgi_client.get(dav_url("alice", "Secret/0a1b"), headers=alice).content == b"sealed bytes"
    )


def test_unlock_without_metadata_upload_commits_nothing(wsgi_client, alice):
    folder = committed_folder(wsgi_client, alice)
    token = token_of(lock(wsgi_client, alice, folder, counter=2))
    put_blob(wsgi_client, alice, "Secret/0a1b", token=token)
    assert unlock(wsgi_client, alice, folder, token).status_code == 200
    assert names_in(folder) == []


def test_abort_removes_staged_files_and_keeps_committed_ones(wsgi_client, alice):
    folder = committed_folder(wsgi_client, alice)
    token = token_of(lock(wsgi_client, alice, folder, counter=2))
    put_blob(wsgi_client, alice, "Secret/keep", b"v1", token=token)
    put_metadata(wsgi_client, alice, folder, token, v2_document(2))
    unlock(wsgi_client, alice, folder, token)

    token = token_of(lock(wsgi_client, alice, folder, counter=3))
    put_blob(wsgi_client, alice, "Secret/keep", b"v2", token=token)
    put_blob(wsgi_client, alice, "Secret/new", b"n", token=token)
    assert (
        wsgi_client.delete(
            dav_url("alice", "Secret/keep"), headers={**alice, "e2e-token": token}
        ).status_code
        == 204
    )
    put_metadata(wsgi_client, alice, folder, token, v2_document(3))
    assert unlock(wsgi_client, alice, folder, token, abort=True).status_code == 200
    assert names_in(folder) == ["keep"]
    assert wsgi_client.get(dav_url("alice", "Secret/keep"), headers=alice).content == b"v1"


def test_flow_h_delete_file_is_staged(wsgi_client, alice):
    folder = committed_folder(wsgi_client, alice)
    token = token_of(lock(wsgi_client, alice, folder, counter=2))
    put_blob(wsgi_client, alice, "Secret/gone", b"x", token=token)
    put_metadata(wsgi_client, alice, folder, token, v2_document(2))
    unlock(wsgi_client, alice, folder, token)

    token = token_of(lock(wsgi_client, alice, folder, counter=3))
    assert wsgi_client.delete(dav_url("alice", "Secret/gone"), headers=alice).status_code == 403
    assert (
        wsgi_client.delete(
            dav_url("alice", "Secret/gone"), headers={**alice, "e2e-token": token}
        ).status_code
        == 204
    )
    assert names_in(folder) == ["gone.e2e-to-delete"]
    put_metadata(wsgi_client, alice, folder, token, v2_document(3))
    unlock(wsgi_client, alice, folder, token)
    assert names_in(folder) == []


def test_flow_e_subfolder_under_the_root_lock(wsgi_client, alice):
    root = committed_folder(wsgi_client, alice)
    token = token_of(lock(wsgi_client, alice, root, counter=2))
    response = wsgi_client.request(
        "MKCOL", dav_url("alice", "Secret/5ub"), headers={**alice, "e2e-token": token}
    )
    assert response.status_code == 201
    sub = file_id_of(response)
    assert wsgi_client.put(f"{API}/encrypted/{sub}?format=json", headers=alice).status_code == 200
    assert post_metadata(wsgi_client, alice, sub, token, v2_document(1, "sub")).status_code == 200
    put_blob(wsgi_client, alice, "Secret/5ub.e2e-to-save/f1", b"deep", token=token)
    put_metadata(wsgi_client, alice, root, token, v2_document(2, "root"))
    assert unlock(wsgi_client, alice, root, token).status_code == 200
    assert names_in(root) == ["5ub"]
    assert names_in(sub) == ["f1"]
    assert data(get_metadata(wsgi_client, alice, sub))["meta-data"] == v2_document(1, "sub")
    assert wsgi_client.get(dav_url("alice", "Secret/5ub/f1"), headers=alice).content == b"deep"


def test_move_and_copy_across_the_encrypted_boundary_refused(wsgi_client, alice):
    folder = committed_folder(wsgi_client, alice)
    put_blob(wsgi_client, alice, "plain.txt", b"p")
    token = token_of(lock(wsgi_client, alice, folder, counter=2))
    for method in ("MOVE", "COPY"):
        response = wsgi_client.request(
            method,
            dav_url("alice", "plain.txt"),
            headers={
                **alice,
                "e2e-token": token,
                "Destination": "http://testserver" + dav_url("alice", "Secret/in"),
            },
        )
        assert response.status_code == 403
    response = wsgi_client.request(
        "COPY",
        dav_url("alice", "plain.txt"),
        headers={**alice, "Destination": "http://testserver" + dav_url("alice", "copy.txt")},
    )
    assert response.status_code == 201  # twin: plain to plain


def test_move_inside_tree_is_staged_and_abort_puts_it_back(wsgi_client, alice):
    folder = committed_folder(wsgi_client, alice)
    token = token_of(lock(wsgi_client, alice, folder, counter=2))
    put_blob(wsgi_client, alice, "Secret/a", b"a", token=token)
    put_metadata(wsgi_client, alice, folder, token, v2_document(2))
    unlock(wsgi_client, alice, folder, token)

    token = token_of(lock(wsgi_client, alice, folder, counter=3))
    response = wsgi_client.request(
        "MOVE",
        dav_url("alice", "Secret/a"),
        headers={
            **alice,
            "e2e-token": token,
            "Destination": "http://testserver" + dav_url("alice", "Secret/b"),
        },
    )
    assert response.status_code in (201, 204)
    assert names_in(folder) == ["b.e2e-to-save"]
    unlock(wsgi_client, alice, folder, token, abort=True)
    assert names_in(folder) == ["a"]
    assert wsgi_client.get(dav_url("alice", "Secret/a"), headers=alice).content == b"a"


def test_delete_topmost_encrypted_folder_needs_its_lock(wsgi_client, alice):
    folder = committed_folder(wsgi_client, alice)
    assert wsgi_client.delete(dav_url("alice", "Secret"), headers=alice).status_code == 403
    token = token_of(lock(wsgi_client, alice, folder, counter=2))
    put_metadata(wsgi_client, alice, folder, token, v2_document(2, "deleted"))
    assert (
        wsgi_client.delete(
            dav_url("alice", "Secret"), headers={**alice, "e2e-token": token}
        ).status_code
        == 204
    )
    assert not Node.objects.filter(pk=folder).exists()
    assert not Lock.objects.exists() and not FolderMetadata.objects.exists()


# --- crashes and the 24 h rollback ----------------------------------------------------------


def test_crash_between_blob_and_metadata_rolled_back_after_24h(wsgi_client, alice):
    folder = committed_folder(wsgi_client, alice, document=v2_document(1, "committed"))
    token = token_of(lock(wsgi_client, alice, folder, counter=2))
    put_blob(wsgi_client, alice, "Secret/orphan", b"never described", token=token)
    # the client dies here: no metadata upload, no unlock
    call_command("e2ee_rollback_locks")
    assert Lock.objects.count() == 1  # a fresh lock is left alone
    Lock.objects.update(touched_at=timezone.now() - timedelta(hours=25))
    call_command("e2ee_rollback_locks")
    assert not Lock.objects.exists()
    assert names_in(folder) == []
    assert data(get_metadata(wsgi_client, alice, folder))["meta-data"] == v2_document(
        1, "committed"
    )
    assert token_of(lock(wsgi_client, alice, folder, counter=2))


def test_rollback_task_runs_the_same_service(wsgi_client, alice):
    from server.e2ee.tasks import rollback_stale_locks

    folder = committed_folder(wsgi_client, alice)
    token_of(lock(wsgi_client, alice, folder, counter=2))
    Lock.objects.update(touched_at=timezone.now() - timedelta(hours=25))
    assert rollback_stale_locks() == [folder]
    assert not Lock.objects.exists()
