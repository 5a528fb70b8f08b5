"""The local blob store: temp file, fsync, rename; nothing visible before commit."""

from __future__ import annotations

import os

import pytest

from server.files import blobstore
from server.files.blobstore import BlobNotFound, LocalBlobStore


@pytest.fixture
def store(tmp_path):  # type: ignore[no-untyped-def]
    return LocalBlobStore(tmp_path / "blobs")


def test_commit_makes_the_blob_readable_and_leaves_no_temp_file(store):
    writer = store.open_writer()
    writer.write(b"hello ")
    writer.write(memoryview(b"world"))
    key = writer.commit()
    assert writer.bytes_written == 11
    with store.open_read(key) as blob:
        assert blob.read() == b"hello world"
    assert store.size(key) == 11
    assert list(store.tmp_dir.iterdir()) == []
    assert store.list_keys() == {key}


def test_writeback_starts_while_a_large_upload_arrives_and_keeps_every_byte(store, monkeypatch):
    monkeypatch.setattr(blobstore, "WRITEBACK_STEP", 1 << 20)
    advised: list[tuple[int, int]] = []
    real = os.posix_fadvise

    def spy(fd: int, offset: int, length: int, advice: int) -> None:
        advised.append((offset, length))
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", spy)
    data = os.urandom(5 * (1 << 20) + 12345)
    writer = store.open_writer()
    for start in range(0, len(data), 300_000):  # pieces that do not line up with the step
        writer.write(data[start : start + 300_000])
    key = writer.commit()
    with store.open_read(key) as blob:
        assert blob.read() == data
    # ranges of at least a step, back to back from the start; the last bit is left to the fsync
    assert len(advised) >= 4
    assert [offset for offset, _ in advised] == [0, *(o + n for o, n in advised[:-1])]
    assert all(length >= 1 << 20 for _, length in advised)
    assert 0 <= len(data) - sum(n for _, n in advised) < 2 << 20


def test_large_writes_reach_the_file_in_pieces_and_keep_every_byte(store, monkeypatch):
    monkeypatch.setattr(blobstore, "WRITE_PIECE", 1000)  # odd, so the last piece is short
    written: list[int] = []
    writer = store.open_writer()
    real = writer._file.write

    def spy(data):  # type: ignore[no-untyped-def]
        written.append(len(data))
        return real(data)

    writer._file.write = spy  # type: ignore[method-assign]
    data = os.urandom(12_345)
    writer.write(data)
    key = writer.commit()
    with store.open_read(key) as blob:
        assert blob.read() == data
    assert max(written) == 1000 and sum(written) == len(data)


def test_nothing_is_visible_before_commit(store):
    writer = store.open_writer()
    writer.write(b"partial")
    assert store.list_keys() == set()
    with pytest.raises(BlobNotFound):
        store.open_read(writer.key)
    writer.abort()


def test_abort_removes_the_temp_file(store):
    writer = store.open_writer()
    writer.write(b"x" * 1000)
    assert len(list(store.tmp_dir.iterdir())) == 1
    writer.abort()
    writer.abort()  # idempotent
    assert list(store.tmp_dir.iterdir()) == []
    assert store.list_keys() == set()


def test_abort_after_commit_removes_the_committed_blob(store):
    # The service commits the blob, then the row; if the row fails it aborts the writer.
    writer = store.open_writer()
    writer.write(b"x")
    key = writer.commit()
    writer.abort()
    assert key not in store.list_keys()


def test_context_manager_aborts_on_error(store):
    with pytest.raises(RuntimeError), store.open_writer() as writer:
        writer.write(b"x")
        raise RuntimeError("client went away")
    assert list(store.tmp_dir.iterdir()) == [] and store.list_keys() == set()


def test_every_writer_gets_a_new_key(store):
    keys = set()
    for _ in range(5):
        writer = store.open_writer()
        keys.add(writer.commit())
    assert len(keys) == 5


def test_ranged_read_by_seek(store):
    writer = store.open_writer()
    writer.write(bytes(range(200)))
    key = writer.commit()
    with store.open_read(key) as blob:
        blob.seek(100)
        assert blob.read(5) == bytes(range(100, 105))


def test_copy_is_a_new_blob_with_the_same_bytes(store):
    writer = store.open_writer()
    writer.write(b"same bytes")
    key = writer.commit()
    copy = store.copy(key)
    assert copy != key
    with store.open_read(copy) as blob:
        assert blob.read() == b"same bytes"
    store.delete(key)
    assert store.list_keys() == {copy}


def test_delete_is_idempotent(store):
    writer = store.open_writer()
    key = writer.commit()
    store.delete(key)
    store.delete(key)
    assert store.list_keys() == set()


@pytest.mark.parametrize("key", ["../../etc/passwd", "/etc/passwd", "ab/cd", "A" * 32, ""])
def test_a_key_can_never_name_a_path(store, key):
    with pytest.raises(ValueError):
        store.path_for(key)
    with pytest.raises(ValueError):
        store.open_read(key)


def test_a_well_formed_key_maps_inside_the_root(store):  # positive twin
    path = store.path_for("0123456789abcdef0123456789abcdef")
    assert path.is_relative_to(store.root)


def test_blob_files_are_private(store):
    writer = store.open_writer()
    writer.write(b"secret")
    key = writer.commit()
    assert os.stat(store.path_for(key)).st_mode & 0o077 == 0
