"""WebDAV over real sockets: gunicorn serving server.wsgi:application (tests.live.LiveStack)."""

from __future__ import annotations

import base64
import socket
import time

import httpx
import pytest

from tests.live import LiveStack

pytestmark = pytest.mark.e2e

PASSWORD = "live password 123"
A = "/remote.php/dav/files/alice"


@pytest.fixture(scope="module")
def stack(live_stack: LiveStack) -> LiveStack:
    live_stack.create_user("alice", PASSWORD)
    live_stack.create_user("bob", PASSWORD)
    return live_stack


@pytest.fixture
def alice(stack: LiveStack):  # type: ignore[no-untyped-def]
    with stack.client(auth=("alice", PASSWORD)) as client:
        yield client


def auth_header(uid: str = "alice") -> str:
    return "Basic " + base64.b64encode(f"{uid}:{PASSWORD}".encode()).decode()


def raw_request(stack: LiveStack, request_line: str, *, headers: dict[str, str] | None = None,
                body: bytes = b"") -> int:
    """Send an exact request target (no client-side normalisation); return the status."""
    head = [request_line, f"Host: 127.0.0.1:{stack.port}", f"Authorization: {auth_header()}",
            f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", stack.port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + body)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def file_rows(stack: LiveStack, name: str) -> list[tuple]:  # type: ignore[type-arg]
    return stack.query("SELECT id, size, blob_key FROM files_node WHERE name = %s", [name])


def blob_files(stack: LiveStack) -> set[str]:
    return {p.name for p in stack.blob_dir.glob("??/??/*")}


def temp_files(stack: LiveStack) -> list[str]:
    tmp = stack.blob_dir / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


def abort_upload(stack: LiveStack, path: str, *, announced: int, sent: int) -> None:
    """Start a PUT announcing `announced` bytes, send `sent`, then vanish."""
    head = (f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{stack.port}\r\n"
            f"Authorization: {auth_header()}\r\nContent-Length: {announced}\r\n\r\n")
    sock = socket.create_connection(("127.0.0.1", stack.port), timeout=30)
    try:
        sock.sendall(head.encode())
        sock.sendall(b"\xab" * sent)
        # vanish only once the server streams into its temp file (a loaded machine is slow)
        assert wait_for(lambda: temp_files(stack)), "the server never started the upload"
    finally:
        sock.close()


def wait_for(condition, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


# --- aborted uploads --------------------------------------------------------------------------


def test_aborted_new_upload_leaves_no_row_no_blob_no_temp_file(stack):
    blobs_before = blob_files(stack)
    abort_upload(stack, A + "/aborted.bin", announced=64 << 20, sent=3 << 20)
    assert wait_for(lambda: not temp_files(stack)), temp_files(stack)
    time.sleep(0.5)  # a late commit would show up now
    assert file_rows(stack, "aborted.bin") == []
    assert blob_files(stack) == blobs_before
    assert temp_files(stack) == []


def test_aborted_overwrite_keeps_the_previous_version(stack, alice):
    assert alice.put(A + "/keep.bin", content=b"previous version").status_code == 201
    rows_before = file_rows(stack, "keep.bin")
    blobs_before = blob_files(stack)
    abort_upload(stack, A + "/keep.bin", announced=32 << 20, sent=1 << 20)
    assert wait_for(lambda: not temp_files(stack))
    time.sleep(0.5)
    assert file_rows(stack, "keep.bin") == rows_before
    assert blob_files(stack) == blobs_before
    assert alice.get(A + "/keep.bin").content == b"previous version"


def test_complete_upload_over_a_raw_socket_is_stored(stack):  # positive twin
    body = b"\xab" * (3 << 20)
    assert raw_request(stack, f"PUT {A}/complete.bin HTTP/1.1", body=body) == 201
    rows = file_rows(stack, "complete.bin")
    assert len(rows) == 1 and rows[0][1] == len(body)
    assert rows[0][2] in blob_files(stack)
    assert temp_files(stack) == []


# --- bad request targets on the wire ----------------------------------------------------------


@pytest.mark.parametrize("target", [
    A + "/a%2Fb.txt", A + "/..%2F..%2Fbob%2Fx", A + "/a%5Cb", A + "/x%00.txt",
    A + "/../bob/x.txt", A + "/dir/../../../etc/passwd", "/remote.php/webdav/../../etc/passwd",
])
def test_traversal_and_encoded_separators_on_the_wire(stack, target):
    status = raw_request(stack, f"PUT {target} HTTP/1.1", body=b"evil")
    assert status in (400, 404)
    assert stack.query("SELECT name FROM files_node WHERE name LIKE %s", ["%x%"]) == []
    assert stack.query("SELECT name FROM files_node WHERE name = %s", ["passwd"]) == []


def test_escaped_space_on_the_wire_is_fine(stack):  # positive twin
    assert raw_request(stack, f"PUT {A}/with%20space.txt HTTP/1.1", body=b"ok") == 201
    assert file_rows(stack, "with space.txt")


# --- ordinary traffic through gunicorn --------------------------------------------------------


def test_non_ascii_names_through_gunicorn(alice):
    path = A + "/Grüße 日本 – ok.txt"
    assert alice.put(path, content=b"unicode").status_code == 201
    assert alice.get(path).content == b"unicode"
    listing = alice.request("PROPFIND", A + "/", headers={"Depth": "1"})
    assert "Gr%C3%BC%C3%9Fe" in listing.text


def test_both_workers_see_the_same_tree(stack, alice):
    for i in range(10):
        assert alice.put(f"{A}/n{i}.txt", content=str(i).encode()).status_code == 201
    for i in range(10):
        # Fresh connections, so requests spread over both workers.
        with stack.client(auth=("alice", PASSWORD)) as fresh:
            assert fresh.get(f"{A}/n{i}.txt").content == str(i).encode()


def test_range_get_through_gunicorn(alice):
    assert alice.put(A + "/range.bin", content=bytes(range(256))).status_code == 201
    response = alice.get(A + "/range.bin", headers={"Range": "bytes=250-"})
    assert response.status_code == 206 and response.content == bytes(range(250, 256))


def test_unauthenticated_through_gunicorn_is_401(stack):
    response = httpx.request("PROPFIND", stack.url(A + "/"))
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers


def test_outsider_through_gunicorn_is_404(stack, alice):
    assert alice.put(A + "/only-alice.txt", content=b"a").status_code == 201
    with stack.client(auth=("bob", PASSWORD)) as bob:
        assert bob.get(A + "/only-alice.txt").status_code == 404
        assert bob.request("PROPFIND", A + "/", headers={"Depth": "1"}).status_code == 404


def test_django_still_serves_everything_else(stack):
    assert httpx.get(stack.url("/status.php")).json()["installed"] is True


def test_concurrent_puts_of_one_new_name_end_in_one_row_and_one_blob(stack):
    from concurrent.futures import ThreadPoolExecutor

    def upload(i: int) -> int:
        with stack.client(auth=("alice", PASSWORD)) as client:
            return client.put(A + "/raced.bin", content=bytes([i]) * 100_000).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(upload, range(8)))
    assert set(statuses) <= {201, 204} and statuses.count(201) >= 1
    rows = file_rows(stack, "raced.bin")
    assert len(rows) == 1 and rows[0][1] == 100_000
    assert wait_for(lambda: rows[0][2] in blob_files(stack))
    # Every losing version's blob was removed after its replacement committed.
    referenced = {row[0] for row in stack.query(
        "SELECT blob_key FROM files_node WHERE kind = 'file'")}
    assert wait_for(lambda: blob_files(stack) == referenced)
    assert temp_files(stack) == []
