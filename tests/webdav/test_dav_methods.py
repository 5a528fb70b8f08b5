"""Every WebDAV method and property, through the real WSGI callable (in-process)."""

from __future__ import annotations

import hashlib
import re
from email.utils import parsedate_to_datetime

import pytest

from server.files.models import Node

from .davxml import DAV, NC, OC, prop_text, propfind

A = "/remote.php/dav/files/alice"
OC_ID = re.compile(r"^(\d{8})(oc[0-9a-z]{10})$")


def put(client, path: str, data: bytes = b"content", **headers: str):  # type: ignore[no-untyped-def]
    response = client.put(path, content=data, headers=headers)
    assert response.status_code in (201, 204), (response.status_code, response.text)
    return response


def mkcol(client, path: str) -> None:  # type: ignore[no-untyped-def]
    response = client.request("MKCOL", path)
    assert response.status_code == 201, response.text


# --- PROPFIND ------------------------------------------------------------------------------


def test_propfind_depth0_on_the_root_has_folder_properties(alice):
    props = propfind(alice, A + "/")[A + "/"]
    root = Node.objects.get(owner__username="alice", parent=None)
    assert props[DAV + "resourcetype"].find(DAV + "collection") is not None
    assert prop_text(props, OC + "fileid") == str(root.id)
    assert prop_text(props, OC + "permissions") == "RGDNVCK"
    assert prop_text(props, NC + "is-encrypted") == "0"
    assert prop_text(props, DAV + "getetag") == f'"{root.etag}"'
    assert prop_text(props, DAV + "quota-available-bytes") == "-3"


def test_propfind_depth1_lists_members_with_nextcloud_properties(alice):
    mkcol(alice, A + "/folder")
    put(alice, A + "/folder/file.txt", b"12345")
    listing = propfind(alice, A + "/folder", depth="1")
    assert set(listing) == {A + "/folder/", A + "/folder/file.txt"}

    folder, file = listing[A + "/folder/"], listing[A + "/folder/file.txt"]
    node = Node.objects.get(name="file.txt")
    assert prop_text(file, OC + "fileid") == str(node.id)
    match = OC_ID.match(prop_text(file, OC + "id"))
    assert match and int(match.group(1)) == node.id
    assert prop_text(file, OC + "permissions") == "RGDNVW"
    assert prop_text(file, OC + "size") == "5"
    assert prop_text(file, DAV + "getcontentlength") == "5"
    assert prop_text(file, DAV + "getcontenttype") == "text/plain"
    assert prop_text(file, DAV + "getetag") == f'"{node.etag}"'
    assert file[DAV + "resourcetype"].find(DAV + "collection") is None
    # Folders: recursive size, is-encrypted; files never carry is-encrypted.
    assert prop_text(folder, OC + "size") == "5"
    assert prop_text(folder, DAV + "quota-used-bytes") == "5"
    assert prop_text(folder, NC + "is-encrypted") == "0"
    assert NC + "is-encrypted" not in file


def test_propfind_is_encrypted_follows_the_flag(alice):
    from server.files.services import node_set_encrypted

    mkcol(alice, A + "/secret")
    node = Node.objects.get(name="secret")
    assert prop_text(propfind(alice, A + "/secret")[A + "/secret/"], NC + "is-encrypted") == "0"
    node_set_encrypted(user=node.owner, node=node, encrypted=True)
    # Seen from its parent: clients without E2EE may not PROPFIND the folder itself (403).
    listing = propfind(alice, A + "/", depth="1")
    assert prop_text(listing[A + "/secret/"], NC + "is-encrypted") == "1"


def test_propfind_getlastmodified_is_the_node_mtime(alice):
    put(alice, A + "/f", b"x", **{"X-OC-MTime": "1600000000"})
    text = prop_text(propfind(alice, A + "/f")[A + "/f"], DAV + "getlastmodified")
    assert parsedate_to_datetime(text).timestamp() == 1600000000


def test_propfind_checksums_only_when_known(alice):
    data = b"checked"
    put(alice, A + "/with", data, **{"OC-Checksum": "SHA1:" + hashlib.sha1(data).hexdigest()})
    put(alice, A + "/without", data)
    listing = propfind(alice, A + "/", depth="1")
    checksum = listing[A + "/with"][OC + "checksums"].findtext(OC + "checksum")
    assert checksum == "SHA1:" + hashlib.sha1(data).hexdigest()
    assert OC + "checksums" not in listing[A + "/without"]


