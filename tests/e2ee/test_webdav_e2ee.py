"""The E2EE read side of WebDAV (PROTOCOL.md §3.3 staging, §3.4 properties) over HTTP through
the real WSGI app: readers see the committed state, nc:e2ee-* properties, clients without E2EE
support kept out of encrypted folders."""

# ruff: noqa: F811 - the fixtures imported below are used as test parameters

from urllib.parse import unquote
from xml.etree import ElementTree

import pytest

from tests.e2ee.helpers import dav_url, v2_document
from tests.e2ee.test_folders_locks_metadata import (  # noqa: F401 - fixtures
    SIGNATURE,
    alice,
    committed_folder,
    encrypted_folder,
    lock,
    mkcol,
    names_in,
    outsider,
    put_blob,
    put_metadata,
    token_of,
    unlock,
)

DAV = "{DAV:}"
NC = "{http://nextcloud.org/ns}"
OC = "{http://owncloud.org/ns}"
PROPS = (
    OC + "fileid",
    OC + "permissions",
    NC + "is-encrypted",
    NC + "e2ee-is-encrypted",
    NC + "e2ee-metadata",
    NC + "e2ee-metadata-signature",
)


def _body(props):
    inner = "".join(
        f'<x:{name.split("}")[1]} xmlns:x="{name[1:].split("}")[0]}"/>' for name in props
    )
    return f'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop>{inner}</d:prop></d:propfind>'


def propfind(client, who, path, depth="1", props=PROPS):
    return client.request(
        "PROPFIND",
        dav_url("alice", path),
        headers={**who, "Depth": depth, "Content-Type": "application/xml"},
        content=_body(props),
    )


def entries(response):
    """{name relative to the alice root: {property: text}} for the properties answered 200."""
    assert response.status_code == 207, response.text
    found = {}
    for resp in ElementTree.fromstring(response.content).iter(DAV + "response"):
        href = unquote(resp.find(DAV + "href").text)
        name = href.split("/remote.php/dav/files/alice/", 1)[1].rstrip("/")
        props = {}
        for propstat in resp.iter(DAV + "propstat"):
            if "200" in propstat.find(DAV + "status").text:
                for prop in propstat.find(DAV + "prop"):
                    props[prop.tag] = prop.text or ""
        found[name] = props
    return found


