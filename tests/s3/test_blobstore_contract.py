"""The BlobStore contract on both stores (local files, S3 on a real SeaweedFS), and what only the
S3 store has: multipart uploads invisible until completed, bounded memory, ranged GETs across
parts, aborted uploads leave no parts, clear errors without credentials."""

from __future__ import annotations

import hashlib
import os
import time
import tracemalloc

import pytest

from server.files.blobstore import BlobNotFound, LocalBlobStore, get_blob_store
from server.files.blobstore_s3 import S3BlobStore, S3Config, S3StoreError

pytestmark = pytest.mark.s3

MiB = 1 << 20


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):  # type: ignore[no-untyped-def]
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    request.getfixturevalue("s3_blob_settings")
    store = get_blob_store()
    assert isinstance(store, S3BlobStore)
    return store


@pytest.fixture
def s3_store(s3_blob_settings) -> S3BlobStore:  # type: ignore[no-untyped-def]
    store = get_blob_store()
    assert isinstance(store, S3BlobStore)
    return store


def pattern(size: int, seed: int = 0) -> bytes:
    """Bytes that differ at every offset, so a misplaced range cannot compare equal."""
    block = hashlib.sha256(str(seed).encode()).digest() * (MiB // 32)
    return (block * (size // len(block) + 1))[:size]


# --- the contract, on both stores --------------------------------------------------------


def test_commit_makes_the_blob_readable(store):
    writer = store.open_writer()
    writer.write(b"hello ")
    writer.write(memoryview(b"world"))
    key = writer.commit()
    assert writer.bytes_written == 11
    with store.open_read(key) as blob:
        assert blob.read() == b"hello world"
    assert store.size(key) == 11
    assert store.list_keys() == {key}
    assert [k for k, _ in store.iter_blobs()] == [key]


def test_nothing_is_visible_before_commit_and_abort_leaves_nothing(store):
    writer = store.open_writer()
    writer.write(pattern(12 * MiB))  # more than one S3 part: a multipart upload is running
    assert store.list_keys() == set()
    with pytest.raises(BlobNotFound):
        store.open_read(writer.key)
    with pytest.raises(BlobNotFound):
        store.size(writer.key)
    writer.abort()
    writer.abort()  # idempotent
    assert store.list_keys() == set()
    assert store.stale_temporaries(older_than=time.time() + 60) == []


def test_abort_after_commit_removes_the_blob(store):
    writer = store.open_writer()
    writer.write(b"x")
    key = writer.commit()
    writer.abort()
    assert key not in store.list_keys()


def test_context_manager_aborts_on_error(store):
    with pytest.raises(RuntimeError), store.open_writer() as writer:
        writer.write(pattern(9 * MiB))
        raise RuntimeError("client went away")
    assert store.list_keys() == set()
    assert store.stale_temporaries(older_than=time.time() + 60) == []


def test_an_empty_blob(store):
    writer = store.open_writer()
    key = writer.commit()
    assert store.size(key) == 0
    with store.open_read(key) as blob:
        assert blob.read() == b""


def test_large_blob_round_trip_and_ranges_across_parts(store):
    data = pattern(21 * MiB + 123)  # 8 MiB parts: 2 full parts and a short last one
    writer = store.open_writer()
    for start in range(0, len(data), 1_000_000):  # pieces that do not line up with parts
        writer.write(data[start : start + 1_000_000])
    key = writer.commit()
    assert store.size(key) == len(data)
    with store.open_read(key) as blob:
        assert hashlib.sha256(blob.read()).digest() == hashlib.sha256(data).digest()
    with store.open_read(key) as blob:
        for start, length in [(8 * MiB - 10, 20), (0, 1), (len(data) - 5, 100), (3, 16 * MiB)]:
            blob.seek(start)
            assert blob.read(length) == data[start : start + length]
        assert blob.seek(0, os.SEEK_END) == len(data) and blob.read(10) == b""


def test_copy_is_a_new_blob_with_the_same_bytes(store):
    writer = store.open_writer()
    writer.write(b"same bytes")
    key = writer.commit()
    copy = store.copy(key)
    assert copy != key
    store.delete(key)
    with store.open_read(copy) as blob:
        assert blob.read() == b"same bytes"
    assert store.list_keys() == {copy}


def test_delete_is_idempotent_and_missing_blobs_are_blob_not_found(store):
    key = store.open_writer().commit()
    store.delete(key)
    store.delete(key)
    assert store.list_keys() == set()
    with pytest.raises(BlobNotFound):
        store.open_read(key)
    with pytest.raises(BlobNotFound):
        store.copy(key)


@pytest.mark.parametrize("key", ["../../etc/passwd", "ab/cd", "A" * 32, ""])
def test_a_key_can_never_name_another_object(store, key):
    with pytest.raises(ValueError):
        store.open_read(key)
    with pytest.raises(ValueError):
        store.delete(key)


# --- only the S3 store -------------------------------------------------------------------


def test_objects_live_under_the_prefix_and_are_created_only_once(s3_store, seaweedfs):
    writer = s3_store.open_writer()
    writer.write(b"v1")
    key = writer.commit()
    client, bucket = seaweedfs.client(), s3_store.config.bucket
    assert (
        client.get_object(Bucket=bucket, Key=s3_store.config.prefix + key)["Body"].read() == b"v1"
    )
    # The create-only PUT the writer relies on: a second write under the same name is refused.
    with pytest.raises(client.exceptions.ClientError) as refused:
        client.put_object(
            Bucket=bucket, Key=s3_store.config.prefix + key, Body=b"v2", IfNoneMatch="*"
        )
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412


def test_memory_per_upload_is_bounded_by_the_parts_in_flight(s3_store):
    config = s3_store.config  # 8 MiB parts, 2 in flight
    piece = pattern(MiB)
    writer = s3_store.open_writer()
    tracemalloc.start()
    try:
        for _ in range(64):
            writer.write(piece)
        key = writer.commit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The buffer, the parts being sent and their copies in botocore; never the whole 64 MiB.
    assert peak < (config.concurrency + 2) * config.part_size * 1.5, peak
    assert s3_store.size(key) == 64 * MiB


def test_a_killed_upload_is_swept_by_blobs_sweep(s3_store, db):
    from django.core.management import call_command

    writer = s3_store.open_writer()
    writer.write(pattern(9 * MiB))  # one part sent: the multipart upload exists in the store
    assert s3_store.stale_temporaries(older_than=time.time() - 3600) == []  # positive twin
    [name] = s3_store.stale_temporaries(older_than=time.time() + 60)
    assert writer.key in name
    orphan = s3_store.open_writer().commit()  # a blob no row points at
    call_command("blobs_sweep", "--delete", "--min-age-hours", "-1")
    assert s3_store.stale_temporaries(older_than=time.time() + 60) == []
    assert orphan not in s3_store.list_keys()
    writer._upload_id = None  # aborted by the sweep already
    writer.abort()


def test_wrong_credentials_fail_clearly_without_the_secret(seaweedfs, s3_blob_settings):
    secret = "not-the-secret-" + "x" * 20
    bad = S3BlobStore(S3Config.from_settings({**s3_blob_settings, "SECRET_ACCESS_KEY": secret}))
    with pytest.raises(S3StoreError) as failed:
        bad.check()
    with pytest.raises(S3StoreError):
        bad.open_writer().commit()
    assert secret not in str(failed.value) and secret not in repr(bad)
    assert seaweedfs.secret_key not in repr(bad.config)
    S3BlobStore(S3Config.from_settings(s3_blob_settings)).check()  # positive twin


def test_a_bucket_is_required():
    with pytest.raises(S3StoreError, match="E2EE_S3_BUCKET"):
        S3Config.from_settings({"BUCKET": ""})
    assert S3Config.from_settings({"BUCKET": "b", "PART_SIZE": 1}).part_size == 5 * MiB


def test_a_read_stream_that_drops_resumes_at_the_same_offset(s3_store):
    data = pattern(3 * MiB)
    writer = s3_store.open_writer()
    writer.write(data)
    key = writer.commit()
    with s3_store.open_read(key) as blob:
        assert blob.read(MiB) == data[:MiB]
        blob._body._raw_stream.close()  # the connection goes away mid-object
        reopened = []
        open_at = blob._open_at
        blob._open_at = lambda position: (reopened.append(position), open_at(position))
        assert blob.read() == data[MiB:]
        assert reopened == [MiB]
