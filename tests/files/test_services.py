"""Services and selectors of the files app, on the test database and real blob files."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.db import IntegrityError

from server.files import selectors, services
from server.files.blobstore import get_blob_store
from server.files.errors import (
    ChecksumMismatch,
    KindMismatch,
    NameInvalid,
    NodeExists,
    NodeNotFound,
    OperationForbidden,
    ParentMissing,
    UploadIncomplete,
)
from server.files.models import Node

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def blob_dir(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.BLOB_DIR = tmp_path / "blobs"
    return settings.BLOB_DIR


@pytest.fixture
def alice(make_user):  # type: ignore[no-untyped-def]
    return make_user("alice")


@pytest.fixture
def root(alice):  # type: ignore[no-untyped-def]
    return services.node_root_get_or_create(user=alice)


def write(user, parent, name: str, data: bytes, **kwargs):  # type: ignore[no-untyped-def]
    return services.file_write(user=user, parent=parent, name=name, body=io.BytesIO(data),
                               expected_size=len(data), **kwargs)


def read(user, node) -> bytes:  # type: ignore[no-untyped-def]
    with selectors.file_open(user=user, node=node) as blob:
        return blob.read()


def blob_files(blob_dir) -> list:  # type: ignore[no-untyped-def]
    return sorted(blob_dir.glob("??/??/*"))


def temp_files(blob_dir) -> list:  # type: ignore[no-untyped-def]
    return sorted((blob_dir / "tmp").iterdir())


# --- roots and names ---


def test_root_is_created_once(alice):
    first = services.node_root_get_or_create(user=alice)
    assert services.node_root_get_or_create(user=alice).id == first.id
    assert first.is_dir and first.is_root and first.name == ""


def test_a_second_root_is_refused_by_the_database(alice, root):
    with pytest.raises(IntegrityError):
        Node.objects.create(owner=alice, parent=None, name="", kind="dir")


@pytest.mark.parametrize("name", ["", " ", ".", "..", "a/b", "a\\b", "nul\x00byte", "tab\there",
                                  "x" * 251, "ü" * 126])
def test_invalid_names_are_refused(alice, root, name):
    with pytest.raises(NameInvalid):
        services.node_create_dir(user=alice, parent=root, name=name)
    with pytest.raises(NameInvalid):
        write(alice, root, name, b"x")
    assert Node.objects.count() == 1


@pytest.mark.parametrize("name", ["a b", "..hidden", "a..b", ".sync_x", "日本語", "x" * 250,
                                  "100%", "emoji 🙂"])
def test_valid_names_are_accepted(alice, root, name):  # the positive twins
    node = write(alice, root, name, b"x").node
    assert node.name == name


# --- writes ---


def test_file_write_creates_a_row_and_one_blob(alice, root, blob_dir):
    result = write(alice, root, "f.txt", b"hello", mtime=1700000000)
    assert result.created
    node = result.node
    assert (node.size, node.mtime, node.kind) == (5, 1700000000, "file")
    assert read(alice, node) == b"hello"
    assert [p.name for p in blob_files(blob_dir)] == [node.blob_key]
    assert temp_files(blob_dir) == []


def test_overwrite_keeps_id_new_etag_new_blob_old_blob_removed_after_commit(
        alice, root, blob_dir, django_capture_on_commit_callbacks):
    first = write(alice, root, "f.txt", b"one").node
    with django_capture_on_commit_callbacks(execute=True):
        result = write(alice, root, "f.txt", b"two!")
    second = result.node
    assert not result.created
    assert second.id == first.id and second.etag != first.etag
    assert second.blob_key != first.blob_key
    assert [p.name for p in blob_files(blob_dir)] == [second.blob_key]
    assert read(alice, second) == b"two!"


def test_writes_propagate_etag_size_and_mtime_to_every_ancestor(alice, root):
    a = services.node_create_dir(user=alice, parent=root, name="a", mtime=1)
    b = services.node_create_dir(user=alice, parent=a, name="b", mtime=1)
    other = services.node_create_dir(user=alice, parent=root, name="other", mtime=1)
    before = {n.id: n.etag for n in Node.objects.all()}
    write(alice, b, "f", b"123")
    write(alice, b, "g", b"4567")
    for node in (root, a, b):
        node.refresh_from_db()
        assert node.etag != before[node.id]
        assert node.size == 7
        assert node.mtime > 1
    other.refresh_from_db()
    assert other.etag == before[other.id] and other.size == 0


def test_overwrite_propagates_the_size_difference(alice, root):
    d = services.node_create_dir(user=alice, parent=root, name="d")
    write(alice, d, "f", b"123456")
    write(alice, d, "f", b"12")
    d.refresh_from_db()
    root.refresh_from_db()
    assert d.size == 2 and root.size == 2


def test_matching_checksum_is_stored(alice, root):
    data = b"payload"
    checksum = "SHA1:" + hashlib.sha1(data).hexdigest().upper()
    node = write(alice, root, "f", data, checksum=checksum).node
    assert node.checksum == checksum.lower().replace("sha1", "SHA1")


@pytest.mark.parametrize("algorithm", ["MD5", "SHA256", "ADLER32"])
def test_other_checksum_types_are_verified(alice, root, algorithm):
    import zlib

    data = b"payload"
    digest = {"MD5": hashlib.md5(data).hexdigest(), "SHA256": hashlib.sha256(data).hexdigest(),
              "ADLER32": f"{zlib.adler32(data):08x}"}[algorithm]
    assert write(alice, root, "f", data, checksum=f"{algorithm}:{digest}").node.checksum
    with pytest.raises(ChecksumMismatch):
        write(alice, root, "g", b"other", checksum=f"{algorithm}:{digest}")


def test_checksum_mismatch_keeps_the_old_version_and_leaves_no_file(alice, root, blob_dir):
    old = write(alice, root, "f", b"old").node
    with pytest.raises(ChecksumMismatch):
        write(alice, root, "f", b"new", checksum="SHA1:" + hashlib.sha1(b"x").hexdigest())
    node = Node.objects.get(id=old.id)
    assert (node.etag, node.blob_key) == (old.etag, old.blob_key)
    assert read(alice, node) == b"old"
    assert [p.name for p in blob_files(blob_dir)] == [old.blob_key]
    assert temp_files(blob_dir) == []


def test_incomplete_body_leaves_no_row_and_no_file(alice, root, blob_dir):
    with pytest.raises(UploadIncomplete):
        services.file_write(user=alice, parent=root, name="f", body=io.BytesIO(b"short"),
                            expected_size=100)
    assert not Node.objects.filter(name="f").exists()
    assert blob_files(blob_dir) == [] and temp_files(blob_dir) == []


def test_a_failing_body_read_leaves_no_row_and_no_file(alice, root, blob_dir):
    class Broken(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def read(self, size: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 2:
                raise ConnectionResetError("client went away")
            return b"x" * 10

    with pytest.raises(ConnectionResetError):
        services.file_write(user=alice, parent=root, name="f", body=Broken())
    assert not Node.objects.filter(name="f").exists()
    assert blob_files(blob_dir) == [] and temp_files(blob_dir) == []


def test_a_failing_db_commit_removes_the_new_blob_and_keeps_the_old(
        alice, root, blob_dir, monkeypatch):
    old = write(alice, root, "f", b"old").node

    def fail(**kwargs):  # type: ignore[no-untyped-def]
        raise IntegrityError("simulated failure after the blob rename")

    monkeypatch.setattr(services, "_propagate", fail)
    with pytest.raises(IntegrityError):
        write(alice, root, "f", b"new")
    with pytest.raises(IntegrityError):
        write(alice, root, "brand-new", b"new")
    assert [p.name for p in blob_files(blob_dir)] == [old.blob_key]
    assert temp_files(blob_dir) == []
    assert read(alice, Node.objects.get(id=old.id)) == b"old"
    assert not Node.objects.filter(name="brand-new").exists()


def test_write_under_a_file_or_a_foreign_folder_is_parent_missing(alice, root, make_user):
    f = write(alice, root, "f", b"x").node
    with pytest.raises(ParentMissing):
        write(alice, f, "child", b"x")
    bob = make_user("bob")
    with pytest.raises(ParentMissing):
        write(bob, root, "intruder", b"x")
    assert not Node.objects.filter(name__in=["child", "intruder"]).exists()


def test_write_onto_a_folder_name_is_kind_mismatch(alice, root):
    services.node_create_dir(user=alice, parent=root, name="d")
    with pytest.raises(KindMismatch):
        write(alice, root, "d", b"x")


def test_create_dir_twice_is_node_exists(alice, root):
    services.node_create_dir(user=alice, parent=root, name="d")
    with pytest.raises(NodeExists):
        services.node_create_dir(user=alice, parent=root, name="d")


# --- move, copy, delete ---


def test_move_keeps_id_and_etag_and_moves_sizes(alice, root):
    src = services.node_create_dir(user=alice, parent=root, name="src")
    dst = services.node_create_dir(user=alice, parent=root, name="dst")
    f = write(alice, src, "f", b"12345").node
    moved = services.node_move(user=alice, node=f, new_parent=dst, new_name="g").node
    assert (moved.id, moved.etag) == (f.id, f.etag)
    src.refresh_from_db()
    dst.refresh_from_db()
    assert (src.size, dst.size) == (0, 5)
    assert selectors.node_path(node=moved) == "/dst/g"


def test_move_over_existing_replaces_it_and_removes_its_blob(
        alice, root, blob_dir, django_capture_on_commit_callbacks):
    a = write(alice, root, "a", b"A").node
    b = write(alice, root, "b", b"BB").node
    with django_capture_on_commit_callbacks(execute=True):
        result = services.node_move(user=alice, node=a, new_parent=root, new_name="b")
    assert result.replaced
    assert not Node.objects.filter(id=b.id).exists()
    assert [p.name for p in blob_files(blob_dir)] == [a.blob_key]
    root.refresh_from_db()
    assert root.size == 1


def test_move_without_overwrite_onto_existing_is_node_exists(alice, root):
    a = write(alice, root, "a", b"A").node
    write(alice, root, "b", b"B")
    with pytest.raises(NodeExists):
        services.node_move(user=alice, node=a, new_parent=root, new_name="b", overwrite=False)


def test_move_into_own_subtree_is_forbidden(alice, root):
    a = services.node_create_dir(user=alice, parent=root, name="a")
    b = services.node_create_dir(user=alice, parent=a, name="b")
    with pytest.raises(OperationForbidden):
        services.node_move(user=alice, node=a, new_parent=b, new_name="a")
    with pytest.raises(OperationForbidden):
        services.node_move(user=alice, node=root, new_parent=a, new_name="root")


def test_children_settle_renames_replaces_and_deletes_in_one_go(
        alice, root, blob_dir, django_capture_on_commit_callbacks):
    folder = services.node_create_dir(user=alice, parent=root, name="d")
    old = write(alice, folder, "a", b"old a").node
    new = write(alice, folder, "a.new", b"new a!").node
    fresh = write(alice, folder, "b.new", b"b").node
    gone = services.node_create_dir(user=alice, parent=folder, name="gone")
    inner = write(alice, gone, "inner", b"inner").node
    folder.refresh_from_db()
    etag_before, size_before = folder.etag, folder.size
    with django_capture_on_commit_callbacks(execute=True):
        services.children_settle(user=alice, parent=folder, deletes=[gone],
                                 renames={new.id: "a", fresh.id: "b"})
    names = dict(Node.objects.filter(parent=folder).values_list("name", "id"))
    assert names == {"a": new.id, "b": fresh.id}  # file ids kept, the replaced row gone
    assert read(alice, Node.objects.get(id=new.id)) == b"new a!"
    assert not Node.objects.filter(id__in=[old.id, gone.id, inner.id]).exists()
    assert sorted(p.name for p in blob_files(blob_dir)) == sorted([new.blob_key, fresh.blob_key])
    folder.refresh_from_db()
    root.refresh_from_db()
    assert folder.etag != etag_before
    assert folder.size == size_before - len(b"old a") - len(b"inner") == root.size


def test_children_settle_refuses_colliding_renames_and_changes_nothing(alice, root):
    folder = services.node_create_dir(user=alice, parent=root, name="d")
    a = write(alice, folder, "a", b"a").node
    b = write(alice, folder, "b", b"b").node
    with pytest.raises(OperationForbidden):  # a swap: one statement cannot do it
        services.children_settle(user=alice, parent=folder, deletes=[],
                                 renames={a.id: "b", b.id: "a"})
    with pytest.raises(OperationForbidden):  # two children onto one name
        services.children_settle(user=alice, parent=folder, deletes=[],
                                 renames={a.id: "c", b.id: "c"})
    with pytest.raises(NodeNotFound):  # only children of that folder
        services.children_settle(user=alice, parent=root, deletes=[], renames={a.id: "c"})
    assert dict(Node.objects.filter(parent=folder).values_list("name", "id")) == {
        "a": a.id, "b": b.id}


def test_copy_is_deep_with_new_ids_and_new_blobs(alice, root):
    d = services.node_create_dir(user=alice, parent=root, name="d")
    e = services.node_create_dir(user=alice, parent=d, name="e")
    f = write(alice, e, "f", b"deep").node
    copy = services.node_copy(user=alice, node=d, new_parent=root, new_name="d2").node
    copied_f = selectors.node_get_by_path(user=alice, root=root, parts=["d2", "e", "f"])
    assert copy.id != d.id and copied_f.id != f.id
    assert copied_f.blob_key != f.blob_key
    assert read(alice, copied_f) == b"deep"
    root.refresh_from_db()
    assert root.size == 8


def test_copy_into_own_subtree_is_forbidden(alice, root):
    a = services.node_create_dir(user=alice, parent=root, name="a")
    with pytest.raises(OperationForbidden):
        services.node_copy(user=alice, node=a, new_parent=a, new_name="a")


def test_delete_removes_subtree_and_blobs_after_commit(
        alice, root, blob_dir, django_capture_on_commit_callbacks):
    d = services.node_create_dir(user=alice, parent=root, name="d")
    write(alice, d, "f", b"1")
    sub = services.node_create_dir(user=alice, parent=d, name="sub")
    write(alice, sub, "g", b"22")
    keep = write(alice, root, "keep", b"333").node
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.node_delete(user=alice, node=d)
        # Blobs are still there until the transaction commits.
        assert len(blob_files(blob_dir)) == 3
    assert callbacks
    assert set(Node.objects.values_list("name", flat=True)) == {"", "keep"}
    assert [p.name for p in blob_files(blob_dir)] == [keep.blob_key]
    root.refresh_from_db()
    assert root.size == 3


def test_delete_root_is_forbidden(alice, root):
    with pytest.raises(OperationForbidden):
        services.node_delete(user=alice, node=root)


def test_set_mtime_changes_etag_and_ancestor_etags(alice, root):
    f = write(alice, root, "f", b"x").node
    root_etag = Node.objects.get(id=root.id).etag
    touched = services.node_set_mtime(user=alice, node=f, mtime=42)
    assert touched.mtime == 42 and touched.etag != f.etag
    assert Node.objects.get(id=root.id).etag != root_etag


def test_set_encrypted_flag(alice, root):
    d = services.node_create_dir(user=alice, parent=root, name="d")
    assert services.node_set_encrypted(user=alice, node=d, encrypted=True).is_encrypted
    assert Node.objects.get(id=d.id).is_encrypted


# --- selectors: missing and not yours are the same answer ---


def test_node_get_of_someone_elses_node_is_not_found(alice, root, make_user):
    bob = make_user("bob")
    f = write(alice, root, "f", b"x").node
    assert selectors.node_get(user=alice, node_id=f.id).id == f.id
    with pytest.raises(NodeNotFound):
        selectors.node_get(user=bob, node_id=f.id)
    with pytest.raises(NodeNotFound):
        selectors.node_get(user=bob, node_id=10**9)
    with pytest.raises(NodeNotFound):
        selectors.file_open(user=bob, node=f)
    with pytest.raises(NodeNotFound):
        selectors.node_get_by_path(user=bob, root=root, parts=["f"])
    with pytest.raises(NodeNotFound):
        selectors.node_children(user=bob, node=root)


def test_node_get_by_path_resolves_nested_names(alice, root):
    a = services.node_create_dir(user=alice, parent=root, name="a")
    b = services.node_create_dir(user=alice, parent=a, name="a")  # same name, other level
    f = write(alice, b, "f", b"x").node
    assert selectors.node_get_by_path(user=alice, root=root, parts=["a", "a", "f"]).id == f.id
    assert selectors.node_get_by_path(user=alice, root=root, parts=["a"]).id == a.id
    assert selectors.node_get_by_path(user=alice, root=root, parts=[]).id == root.id
    with pytest.raises(NodeNotFound):
        selectors.node_get_by_path(user=alice, root=root, parts=["a", "f"])


def test_blob_store_follows_settings(blob_dir):
    assert get_blob_store().root == blob_dir
