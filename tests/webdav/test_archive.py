"""GET on a folder as a tar or zip archive (Nextcloud 30's folder download), through the real
WSGI callable: whole folders, chosen members, the errors, and what stays as it was."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

import pytest

from server.files.models import Node

A = "/remote.php/dav/files/alice"
TAR = {"Accept": "application/x-tar"}


def put(client, path: str, data: bytes, **headers: str) -> None:  # type: ignore[no-untyped-def]
    assert client.put(path, content=data, headers=headers).status_code in (201, 204)


@pytest.fixture
def tree(alice):  # type: ignore[no-untyped-def]
    """alice's /docs: a.txt, b.bin (2 blocks and a bit), sub/c.txt, empty/."""
    for folder in ("docs", "docs/sub", "docs/empty"):
        assert alice.request("MKCOL", f"{A}/{folder}").status_code == 201
    files = {"a.txt": b"alpha", "b.bin": bytes(range(256)) * 5, "sub/c.txt": b"gamma"}
    for name, data in files.items():
        put(alice, f"{A}/docs/{name}", data, **{"X-OC-MTime": "1600000000"})
    return files


def untar(body: bytes) -> dict[str, bytes | None]:
    """name -> bytes (None for a folder), read the way a streaming client reads it."""
    members: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=io.BytesIO(body), mode="r|") as archive:
        for member in archive:
            handle = archive.extractfile(member) if member.isfile() else None
            members[member.name] = handle.read() if handle else None
    return members


def test_a_folder_with_accept_tar_is_one_archive_of_everything_below_it(alice, tree):
    response = alice.get(f"{A}/docs", headers=TAR)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-tar"
    assert int(response.headers["content-length"]) == len(response.content)
    assert 'filename="docs.tar"' in response.headers["content-disposition"]
    assert untar(response.content) == {
        "docs": None,
        "docs/a.txt": b"alpha",
        "docs/b.bin": tree["b.bin"],
        "docs/empty": None,
        "docs/sub": None,
        "docs/sub/c.txt": b"gamma",
    }
    with tarfile.open(fileobj=io.BytesIO(response.content)) as archive:
        assert archive.getmember("docs/a.txt").mtime == 1600000000


def test_the_root_folder_is_called_download(alice, tree):
    names = untar(alice.get(f"{A}/", headers=TAR).content)
    assert "download/docs/sub/c.txt" in names


def test_files_query_and_x_nc_files_header_choose_members_named_as_given(alice, tree):
    chosen = json.dumps(["a.txt", "sub/c.txt"])
    by_query = alice.get(f"{A}/docs", params={"files": chosen}, headers=TAR)
    assert untar(by_query.content) == {"a.txt": b"alpha", "sub/c.txt": b"gamma"}
    by_header = alice.get(f"{A}/docs", headers={**TAR, "X-NC-Files": "b.bin, sub"})
    assert untar(by_header.content) == {"b.bin": tree["b.bin"], "sub": None, "sub/c.txt": b"gamma"}


def test_accept_query_parameter_and_zip(alice, tree):
    response = alice.get(f"{A}/docs", params={"accept": "zip"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.testzip() is None  # every CRC checks
        assert archive.read("docs/b.bin") == tree["b.bin"]
        assert archive.read("docs/sub/c.txt") == b"gamma"
        assert "docs/empty/" in archive.namelist()


def test_a_missing_member_is_404_before_anything_is_sent(alice, tree):
    response = alice.get(
        f"{A}/docs", params={"files": json.dumps(["a.txt", "nope.txt"])}, headers=TAR
    )
    assert response.status_code == 404
    assert "nope.txt" in response.text


@pytest.mark.parametrize("files", ["not json", json.dumps([1, 2]), json.dumps(["", "/"])])
def test_a_malformed_files_parameter_is_400(alice, tree, files):
    response = alice.get(f"{A}/docs", params={"files": files}, headers=TAR)
    assert response.status_code == 400
    assert "JSON array of names" in response.text


def test_without_an_archive_accept_a_folder_get_is_refused_as_before(alice, tree):
    assert alice.get(f"{A}/docs").status_code == 403
    assert alice.get(f"{A}/docs", headers={"Accept": "text/html"}).status_code == 403


def test_a_file_with_accept_tar_is_just_the_file(alice, tree):
    response = alice.get(f"{A}/docs/a.txt", headers=TAR)
    assert response.status_code == 200
    assert response.content == b"alpha"


def test_someone_elses_folder_is_not_found(alice, bob, tree):
    assert bob.get(f"{A}/docs", headers=TAR).status_code == 404
    assert alice.get(f"{A}/docs", headers=TAR).status_code == 200  # the owner's twin


def test_a_shared_folder_is_an_archive_for_its_sharee(alice, bob, tree):
    from server.sharing.models import Share
    from server.sharing.services import share_create

    owner = Node.objects.get(name="docs").owner
    share_create(
        user=owner,
        path="/docs",
        share_type=Share.Type.USER,
        share_with="bob",
        permissions_requested=1,
    )
    names = untar(bob.get("/remote.php/dav/files/bob/docs", headers=TAR).content)
    assert names["docs/sub/c.txt"] == b"gamma"


def test_a_blob_that_breaks_off_ends_the_archive_early(alice, tree, blob_dir):
    node = Node.objects.get(name="b.bin")
    blob = next(path for path in blob_dir.rglob(node.blob_key))
    blob.write_bytes(blob.read_bytes()[:100])
    response = alice.get(f"{A}/docs", headers=TAR)
    assert len(response.content) < int(response.headers["content-length"])  # cut off
    with pytest.raises(tarfile.ReadError):
        untar(response.content)
    blob.write_bytes(tree["b.bin"])  # the twin: whole again, whole archive
    assert untar(alice.get(f"{A}/docs", headers=TAR).content)["docs/b.bin"] == tree["b.bin"]


def test_nothing_is_changed_by_an_archive_download(alice, tree):
    before = list(Node.objects.order_by("id").values_list("id", "etag", "size", "mtime"))
    alice.get(f"{A}/docs", headers=TAR)
    assert list(Node.objects.order_by("id").values_list("id", "etag", "size", "mtime")) == before
