"""The download plumbing below the protocol: the disk thread, early writeback, bulk reads."""

from __future__ import annotations

import io
import os

import pytest

from client import bulk
from client.errors import ServerError
from client.ops import transfer


class FailingFile(io.BytesIO):
    def __init__(self, fail_after: int) -> None:
        super().__init__()
        self.fail_after = fail_after

    def write(self, data) -> int:  # type: ignore[override]
        if self.tell() + len(data) > self.fail_after:
            raise OSError(28, "No space left on device")
        return super().write(data)


def test_disk_writer_writes_everything_in_order(tmp_path):
    data = os.urandom(3 * transfer.CHUNK + 123)
    path = tmp_path / "out"
    with path.open("wb") as handle, transfer._DiskWriter(handle) as writer:
        view = memoryview(data)
        for start in range(0, len(data), 70_000):  # odd piece sizes, one over a chunk
            writer.write(view[start : start + 70_000])
        writer.write(view[:0])
        writer.write(data[: transfer.CHUNK + 1])
    assert path.read_bytes() == data + data[: transfer.CHUNK + 1]


class RecordingFile(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def write(self, data) -> int:  # type: ignore[override]
        self.sizes.append(len(data))
        return super().write(data)


def test_disk_writer_hands_the_file_pieces_of_at_most_64_kib(tmp_path):
    data = os.urandom(2 * transfer.CHUNK + 5000)
    out = RecordingFile()
    with transfer._DiskWriter(out) as writer:
        writer.write(data)
    assert out.getvalue() == data
    assert max(out.sizes) == transfer.WRITE_PIECE == 64 << 10


def test_disk_writer_starts_writeback_and_keeps_the_data(tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "WRITEBACK_STEP", 2 * transfer.CHUNK)
    data = os.urandom(5 * transfer.CHUNK)
    path = tmp_path / "out"
    with path.open("wb") as handle, transfer._DiskWriter(handle) as writer:
        writer.write(data)
    assert writer._advised == 4 * transfer.CHUNK  # twice, at 2 and 4 MiB
    assert path.read_bytes() == data


def test_disk_writer_hands_a_write_error_to_the_caller():
    target = FailingFile(fail_after=transfer.CHUNK)
    with pytest.raises(OSError, match="No space"), transfer._DiskWriter(target) as writer:
        for _ in range(10 * transfer.WRITER_DEPTH):  # the error surfaces at a later write
            writer.write(bytes(transfer.CHUNK))
    assert target.getvalue() == bytes(transfer.CHUNK)


def test_disk_writer_error_surfaces_at_exit_too():
    target = FailingFile(fail_after=0)
    with pytest.raises(OSError, match="No space"), transfer._DiskWriter(target) as writer:
        writer.write(b"x")


def test_disk_writer_stops_writing_when_the_caller_fails():
    target = io.BytesIO()
    with pytest.raises(RuntimeError), transfer._DiskWriter(target) as writer:
        writer.write(b"a" * 10)
        raise RuntimeError("tag check failed")
    assert not writer._thread.is_alive()  # joined before the file may be closed or removed
    assert len(target.getvalue()) in (0, 10)


def test_landing_renames_only_on_success(tmp_path):
    big = transfer.BULK_MIN
    target = tmp_path / "f.bin"
    with pytest.raises(ValueError), transfer._landing(target, big) as out:
        out.write(b"partial plaintext")
        raise ValueError("verification failed")
    assert list(tmp_path.iterdir()) == []
    with transfer._landing(target, big) as out:
        out.write(b"verified")
    assert target.read_bytes() == b"verified" and list(tmp_path.iterdir()) == [target]
    transfer.sync_folder(tmp_path)


def test_chunk_reader_reassembles_chunks():
    reader = bulk.ChunkReader(iter([b"ab", b"", b"cdef", b"g"]))
    buffer = memoryview(bytearray(3))
    got = b""
    while n := reader.readinto(buffer):
        got += bytes(buffer[:n])
    assert got == b"abcdefg"


def test_bulk_path_steps_aside_for_an_environment_proxy(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert bulk.usable("http://127.0.0.1:8000")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    assert not bulk.usable("http://cloud.example:8000")
    monkeypatch.setenv("NO_PROXY", "cloud.example")
    assert bulk.usable("http://cloud.example:8000")


def test_basic_auth_matches_httpx():
    import httpx

    request = httpx.Request("GET", "http://x/")
    flow = httpx.BasicAuth("zoë", "pä:ss").sync_auth_flow(request)
    assert next(flow).headers["Authorization"] == bulk.basic_auth("zoë", "pä:ss")


class _Server:
    """A real HTTP/1.1 server on loopback that counts connections and can drop idle ones."""

    def __init__(self) -> None:
        import http.server
        import threading

        outer = self
        self.connections = 0
        self.close_after_next = False
        self.body = os.urandom(100_000)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                outer.connections += 1

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                status = 404 if self.path.endswith("/missing") else 200
                body = (
                    b'{"ocs": {"meta": {"message": "no such file"}}}'
                    if status == 404
                    else outer.body
                )
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if outer.close_after_next:  # as a server's keep-alive timeout would
                    outer.close_after_next = False
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/base"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    running = _Server()
    yield running
    running.stop()


def _read_all(response) -> bytes:
    got, buffer = bytearray(), memoryview(bytearray(1 << 16))
    while n := response.readinto(buffer):
        got += buffer[:n]
    return bytes(got)


def test_getter_reuses_one_connection_per_thread(server):
    getter = bulk.Getter(server.url, {"User-Agent": "t"}, timeout=10)
    try:
        for _ in range(3):
            with getter.get("/f") as response:
                assert response.status == 200 and response.length == len(server.body)
                assert _read_all(response) == server.body
        assert server.connections == 1
    finally:
        getter.close()


def test_getter_retries_once_when_the_server_closed_a_kept_connection(server):
    getter = bulk.Getter(server.url, {}, timeout=10)
    try:
        server.close_after_next = True
        with getter.get("/f") as response:
            assert _read_all(response) == server.body
        with getter.get("/f") as response:  # the kept connection is dead: one retry
            assert _read_all(response) == server.body
        assert server.connections == 2
    finally:
        getter.close()


def test_getter_drops_a_connection_whose_body_was_left_unread(server):
    getter = bulk.Getter(server.url, {}, timeout=10)
    try:
        with getter.get("/f") as response:
            response.readinto(memoryview(bytearray(10)))
        with getter.get("/f") as response:
            assert _read_all(response) == server.body
        assert server.connections == 2
    finally:
        getter.close()


def test_getter_reports_errors_without_credentials(server):
    getter = bulk.Getter(server.url, {"Authorization": bulk.basic_auth("u", "s3cret")}, timeout=10)
    try:
        with getter.get("/missing") as response:
            assert response.status == 404
            assert response.as_httpx().json()["ocs"]["meta"]["message"] == "no such file"
        assert "s3cret" not in repr(getter)
    finally:
        getter.close()
    server.stop()
    dead = bulk.Getter(server.url, {}, timeout=2)
    with pytest.raises(ServerError, match="connection failed") as caught, dead.get("/f"):
        pass
    assert "s3cret" not in str(caught.value)


def test_read_ahead_yields_everything_in_order():
    pieces = [os.urandom(n) for n in (1, 1000, transfer.CHUNK, 5)] * 5
    ahead = transfer._ReadAhead(iter(pieces))
    try:
        assert list(ahead) == pieces
    finally:
        ahead.close()


def test_read_ahead_hands_the_producer_error_to_the_consumer():
    def failing():
        yield b"first"
        raise OSError(5, "Input/output error")

    ahead = transfer._ReadAhead(failing())
    try:
        got = iter(ahead)
        assert next(got) == b"first"
        with pytest.raises(OSError, match="Input/output"):
            next(got)
    finally:
        ahead.close()


def test_read_ahead_stops_when_the_consumer_gives_up():
    produced = []

    def endless():
        while True:
            produced.append(1)
            yield b"x" * 10

    ahead = transfer._ReadAhead(endless())
    got = iter(ahead)
    next(got)
    ahead.close()  # as seal_upload does when the PUT fails, before the file is closed
    assert not ahead._thread.is_alive()
    assert len(produced) <= transfer.WRITER_DEPTH + 3  # bounded: it never ran far ahead


def test_sealed_body_is_the_same_blob_with_or_without_read_ahead(tmp_path):
    from client.crypto import aead

    data = os.urandom(transfer.BULK_MIN + 12345)
    path = tmp_path / "in.bin"
    path.write_bytes(data)
    for size in (0, len(data)):  # the size decides whether a thread reads ahead
        secret = aead.new_file_secret()
        with path.open("rb") as handle:
            body = transfer._SealedBody(handle, secret, None, size)
            try:
                blob = b"".join(body)
            finally:
                body.close()
        assert blob == aead.encrypt(secret, data) and body.tag == blob[-16:]
