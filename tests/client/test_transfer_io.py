"""The download plumbing below the protocol: the disk thread, early writeback, bulk reads."""

from __future__ import annotations

import io
import os

import pytest

from client import bulk
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
