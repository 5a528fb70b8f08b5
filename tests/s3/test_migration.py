"""manage.py blobs_to_s3: every filesystem blob copied under its key and verified by reading it
back; a second run resumes from the journal; objects an interrupted run left behind are checked
before they are trusted; the server reads every file from S3 after the switch."""

from __future__ import annotations

import io
import os
import secrets

import pytest
from django.core.management import CommandError, call_command

from server.files import selectors, services
from server.files.blobstore import LocalBlobStore, get_blob_store
from server.files.models import Node

pytestmark = pytest.mark.s3

BUCKET = "e2ee-migration"


@pytest.fixture
def setup(settings, tmp_path, seaweedfs, make_user):  # type: ignore[no-untyped-def]
    """Files written to the filesystem store; the S3 settings point at an empty prefix."""
    settings.BLOB_STORE, settings.BLOB_DIR = "local", tmp_path / "blobs"
    seaweedfs.create_bucket(BUCKET)
    settings.BLOB_S3 = seaweedfs.blob_store_settings(BUCKET, prefix=f"m/{secrets.token_hex(6)}/")
    alice = make_user("alice")
    root = services.node_root_get_or_create(user=alice)
    contents = {"empty": b"", "small": b"hello", "big": os.urandom(12 << 20)}
    for name, data in contents.items():
        services.file_write(user=alice, parent=root, name=name, body=io.BytesIO(data))
    orphan = get_blob_store().open_writer()  # on disk, no row: copied too (the sweep decides)
    orphan.write(b"orphan")
    orphan.commit()
    return alice, contents, LocalBlobStore(settings.BLOB_DIR)


def migrate(*args: str, progress: bool = False) -> str:
    out = io.StringIO()
    flags = () if progress else ("--no-progress",)
    call_command("blobs_to_s3", *flags, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def s3_store(settings):  # type: ignore[no-untyped-def]
    settings.BLOB_STORE = "s3"
    return get_blob_store()


def test_every_blob_is_copied_and_the_server_reads_them_from_s3(setup, settings):
    alice, contents, local = setup
    assert "4 blob(s) on disk: 4 copied now" in migrate()
    store = s3_store(settings)
    assert store.list_keys() == local.list_keys()
    for name, data in contents.items():
        node = Node.objects.get(owner=alice, name=name)
        with selectors.file_open(user=alice, node=node) as blob:
            assert blob.read() == data
    # Resumed: nothing is sent again (and the progress bar copes with no terminal).
    settings.BLOB_STORE = "local"
    assert "0 copied now, 4 verified by an earlier run" in migrate(progress=True)


def test_an_interrupted_run_is_checked_not_trusted(setup, settings, seaweedfs):
    alice, contents, local = setup
    migrate()
    journal = next(local.root.glob("s3-migration-*.journal"))
    journal.unlink()  # as if the run had died before journaling anything
    store = s3_store(settings)
    big = Node.objects.get(owner=alice, name="big").blob_key
    small = Node.objects.get(owner=alice, name="small").blob_key
    store.delete(small)  # never arrived
    store.delete(big)
    # A different object under the key.
    seaweedfs.client().put_object(Bucket=BUCKET, Key=store.object_name(big), Body=b"not it")
    settings.BLOB_STORE = "local"
    assert "2 copied now, 0 verified by an earlier run, 2 already in the bucket" in migrate(
        "--jobs", "1"
    )
    store = s3_store(settings)
    for name, data in contents.items():
        node = Node.objects.get(owner=alice, name=name)
        with selectors.file_open(user=alice, node=node) as blob:
            assert blob.read() == data


def test_a_blob_missing_on_disk_fails_the_run_after_copying_the_rest(setup, settings):
    alice, _, local = setup
    lost = Node.objects.get(owner=alice, name="small").blob_key
    local.path_for(lost).unlink()
    with pytest.raises(CommandError, match="1 missing"):
        migrate()
    assert s3_store(settings).list_keys() == local.list_keys()  # the others went


def test_unreachable_or_refused_s3_is_a_clear_error(setup, settings):
    secret = "wrong-" + secrets.token_hex(8)
    settings.BLOB_S3 = {**settings.BLOB_S3, "SECRET_ACCESS_KEY": secret}
    with pytest.raises(CommandError, match="reaching bucket") as failed:
        migrate()
    assert secret not in str(failed.value)


def test_blobs_s3_bucket_checks_and_creates_the_bucket(settings, seaweedfs):
    name = "e2ee-new-" + secrets.token_hex(4)
    settings.BLOB_S3 = seaweedfs.blob_store_settings(name)
    with pytest.raises(CommandError, match="reaching bucket"):
        call_command("blobs_s3_bucket", stdout=io.StringIO())
    for _ in range(2):  # a second replica starting later finds it made
        out = io.StringIO()
        call_command("blobs_s3_bucket", "--create", stdout=out)
        assert f"bucket '{name}'" in out.getvalue()
    call_command("blobs_s3_bucket", stdout=io.StringIO())