def test_propfind_depth_infinity_answers_like_depth_1(alice):
    mkcol(alice, A + "/a")
    mkcol(alice, A + "/a/b")
    put(alice, A + "/a/b/deep.txt")
    listing = propfind(alice, A + "/", depth="infinity")
    assert set(listing) == {A + "/", A + "/a/"}


def test_propfind_allprop_includes_nextcloud_properties(alice):
    put(alice, A + "/f")
    response = alice.request("PROPFIND", A + "/f", headers={"Depth": "0"})
    assert response.status_code == 207
    assert "http://owncloud.org/ns" in response.text and "fileid" in response.text


def test_propfind_missing_path_is_404(alice):
    assert alice.request("PROPFIND", A + "/nope", headers={"Depth": "0"}).status_code == 404


def test_legacy_webdav_root_is_the_users_own_tree(alice):
    put(alice, A + "/mine.txt", b"mine")
    listing = propfind(alice, "/remote.php/webdav/", depth="1")
    assert "/remote.php/webdav/mine.txt" in listing
    assert alice.get("/remote.php/webdav/mine.txt").content == b"mine"


# --- GET / HEAD ----------------------------------------------------------------------------


def test_get_returns_bytes_and_nextcloud_headers(alice):
    created = put(alice, A + "/data.bin", bytes(range(256)) * 10)
    response = alice.get(A + "/data.bin")
    assert response.status_code == 200
    assert response.content == bytes(range(256)) * 10
    assert response.headers["Content-Length"] == "2560"
    assert response.headers["ETag"] == created.headers["ETag"]
    assert response.headers["OC-FileId"] == created.headers["OC-FileId"]
    assert response.headers["Accept-Ranges"] == "bytes"


def test_get_with_range_returns_206_and_the_slice(alice):
    put(alice, A + "/r.bin", bytes(range(100)))
    response = alice.get(A + "/r.bin", headers={"Range": "bytes=10-19"})
    assert response.status_code == 206
    assert response.content == bytes(range(10, 20))
    assert response.headers["Content-Range"] == "bytes 10-19/100"


def test_get_with_open_ended_and_suffix_ranges(alice):
    put(alice, A + "/r.bin", bytes(range(100)))
    assert alice.get(A + "/r.bin", headers={"Range": "bytes=95-"}).content == bytes(range(95, 100))
    assert alice.get(A + "/r.bin", headers={"Range": "bytes=-3"}).content == bytes([97, 98, 99])


def test_get_with_unsatisfiable_range_is_416(alice):
    put(alice, A + "/r.bin", bytes(range(100)))
    assert alice.get(A + "/r.bin", headers={"Range": "bytes=500-600"}).status_code == 416


def test_head_has_headers_and_no_body(alice):
    put(alice, A + "/h.txt", b"123456")
    response = alice.head(A + "/h.txt")
    assert response.status_code == 200
    assert response.headers["Content-Length"] == "6"
    assert response.content == b""


def test_get_missing_file_is_404(alice):
    assert alice.get(A + "/missing").status_code == 404


def test_get_with_if_none_match_current_etag_is_304(alice):
    etag = put(alice, A + "/c.txt").headers["ETag"]
    assert alice.get(A + "/c.txt", headers={"If-None-Match": etag}).status_code == 304


# --- PUT -----------------------------------------------------------------------------------


def test_put_new_file_answers_201_with_file_id_and_etags(alice):
    response = put(alice, A + "/new.txt", b"hello")
    node = Node.objects.get(name="new.txt")
    assert response.status_code == 201
    assert response.headers["OC-FileId"] == f"{node.id:08d}" + OC_ID.match(
        response.headers["OC-FileId"]).group(2)
    assert response.headers["ETag"] == f'"{node.etag}"'
    assert response.headers["OC-ETag"] == f'"{node.etag}"'
    assert "X-OC-MTime" not in response.headers
    assert node.size == 5