def browser(who):
    plain = {k: v for k, v in who.items() if k != "X-E2EE-SUPPORTED"}
    plain["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
    return plain


def folder_with_file(client, who, name="keep", body=b"v1"):
    """A committed encrypted folder "Secret" holding one committed file."""
    folder = committed_folder(client, who)
    token = token_of(lock(client, who, folder, counter=2))
    put_blob(client, who, f"Secret/{name}", body, token=token)
    put_metadata(client, who, folder, token, v2_document(2, "with-file"))
    assert unlock(client, who, folder, token).status_code == 200
    return folder


# --- listings under a lock ------------------------------------------------------------------


def test_listing_hides_staged_uploads_and_shows_staged_deletes(wsgi_client, alice):
    folder = folder_with_file(wsgi_client, alice)
    token = token_of(lock(wsgi_client, alice, folder, counter=3))
    put_blob(wsgi_client, alice, "Secret/new", b"n", token=token)
    response = wsgi_client.request(
        "MKCOL", dav_url("alice", "Secret/sub"), headers={**alice, "e2e-token": token}
    )
    assert response.status_code == 201
    response = wsgi_client.delete(
        dav_url("alice", "Secret/keep"), headers={**alice, "e2e-token": token}
    )
    assert response.status_code == 204
    assert names_in(folder) == ["keep.e2e-to-delete", "new.e2e-to-save", "sub.e2e-to-save"]

    listed = entries(propfind(wsgi_client, alice, "Secret"))
    assert sorted(listed) == ["Secret", "Secret/keep"]  # the committed state

    put_metadata(wsgi_client, alice, folder, token, v2_document(3))
    assert unlock(wsgi_client, alice, folder, token).status_code == 200
    listed = entries(propfind(wsgi_client, alice, "Secret"))
    assert sorted(listed) == ["Secret", "Secret/new", "Secret/sub"]  # twin: committed now


def test_staged_names_asked_for_directly_are_not_there(wsgi_client, alice):
    folder = folder_with_file(wsgi_client, alice, body=b"committed bytes")
    token = token_of(lock(wsgi_client, alice, folder, counter=3))
    put_blob(wsgi_client, alice, "Secret/new", b"staged bytes", token=token)
    staged = {**alice, "e2e-token": token}
    assert (
        wsgi_client.request("MKCOL", dav_url("alice", "Secret/sub"), headers=staged).status_code
        == 201
    )
    put_blob(wsgi_client, alice, "Secret/sub/inner", b"inner", token=token)
    wsgi_client.delete(dav_url("alice", "Secret/keep"), headers=staged)
    for path in (
        "Secret/new.e2e-to-save",
        "Secret/keep.e2e-to-delete",
        "Secret/sub.e2e-to-save/inner",
    ):
        for who in (alice, staged):  # not even for the lock holder
            assert wsgi_client.get(dav_url("alice", path), headers=who).status_code == 404, path
            assert wsgi_client.head(dav_url("alice", path), headers=who).status_code == 404
            assert propfind(wsgi_client, who, path, depth="0").status_code == 404
    assert propfind(wsgi_client, alice, "Secret/sub.e2e-to-save").status_code == 404
    # twin: the committed file under its own name, and after the unlock the new names
    assert (
        wsgi_client.get(dav_url("alice", "Secret/keep"), headers=alice).content
        == b"committed bytes"
    )
    put_metadata(wsgi_client, alice, folder, token, v2_document(3))
    assert unlock(wsgi_client, alice, folder, token).status_code == 200
    assert wsgi_client.get(dav_url("alice", "Secret/new"), headers=alice).content == b"staged bytes"


def test_a_folder_archive_under_a_lock_is_the_committed_state(wsgi_client, alice):
    import io
    import tarfile

    def archived() -> dict[str, bytes]:
        response = wsgi_client.get(
            dav_url("alice", "Secret"), headers={**alice, "Accept": "application/x-tar"}
        )
        assert response.status_code == 200, response.text
        with tarfile.open(fileobj=io.BytesIO(response.content), mode="r|") as archive:
            return {m.name: archive.extractfile(m).read() for m in archive if m.isfile()}

    folder = folder_with_file(wsgi_client, alice)
    token = token_of(lock(wsgi_client, alice, folder, counter=3))
    put_blob(wsgi_client, alice, "Secret/new", b"n", token=token)
    assert (
        wsgi_client.delete(
            dav_url("alice", "Secret/keep"), headers={**alice, "e2e-token": token}
        ).status_code
        == 204
    )
    assert archived() == {"Secret/keep": b"v1"}  # staged upload hidden, staged delete still there
    for name, status in (("new.e2e-to-save", 404), ("new", 404), ("keep", 200)):
        response = wsgi_client.get(
            dav_url("alice", "Secret"),
            params={"files": f'["{name}"]'},
            headers={**alice, "Accept": "application/x-tar"},
        )
        assert response.status_code == status, (name, response.text)
    put_metadata(wsgi_client, alice, folder, token, v2_document(3))
    assert unlock(wsgi_client, alice, folder, token).status_code == 200
    assert archived() == {"Secret/new": b"n"}  # twin: committed now


def test_suffixes_outside_encrypted_trees_are_plain_names(wsgi_client, alice):
    mkcol(wsgi_client, alice, "Plain")
    put_blob(wsgi_client, alice, "Plain/a.e2e-to-save", b"x")
    put_blob(wsgi_client, alice, "Plain/b.e2e-to-delete", b"y")
    listed = entries(propfind(wsgi_client, alice, "Plain"))
    assert sorted(listed) == ["Plain", "Plain/a.e2e-to-save", "Plain/b.e2e-to-delete"]
    assert wsgi_client.get(dav_url("alice", "Plain/b"), headers=alice).status_code == 404


def test_without_the_read_filter_staged_names_show(wsgi_client, alice, settings):
    folder = folder_with_file(wsgi_client, alice)
    token = token_of(lock(wsgi_client, alice, folder, counter=3))
    put_blob(wsgi_client, alice, "Secret/new", b"n", token=token)
    settings.WEBDAV_READ_FILTERS = []
    listed = entries(propfind(wsgi_client, alice, "Secret"))
    assert sorted(listed) == ["Secret", "Secret/keep", "Secret/new.e2e-to-save"]
    settings.WEBDAV_READ_FILTERS = ["webdav.e2ee.e2ee_read_filter"]
    assert sorted(entries(propfind(wsgi_client, alice, "Secret"))) == ["Secret", "Secret/keep"]


# --- GET/HEAD fall back to the staged delete ------------------------------------------------


def test_get_and_head_of_a_staged_delete_serve_the_committed_file(wsgi_client, alice):
    folder = folder_with_file(wsgi_client, alice, body=b"committed bytes")
    token = token_of(lock(wsgi_client, alice, folder, counter=3))
    wsgi_client.delete(dav_url("alice", "Secret/keep"), headers={**alice, "e2e-token": token})
    response = wsgi_client.get(dav_url("alice", "Secret/keep"), headers=alice)
    assert response.status_code == 200 and response.content == b"committed bytes"
    head = wsgi_client.head(dav_url("alice", "Secret/keep"), headers=alice)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(b"committed bytes"))
    depth0 = entries(propfind(wsgi_client, alice, "Secret/keep", depth="0"))
    assert list(depth0) == ["Secret/keep"]

    put_metadata(wsgi_client, alice, folder, token, v2_document(3))
    unlock(wsgi_client, alice, folder, token)
    assert wsgi_client.get(dav_url("alice", "Secret/keep"), headers=alice).status_code == 404


