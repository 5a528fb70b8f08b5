"""Legacy chunked upload (OC-Chunked: 1), as the Nextcloud desktop client sends large files."""

from __future__ import annotations

import hashlib

import pytest

from server.files.models import Node, UploadChunk

A = "/remote.php/dav/files/alice"


def piece(client, name: str, transfer: str, count: int, index: int, data: bytes,  # type: ignore[no-untyped-def]
          **headers: str):
    return client.put(f"{A}/{name}-chunking-{transfer}-{count}-{index}", content=data,
                      headers={"OC-Chunked": "1", **headers})


def test_pieces_become_one_file_when_the_set_is_complete(alice, blob_dir,
                                                         django_capture_on_commit_callbacks):
    parts = [b"a" * 1000, b"b" * 1000, b"c" * 10]
    whole = b"".join(parts)
    checksum = "SHA1:" + hashlib.sha1(whole).hexdigest()
    with django_capture_on_commit_callbacks(execute=True):
        first = piece(alice, "big.bin", "77", 3, 0, parts[0], **{"X-OC-MTime": "1600000000"})
        middle = piece(alice, "big.bin", "77", 3, 1, parts[1], **{"X-OC-MTime": "1600000000"})
        last = piece(alice, "big.bin", "77", 3, 2, parts[2], **{"X-OC-MTime": "1600000000",
                                                                 "OC-Checksum": checksum})
    # No ETag until the file exists: that is how the client tells "more pieces please".
    for response in (first, middle):
        assert response.status_code == 201 and "ETag" not in response.headers
        assert "OC-FileId" not in response.headers
    assert last.status_code == 201
    node = Node.objects.get(name="big.bin")
    assert last.headers["ETag"] == f'"{node.etag}"'
    assert last.headers["OC-FileId"].startswith(f"{node.id:08d}")
    assert last.headers["X-OC-MTime"] == "accepted"
    assert (node.size, node.mtime, node.checksum) == (len(whole), 1600000000, checksum)
    assert alice.get(f"{A}/big.bin").content == whole
    # The pieces are gone, rows and blobs; only the file's blob is left.
    assert not UploadChunk.objects.exists()
    assert [p.name for p in blob_dir.glob("??/??/*")] == [node.blob_key]
    assert set(Node.objects.values_list("name", flat=True)) == {"", "big.bin"}


def test_pieces_in_any_order(alice):
    piece(alice, "f", "5", 2, 1, b"second")
    assert not Node.objects.filter(name="f").exists()
    assert piece(alice, "f", "5", 2, 0, b"first-").status_code == 201
    assert alice.get(f"{A}/f").content == b"first-second"


def test_chunked_overwrite_keeps_the_file_id(alice):
    created = alice.put(f"{A}/f", content=b"old")
    piece(alice, "f", "9", 2, 0, b"new ")
    response = piece(alice, "f", "9", 2, 1, b"content")
    assert response.headers["OC-FileId"] == created.headers["OC-FileId"]
    assert alice.get(f"{A}/f").content == b"new content"


def test_a_wrong_whole_file_checksum_keeps_the_old_version(alice, blob_dir,
                                                           django_capture_on_commit_callbacks):
    alice.put(f"{A}/f", content=b"old")
    with django_capture_on_commit_callbacks(execute=True):
        piece(alice, "f", "3", 2, 0, b"aa")
        bad = piece(alice, "f", "3", 2, 1, b"bb", **{"OC-Checksum": "SHA1:" + "0" * 40})
    assert bad.status_code == 400
    assert alice.get(f"{A}/f").content == b"old"
    assert not UploadChunk.objects.exists()
    assert len(list(blob_dir.glob("??/??/*"))) == 1


def test_an_incomplete_set_is_invisible(alice):
    piece(alice, "f", "4", 3, 0, b"x")
    piece(alice, "f", "4", 3, 1, b"y")
    assert alice.get(f"{A}/f").status_code == 404
    listing = alice.request("PROPFIND", A + "/", headers={"Depth": "1"})
    assert "chunking" not in listing.text


@pytest.mark.parametrize("name", ["f-chunking-1-2-2", "f-chunking-1-0-0", "f-chunking-x-2-0",
                                  "no-pattern"])
def test_malformed_piece_names_are_400(alice, name):
    response = alice.put(f"{A}/{name}", content=b"x", headers={"OC-Chunked": "1"})
    assert response.status_code == 400
    assert not UploadChunk.objects.exists() and not Node.objects.filter(kind="file").exists()


def test_without_the_header_a_chunk_like_name_is_an_ordinary_file(alice):  # twin
    assert alice.put(f"{A}/f-chunking-1-2-0", content=b"x").status_code == 201
    assert Node.objects.filter(name="f-chunking-1-2-0").exists()


def test_pieces_into_someone_elses_tree_are_404(alice, bob):
    response = alice.put("/remote.php/dav/files/bob/f-chunking-1-1-0", content=b"x",
                         headers={"OC-Chunked": "1"})
    assert response.status_code == 404
    assert not UploadChunk.objects.exists()