def test_put_overwrite_answers_204_keeps_id_changes_etag(alice):
    first = put(alice, A + "/f.txt", b"one")
    second = put(alice, A + "/f.txt", b"second version")
    assert second.status_code == 204
    assert second.headers["OC-FileId"] == first.headers["OC-FileId"]
    assert second.headers["ETag"] != first.headers["ETag"]
    assert alice.get(A + "/f.txt").content == b"second version"


def test_put_honours_x_oc_mtime_and_says_so(alice):
    response = put(alice, A + "/m.txt", b"x", **{"X-OC-MTime": "1500000000"})
    assert response.headers["X-OC-MTime"] == "accepted"
    assert Node.objects.get(name="m.txt").mtime == 1500000000


def test_put_with_invalid_x_oc_mtime_is_400_and_writes_nothing(alice):
    response = alice.put(A + "/m.txt", content=b"x", headers={"X-OC-MTime": "yesterday"})
    assert response.status_code == 400
    assert not Node.objects.filter(name="m.txt").exists()


def test_put_empty_file(alice):
    put(alice, A + "/empty", b"")
    assert alice.get(A + "/empty").content == b""
    assert Node.objects.get(name="empty").size == 0


def test_put_with_matching_checksum_is_stored(alice):
    data = b"verified"
    digest = hashlib.sha1(data).hexdigest()
    put(alice, A + "/v.txt", data, **{"OC-Checksum": f"SHA1:{digest}"})
    assert Node.objects.get(name="v.txt").checksum == f"SHA1:{digest}"
    assert alice.get(A + "/v.txt").headers["OC-Checksum"] == f"SHA1:{digest}"


def test_put_with_wrong_checksum_is_400_and_keeps_the_old_version(alice, blob_dir):
    put(alice, A + "/v.txt", b"old")
    before = Node.objects.get(name="v.txt")
    response = alice.put(A + "/v.txt", content=b"new",
                         headers={"OC-Checksum": "SHA1:" + hashlib.sha1(b"other").hexdigest()})
    assert response.status_code == 400
    after = Node.objects.get(name="v.txt")
    assert (after.etag, after.blob_key) == (before.etag, before.blob_key)
    assert alice.get(A + "/v.txt").content == b"old"
    assert not any((blob_dir / "tmp").iterdir())


def test_put_with_unsupported_checksum_type_is_400(alice):
    response = alice.put(A + "/v.txt", content=b"x", headers={"OC-Checksum": "CRC99:abcd"})
    assert response.status_code == 400
    assert not Node.objects.filter(name="v.txt").exists()


def test_put_onto_a_folder_is_405(alice):
    mkcol(alice, A + "/dir")
    assert alice.put(A + "/dir", content=b"x").status_code == 405


def test_put_under_missing_parent_is_409(alice):
    response = alice.put(A + "/no/such/parent.txt", content=b"x")
    assert response.status_code == 409
    assert not Node.objects.filter(name="parent.txt").exists()


def test_put_under_existing_parent_is_201(alice):  # the positive twin of the 409
    mkcol(alice, A + "/no")
    assert alice.put(A + "/no/parent.txt", content=b"x").status_code == 201


def test_put_with_if_match_of_a_stale_etag_is_412(alice):
    stale = put(alice, A + "/f.txt", b"1").headers["ETag"]
    put(alice, A + "/f.txt", b"2")
    assert alice.put(A + "/f.txt", content=b"3", headers={"If-Match": stale}).status_code == 412
    assert alice.get(A + "/f.txt").content == b"2"


def test_put_updates_ancestor_etags_and_sizes(alice):
    mkcol(alice, A + "/a")
    mkcol(alice, A + "/a/b")
    mkcol(alice, A + "/other")
    before = propfind(alice, A + "/", depth="1")
    put(alice, A + "/a/b/f.txt", b"1234")
    after = propfind(alice, A + "/", depth="1")
    for path in (A + "/", A + "/a/"):
        assert prop_text(after[path], DAV + "getetag") != prop_text(before[path], DAV + "getetag")
        assert prop_text(after[path], OC + "size") == "4"
    other = A + "/other/"
    assert prop_text(after[other], DAV + "getetag") == prop_text(before[other], DAV + "getetag")