def test_a_staged_delete_is_not_resolved_for_writes(wsgi_client, alice):
    folder = folder_with_file(wsgi_client, alice)
    token = token_of(lock(wsgi_client, alice, folder, counter=3))
    gone = {**alice, "e2e-token": token}
    assert wsgi_client.delete(dav_url("alice", "Secret/keep"), headers=gone).status_code == 204
    # Deleting it again finds nothing: writes never resolve to the staged delete.
    assert wsgi_client.delete(dav_url("alice", "Secret/keep"), headers=gone).status_code == 404
    # A write to the deleted name is a new staged upload, not a write to the staged delete.
    response = put_blob(wsgi_client, alice, "Secret/keep", b"again", token=token)
    assert response.status_code in (201, 204)
    assert names_in(folder) == ["keep.e2e-to-delete", "keep.e2e-to-save"]


def test_get_of_a_name_never_there_is_404(wsgi_client, alice, outsider):
    folder_with_file(wsgi_client, alice)
    assert wsgi_client.get(dav_url("alice", "Secret/nothing"), headers=alice).status_code == 404
    assert wsgi_client.get(dav_url("alice", "Secret/keep"), headers=alice).status_code == 200


# --- clients without E2EE -------------------------------------------------------------------


def test_propfind_of_an_encrypted_folder_needs_an_e2ee_client(wsgi_client, alice):
    committed_folder(wsgi_client, alice)
    assert propfind(wsgi_client, browser(alice), "Secret").status_code == 403
    assert propfind(wsgi_client, browser(alice), "Secret", depth="0").status_code == 403
    assert propfind(wsgi_client, alice, "Secret").status_code == 207
    official = {**browser(alice), "User-Agent": "Mozilla/5.0 (Linux) mirall/3.16.0"}
    assert propfind(wsgi_client, official, "Secret").status_code == 207
    too_old = {**alice, "User-Agent": "Mozilla/5.0 (Linux) mirall/2.9.0"}
    assert propfind(wsgi_client, too_old, "Secret").status_code == 403


def test_plain_folders_stay_open_to_every_client(wsgi_client, alice):
    committed_folder(wsgi_client, alice)
    mkcol(wsgi_client, alice, "Plain")
    assert propfind(wsgi_client, browser(alice), "Plain").status_code == 207
    assert propfind(wsgi_client, browser(alice), "").status_code == 207


