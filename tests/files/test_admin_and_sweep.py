"""The read-only node admin and the orphan-blob sweep."""

from __future__ import annotations

import io
import os
import time

import pytest
from django.core.management import call_command

from server.files import services
from server.files.blobstore import get_blob_store
from server.files.models import Node

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def blob_dir(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.BLOB_DIR = tmp_path / "blobs"
    return settings.BLOB_DIR


def test_node_admin_lists_nodes_and_refuses_changes(admin_client, make_user):
    alice = make_user("alice")
    root = services.node_root_get_or_create(user=alice)
    node = services.file_write(user=alice, parent=root, name="report.pdf",
                               body=io.BytesIO(b"x")).node
    listing = admin_client.get("/admin/files/node/")
    assert listing.status_code == 200 and b"report.pdf" in listing.content
    assert admin_client.get("/admin/files/node/add/").status_code == 403
    deleted = admin_client.post(f"/admin/files/node/{node.id}/delete/", {"post": "yes"})
    assert deleted.status_code == 403
    assert Node.objects.filter(id=node.id).exists()


def age(path, hours: float) -> None:  # type: ignore[no-untyped-def]
    old = time.time() - hours * 3600
    os.utime(path, (old, old))


def test_sweep_removes_only_old_unreferenced_blobs_and_temp_files(make_user):
    alice = make_user("alice")
    root = services.node_root_get_or_create(user=alice)
    kept = services.file_write(user=alice, parent=root, name="kept", body=io.BytesIO(b"k")).node
    store = get_blob_store()
    orphan = store.open_writer()
    orphan_key = orphan.commit()
    young = store.open_writer().commit()
    stale_temp = store.open_writer()
    stale_temp.write(b"half")
    for key in (kept.blob_key, orphan_key):
        age(store.path_for(key), 48)
    temp_path = next(store.tmp_dir.iterdir())
    age(temp_path, 48)

    out = io.StringIO()
    call_command("blobs_sweep", stdout=out, stderr=io.StringIO())
    assert orphan_key in out.getvalue() and store.list_keys() >= {orphan_key}  # dry run
    call_command("blobs_sweep", "--delete", stdout=io.StringIO(), stderr=io.StringIO())
    assert store.list_keys() == {kept.blob_key, young}
    assert not temp_path.exists()
    stale_temp.abort()  # the "crashed" upload's handle