def test_put_names_with_spaces_and_non_ascii(alice):
    name = "Überweisung März 2026 – 日本.txt"
    put(alice, f"{A}/{name}", b"u")
    assert alice.get(f"{A}/{name}").content == b"u"
    assert f"{A}/{name}" in propfind(alice, A + "/", depth="1")


def test_put_with_chunked_transfer_encoding(alice):
    def body():  # type: ignore[no-untyped-def]
        yield b"part one, "
        yield b"part two"

    response = alice.put(A + "/chunked.txt", content=body())
    assert response.status_code == 201
    assert alice.get(A + "/chunked.txt").content == b"part one, part two"


# --- MKCOL ---------------------------------------------------------------------------------


def test_mkcol_creates_a_folder(alice):
    response = alice.request("MKCOL", A + "/made")
    assert response.status_code == 201
    node = Node.objects.get(name="made")
    assert node.is_dir and response.headers["OC-FileId"].startswith(f"{node.id:08d}")


def test_mkcol_on_existing_name_is_405(alice):
    mkcol(alice, A + "/made")
    assert alice.request("MKCOL", A + "/made").status_code == 405


def test_mkcol_under_missing_parent_is_409(alice):
    assert alice.request("MKCOL", A + "/x/y").status_code == 409


def test_mkcol_honours_x_oc_mtime(alice):
    response = alice.request("MKCOL", A + "/timed", headers={"X-OC-MTime": "1400000000"})
    assert response.status_code == 201 and response.headers["X-OC-MTime"] == "accepted"
    assert Node.objects.get(name="timed").mtime == 1400000000


# --- DELETE --------------------------------------------------------------------------------


def test_delete_file_removes_row_and_blob(alice, blob_dir, django_capture_on_commit_callbacks):
    put(alice, A + "/gone.txt", b"bye")
    with django_capture_on_commit_callbacks(execute=True):
        assert alice.delete(A + "/gone.txt").status_code == 204
    assert not Node.objects.filter(name="gone.txt").exists()
    assert not list(blob_dir.glob("??/??/*"))
    assert alice.get(A + "/gone.txt").status_code == 404


def test_delete_folder_removes_the_subtree(alice, blob_dir, django_capture_on_commit_callbacks):
    mkcol(alice, A + "/tree")
    mkcol(alice, A + "/tree/sub")
    put(alice, A + "/tree/sub/leaf.txt")
    put(alice, A + "/keep.txt")
    with django_capture_on_commit_callbacks(execute=True):
        assert alice.delete(A + "/tree").status_code == 204
    assert sorted(Node.objects.values_list("name", flat=True)) == ["", "keep.txt"]
    assert len(list(blob_dir.glob("??/??/*"))) == 1


def test_delete_missing_is_404(alice):
    assert alice.delete(A + "/missing").status_code == 404


def test_delete_root_is_refused(alice):
    assert alice.delete(A + "/").status_code == 403
    assert Node.objects.filter(parent=None).exists()


# --- MOVE / COPY ---------------------------------------------------------------------------


def dest(path: str) -> dict[str, str]:
    return {"Destination": "http://testserver" + path}


def test_move_renames_keeping_file_id_and_etag(alice):
    created = put(alice, A + "/old.txt", b"payload")
    response = alice.request("MOVE", A + "/old.txt", headers=dest(A + "/new.txt"))
    assert response.status_code == 201
    assert response.headers["OC-FileId"] == created.headers["OC-FileId"]
    assert response.headers["OC-ETag"] == created.headers["ETag"]
    assert alice.get(A + "/new.txt").content == b"payload"
    assert alice.get(A + "/old.txt").status_code == 404


def test_move_folder_into_another_folder(alice):
    mkcol(alice, A + "/src")
    put(alice, A + "/src/f.txt", b"abc")
    mkcol(alice, A + "/dst")
    assert alice.request("MOVE", A + "/src", headers=dest(A + "/dst/src")).status_code == 201
    assert alice.get(A + "/dst/src/f.txt").content == b"abc"
    listing = propfind(alice, A + "/", depth="1")
    assert prop_text(listing[A + "/dst/"], OC + "size") == "3"


def test_move_overwrite_existing_is_204(alice):
    put(alice, A + "/a.txt", b"A")
    put(alice, A + "/b.txt", b"B")
    assert alice.request("MOVE", A + "/a.txt", headers=dest(A + "/b.txt")).status_code == 204
    assert alice.get(A + "/b.txt").content == b"A"


