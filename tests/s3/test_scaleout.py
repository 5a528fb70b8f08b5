"""Two web nodes (two gunicorn servers on different ports) sharing one PostgreSQL database and
one S3 bucket on SeaweedFS, driven concurrently: a lock taken on one node binds the other,
writes staged through one and committed through the other are visible on both, parallel lockers
across both nodes never both win, and no metadata update or size propagation is lost."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest

from tests.conftest import require
from tests.e2ee.helpers import API, E2EE_HEADERS
from tests.e2ee.test_lock_concurrency import _document, _locker
from tests.live import LiveStack
from tests.s3.seaweed import SeaweedFS

pytestmark = [pytest.mark.s3, pytest.mark.postgres, pytest.mark.e2e]

BUCKET = "e2ee-scaleout"
USER, PASSWORD = "alice", "a long password for alice"


@dataclass
class Cluster:
    nodes: list[LiveStack]
    auth: tuple[str, str]
    weed: SeaweedFS

    def client(self, node: int) -> httpx.Client:
        return self.nodes[node].client(auth=self.auth, headers=E2EE_HEADERS)

    def stored_keys(self) -> set[str]:
        pages = (
            self.weed.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=BUCKET, Prefix="blobs/")
        )
        return {o["Key"].removeprefix("blobs/") for p in pages for o in p.get("Contents", [])}

    def referenced_keys(self) -> set[str]:
        rows = self.nodes[0].query("select blob_key from files_node where blob_key <> ''")
        rows += self.nodes[0].query("select blob_key from files_uploadchunk")
        return {key for (key,) in rows}


@pytest.fixture(scope="module")
def cluster(seaweedfs: SeaweedFS) -> Iterator[Cluster]:
    require(os.environ.get("DATABASE_URL", "").startswith("postgres"), "PostgreSQL (DATABASE_URL)")
    seaweedfs.create_bucket(BUCKET)
    # What the nodes share besides the database: the bucket and the secret key (app passwords
    # are keyed hashes, sessions are signed).
    env = {
        **seaweedfs.blob_store_env(BUCKET),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "E2EE_SIGNING": "inline",
    }
    with LiveStack.start(env=env) as first:
        second = LiveStack(
            data_dir=Path(tempfile.mkdtemp(prefix="e2ee-node-b-")),
            database=first.database,
            extra_env=dict(env),
        )
        try:
            second.serve()
            assert first.port != second.port
            first.create_user(USER, PASSWORD)
            yield Cluster([first, second], (USER, first.create_app_password(USER)), seaweedfs)
        finally:
            second.stop()


def _encrypted_folder(cluster: Cluster, name: str) -> int:
    """A new encrypted folder with committed metadata (counter 0), made through node 0."""
    with cluster.client(0) as c:
        made = c.request("MKCOL", f"/remote.php/dav/files/{USER}/{name}")
        assert made.status_code == 201, made.text
        folder = int(made.headers["OC-FileId"][:8])
        assert c.put(f"{API}/encrypted/{folder}?format=json").status_code == 200
        token = _lock(c, folder, 1)
        _metadata(c.post, folder, token, 0)
        _unlock(c, folder, token)
    return folder


def _metadata(method, folder: int, token: str, counter: int) -> None:  # type: ignore[no-untyped-def]
    """Store a metadata document under the lock (POST the first, PUT later ones)."""
    response = method(
        f"{API}/meta-data/{folder}?format=json",
        data={"metaData": _document(counter, "x")},
        headers={"e2e-token": token, "X-NC-E2EE-SIGNATURE": "c2ln"},
    )
    assert response.status_code == 200, response.text


def _unlock(client: httpx.Client, folder: int, token: str, abort: bool = False) -> None:
    suffix = "&abort=true" if abort else ""
    response = client.delete(
        f"{API}/lock/{folder}?format=json{suffix}", headers={"e2e-token": token}
    )
    assert response.status_code == 200, response.text


def _lock(client: httpx.Client, folder: int, counter: int) -> str:
    response = client.post(
        f"{API}/lock/{folder}?format=json", headers={"X-NC-E2EE-COUNTER": str(counter)}
    )
    assert response.status_code == 200, response.text
    return response.json()["ocs"]["data"]["e2e-token"]


def test_a_lock_on_one_node_binds_the_other_and_staged_writes_commit_across_nodes(cluster):
    folder = _encrypted_folder(cluster, "Vault")
    path = f"/remote.php/dav/files/{USER}/Vault/blob.bin"
    body = os.urandom(20 << 20) + b"tail"  # several S3 parts: a multipart upload
    with cluster.client(0) as a, cluster.client(1) as b:
        token = _lock(a, folder, 1)
        # Node B knows the lock node A handed out.
        assert (
            b.post(
                f"{API}/lock/{folder}?format=json", headers={"X-NC-E2EE-COUNTER": "1"}
            ).status_code
            == 423
        )
        assert b.put(path, content=b"no token").status_code == 403
        assert b.put(path, content=b"wrong", headers={"e2e-token": "0" * 32}).status_code == 423
        # The lock holder writes through B: staged, invisible to readers on either node.
        assert b.put(path, content=body, headers={"e2e-token": token}).status_code == 201
        for reader in (a, b):
            assert reader.get(path).status_code == 404
        _metadata(b.put, folder, token, 1)
        # Committed through A; both nodes serve the bytes B streamed into the bucket.
        _unlock(a, folder, token)
        for reader in (a, b):
            got = reader.get(path)
            assert got.status_code == 200
            assert hashlib.sha256(got.content).digest() == hashlib.sha256(body).digest()
            ranged = reader.get(path, headers={"Range": "bytes=10485750-10485769"})
            assert ranged.status_code == 206 and ranged.content == body[10485750:10485770]
        # The lock is gone on both nodes: B may take the next one.
        _unlock(a, folder, _lock(b, folder, 2))
    assert cluster.referenced_keys() <= cluster.stored_keys()


def test_a_write_staged_on_one_node_and_aborted_on_the_other_leaves_nothing(cluster):
    folder = _encrypted_folder(cluster, "Draft")
    path = f"/remote.php/dav/files/{USER}/Draft/gone.bin"
    before = cluster.stored_keys()
    with cluster.client(0) as a, cluster.client(1) as b:
        token = _lock(a, folder, 1)
        assert (
            a.put(path, content=os.urandom(9 << 20), headers={"e2e-token": token}).status_code
            == 201
        )
        assert len(cluster.stored_keys() - before) == 1  # staged: stored, not yet visible
        _unlock(b, folder, token, abort=True)
        for reader in (a, b):
            assert reader.get(path).status_code == 404
    assert cluster.stored_keys() == before
    assert cluster.referenced_keys() <= cluster.stored_keys()


def test_parallel_lockers_across_both_nodes_never_both_win(cluster):
    folder = _encrypted_folder(cluster, "Hot")
    holder: dict = {"who": None}
    guard = threading.Lock()
    lockers = [(cluster.nodes[i % 2].base_url, f"node{i % 2}-{i}") for i in range(6)]
    with ThreadPoolExecutor(len(lockers)) as pool:
        runs = [
            pool.submit(_locker, url, cluster.auth, folder, name, holder, guard)
            for url, name in lockers
        ]
        counters = [run.result() for run in runs]
    expected = sum(len(c) for c in counters)
    assert expected == 6 * 6, "some lockers did not finish in time"
    assert sorted(c for run in counters for c in run) == list(range(1, expected + 1))
    for node in range(2):
        with cluster.client(node) as c:
            document = c.get(f"{API}/meta-data/{folder}?format=json").json()["ocs"]["data"]
            assert json.loads(document["meta-data"])["counter"] == expected, "an update was lost"


def test_parallel_uploads_through_both_nodes_lose_no_size_propagation(cluster):
    with cluster.client(0) as c:
        assert c.request("MKCOL", f"/remote.php/dav/files/{USER}/Many").status_code == 201

    def upload(i: int) -> int:
        size = 1000 + i * 37 + (i % 3) * (6 << 20)  # some small PUTs, some multipart
        with cluster.client(i % 2) as c:
            put = c.put(f"/remote.php/dav/files/{USER}/Many/f{i}", content=os.urandom(size))
            assert put.status_code == 201, put.text
        return size

    with ThreadPoolExecutor(8) as pool:
        total = sum(pool.map(upload, range(24)))
    for node in range(2):
        with cluster.client(node) as c:
            listing = c.request(
                "PROPFIND",
                f"/remote.php/dav/files/{USER}/Many",
                headers={"Depth": "1"},
                content='<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
                "<d:prop><oc:size/></d:prop></d:propfind>",
            )
            assert listing.status_code == 207
            sizes = {
                r.findtext("{DAV:}href"): int(r.findtext(".//{http://owncloud.org/ns}size"))
                for r in ElementTree.fromstring(listing.content)
            }
            assert len(sizes) == 25
            assert sizes[f"/remote.php/dav/files/{USER}/Many/"] == total
    [(size,)] = cluster.nodes[0].query(
        "select size from files_node where name = 'Many' and parent_id is not null"
    )
    assert size == total
    assert cluster.referenced_keys() <= cluster.stored_keys()


def _in_progress(cluster: Cluster) -> list[str]:
    uploads = cluster.weed.client().list_multipart_uploads(Bucket=BUCKET, Prefix="blobs/")
    return [u["Key"] for u in uploads.get("Uploads", [])]


def _wait_for(condition, timeout: float = 60.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("node", [0, 1])
def test_a_client_vanishing_mid_upload_leaves_no_object_and_no_upload(cluster, node):
    """The S3 twin of the filesystem store's aborted-upload test (tests/webdav/test_dav_live)."""
    stack = cluster.nodes[node]
    before, name = cluster.stored_keys(), f"vanished-{node}.bin"
    token = base64.b64encode(f"{USER}:{cluster.auth[1]}".encode()).decode()
    head = (
        f"PUT /remote.php/dav/files/{USER}/{name} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{stack.port}\r\nAuthorization: Basic {token}\r\n"
        f"Content-Length: {20 << 20}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", stack.port), timeout=30) as sock:
        sock.sendall(head.encode())
        sock.sendall(os.urandom(12 << 20))  # more than one part: a multipart upload is open
        assert _wait_for(lambda: _in_progress(cluster)), "the server never started the upload"
    assert _wait_for(lambda: not _in_progress(cluster)), "the multipart upload was not aborted"
    assert cluster.stored_keys() == before
    assert stack.query("select id from files_node where name = %s", [name]) == []
    with cluster.client(1 - node) as other:  # positive twin: the same PUT, completed, elsewhere
        assert (
            other.put(
                f"/remote.php/dav/files/{USER}/{name}", content=os.urandom(12 << 20)
            ).status_code
            == 201
        )
    assert len(cluster.stored_keys() - before) == 1 and not _in_progress(cluster)