def test_permissions_of_encrypted_folders_are_blank_for_other_clients(wsgi_client, alice):
    committed_folder(wsgi_client, alice)
    mkcol(wsgi_client, alice, "Plain")
    listed = entries(propfind(wsgi_client, browser(alice), ""))
    assert listed["Secret"][OC + "permissions"] == ""
    assert listed["Plain"][OC + "permissions"] == "RGDNVCK"
    listed = entries(propfind(wsgi_client, alice, ""))
    assert listed["Secret"][OC + "permissions"] == "RGDNVCK"


def test_outsider_sees_nothing(wsgi_client, alice, outsider):
    committed_folder(wsgi_client, alice)
    assert propfind(wsgi_client, outsider, "Secret").status_code == 404
    assert propfind(wsgi_client, outsider, "Secret/missing").status_code == 404
    assert propfind(wsgi_client, alice, "Secret").status_code == 207


# --- properties -----------------------------------------------------------------------------


def test_encryption_properties(wsgi_client, alice):
    folder = folder_with_file(wsgi_client, alice)
    mkcol(wsgi_client, alice, "Plain")
    put_blob(wsgi_client, alice, "Plain/p.txt", b"p")
    root = entries(propfind(wsgi_client, alice, ""))
    assert root["Secret"][NC + "is-encrypted"] == "1"
    assert root["Secret"][NC + "e2ee-is-encrypted"] == "1"
    assert root["Plain"][NC + "is-encrypted"] == "0"
    assert root["Plain"][NC + "e2ee-is-encrypted"] == "0"
    inside = entries(propfind(wsgi_client, alice, "Secret"))
    assert inside["Secret/keep"][NC + "e2ee-is-encrypted"] == "1"
    assert NC + "is-encrypted" not in inside["Secret/keep"]  # folders only
    plain = entries(propfind(wsgi_client, alice, "Plain"))
    assert plain["Plain/p.txt"][NC + "e2ee-is-encrypted"] == "0"
    assert inside["Secret"][OC + "fileid"] == str(folder)


def test_metadata_properties_show_the_committed_document(wsgi_client, alice):
    folder = folder_with_file(wsgi_client, alice)
    props = entries(propfind(wsgi_client, alice, "Secret", depth="0"))["Secret"]
    assert props[NC + "e2ee-metadata"] == v2_document(2, "with-file")
    assert props[NC + "e2ee-metadata-signature"] == SIGNATURE

    token = token_of(lock(wsgi_client, alice, folder, counter=3))
    put_metadata(wsgi_client, alice, folder, token, v2_document(3, "staged"), signature="U0lH")
    props = entries(propfind(wsgi_client, alice, "Secret", depth="0"))["Secret"]
    assert props[NC + "e2ee-metadata"] == v2_document(2, "with-file")  # staged: not yet
    unlock(wsgi_client, alice, folder, token)
    props = entries(propfind(wsgi_client, alice, "Secret", depth="0"))["Secret"]
    assert props[NC + "e2ee-metadata"] == v2_document(3, "staged")
    assert props[NC + "e2ee-metadata-signature"] == "U0lH"


@pytest.mark.parametrize("path", ["Plain", "Fresh"])
def test_no_metadata_property_without_committed_metadata(wsgi_client, alice, path):
    if path == "Plain":
        mkcol(wsgi_client, alice, path)
    else:
        encrypted_folder(wsgi_client, alice, path)  # flagged, no metadata yet
    props = entries(propfind(wsgi_client, alice, path, depth="0"))[path]
    assert NC + "e2ee-metadata" not in props
    assert NC + "e2ee-metadata-signature" not in props
    assert OC + "fileid" in props  # twin: the rest is answered


def test_allprop_lists_the_e2ee_properties_of_encrypted_folders(wsgi_client, alice):
    committed_folder(wsgi_client, alice)
    response = wsgi_client.request(
        "PROPFIND", dav_url("alice", "Secret"), headers={**alice, "Depth": "0"}
    )
    props = entries(response)["Secret"]
    assert props[NC + "e2ee-metadata"] == v2_document()
    assert props[NC + "e2ee-is-encrypted"] == "1"