def test_move_with_overwrite_f_onto_existing_is_412(alice):
    put(alice, A + "/a.txt", b"A")
    put(alice, A + "/b.txt", b"B")
    response = alice.request("MOVE", A + "/a.txt", headers={**dest(A + "/b.txt"), "Overwrite": "F"})
    assert response.status_code == 412
    assert alice.get(A + "/b.txt").content == b"B"


def test_move_into_missing_folder_is_409(alice):
    put(alice, A + "/a.txt")
    assert alice.request("MOVE", A + "/a.txt", headers=dest(A + "/no/a.txt")).status_code == 409


def test_move_folder_below_itself_is_refused(alice):
    mkcol(alice, A + "/loop")
    response = alice.request("MOVE", A + "/loop", headers=dest(A + "/loop/inner"))
    assert response.status_code == 403


def test_copy_makes_an_independent_copy(alice, blob_dir):
    created = put(alice, A + "/orig.txt", b"original")
    response = alice.request("COPY", A + "/orig.txt", headers=dest(A + "/copy.txt"))
    assert response.status_code == 201
    assert response.headers["OC-FileId"] != created.headers["OC-FileId"]
    put(alice, A + "/orig.txt", b"changed")
    assert alice.get(A + "/copy.txt").content == b"original"
    keys = set(Node.objects.exclude(blob_key="").values_list("blob_key", flat=True))
    assert len(keys) == 2


def test_copy_folder_deep(alice):
    mkcol(alice, A + "/d")
    mkcol(alice, A + "/d/e")
    put(alice, A + "/d/e/f.txt", b"deep")
    assert alice.request("COPY", A + "/d", headers=dest(A + "/d2")).status_code == 201
    assert alice.get(A + "/d2/e/f.txt").content == b"deep"
    assert Node.objects.filter(name="f.txt").count() == 2


# --- PROPPATCH -----------------------------------------------------------------------------

PROPPATCH = """<?xml version="1.0"?>
<d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">
  <d:set><d:prop>{}</d:prop></d:set>
</d:propertyupdate>"""


def test_proppatch_lastmodified_sets_mtime(alice):
    put(alice, A + "/p.txt")
    etag = Node.objects.get(name="p.txt").etag
    body = PROPPATCH.format("<d:lastmodified>1234567890</d:lastmodified>")
    response = alice.request("PROPPATCH", A + "/p.txt", content=body)
    assert response.status_code == 207 and "200 OK" in response.text
    node = Node.objects.get(name="p.txt")
    assert node.mtime == 1234567890
    assert node.etag != etag


def test_proppatch_lastmodified_accepts_an_http_date(alice):
    put(alice, A + "/p.txt")
    body = PROPPATCH.format("<d:lastmodified>Fri, 13 Feb 2009 23:31:30 GMT</d:lastmodified>")
    assert alice.request("PROPPATCH", A + "/p.txt", content=body).status_code == 207
    assert Node.objects.get(name="p.txt").mtime == 1234567890


def test_proppatch_of_other_properties_is_refused_in_the_multistatus(alice):
    put(alice, A + "/p.txt")
    mtime = Node.objects.get(name="p.txt").mtime
    body = PROPPATCH.format("<oc:fileid>7</oc:fileid>")
    response = alice.request("PROPPATCH", A + "/p.txt", content=body)
    assert response.status_code == 207 and "403 Forbidden" in response.text
    assert Node.objects.get(name="p.txt").mtime == mtime


@pytest.mark.parametrize("value", ["not a time", "-5"])
def test_proppatch_with_a_bad_time_changes_nothing(alice, value):
    put(alice, A + "/p.txt")
    mtime = Node.objects.get(name="p.txt").mtime
    body = PROPPATCH.format(f"<d:lastmodified>{value}</d:lastmodified>")
    response = alice.request("PROPPATCH", A + "/p.txt", content=body)
    assert response.status_code == 207 and "400 Bad Request" in response.text
    assert Node.objects.get(name="p.txt").mtime == mtime


def test_lock_is_not_offered(alice):
    put(alice, A + "/l.txt")
    assert alice.request("LOCK", A + "/l.txt").status_code == 405
