"""encrypt, mkdir, put, get, ls, rm, mv at any depth, and plain outside encrypted trees."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def alice(make_device, tmp_path_factory):
    device = make_device("fay")
    device.ok("init", "--mnemonic-out", tmp_path_factory.mktemp("words") / "w")
    return device


def listing(device, path):
    return {item["name"]: item for item in json.loads(device.ok("--json", "ls", path).stdout)}


def test_tree_operations_at_depth(alice, tmp_path):
    alice.ok("encrypt", "Vault")
    alice.ok("mkdir", "Vault/Docs")
    alice.ok("mkdir", "-p", "Vault/Docs/Deep/Deeper")
    source = tmp_path / "réport.txt"
    source.write_bytes(b"quarterly numbers " * 1000)
    alice.ok("put", source, "Vault/Docs/Deep/Deeper/")
    alice.ok("put", source, "Vault/top.txt")

    deep = listing(alice, "Vault/Docs/Deep/Deeper")
    assert deep["réport.txt"]["size"] == source.stat().st_size
    assert deep["réport.txt"]["encrypted"] and not deep["réport.txt"]["missing"]
    assert set(listing(alice, "Vault")) == {"Docs", "top.txt"}
    assert "Docs/" in alice.ok("ls", "Vault").stdout

    out = tmp_path / "out.txt"
    alice.ok("get", "Vault/Docs/Deep/Deeper/réport.txt", out)
    assert out.read_bytes() == source.read_bytes()

    # the server holds only uuids below the root
    with alice.stack.client(auth=(alice.user, alice.password)) as raw:
        body = raw.request(
            "PROPFIND",
            f"/remote.php/dav/files/{alice.user}/Vault",
            headers={"Depth": "1", "X-E2EE-SUPPORTED": "true"},
        ).text
    assert "Docs" not in body and "top.txt" not in body

    alice.ok("mv", "Vault/top.txt", "Vault/Docs/moved.txt")
    alice.ok("mv", "Vault/Docs/moved.txt", "Vault/Docs/renamed.txt")
    alice.ok("mv", "Vault/Docs/Deep", "Vault/Deep")
    assert set(listing(alice, "Vault")) == {"Docs", "Deep"}
    assert set(listing(alice, "Vault/Docs")) == {"renamed.txt"}
    alice.ok("get", "Vault/Deep/Deeper/réport.txt", out)
    assert out.read_bytes() == source.read_bytes()

    # replacing a file keeps one entry with the new content
    source.write_bytes(b"second version")
    alice.ok("put", source, "Vault/Docs/renamed.txt")
    alice.ok("get", "Vault/Docs/renamed.txt", out)
    assert out.read_bytes() == b"second version"
    assert set(listing(alice, "Vault/Docs")) == {"renamed.txt"}

    alice.fails(2, "rm", "Vault/Deep")  # not empty
    alice.ok("rm", "Vault/Docs/renamed.txt")
    alice.ok("rm", "-r", "Vault/Deep")
    assert set(listing(alice, "Vault")) == {"Docs"}
    alice.ok("rm", "-r", "Vault")
    alice.fails(2, "ls", "Vault")


def test_plain_files_outside_encrypted_trees(alice, tmp_path):
    source = tmp_path / "plain.bin"
    source.write_bytes(os.urandom(5000))
    alice.ok("mkdir", "Public")
    alice.ok("put", source, "Public")
    assert listing(alice, "Public")["plain.bin"]["encrypted"] is False
    out = tmp_path / "back.bin"
    alice.ok("get", "Public/plain.bin", out)
    assert out.read_bytes() == source.read_bytes()
    alice.ok("mv", "Public/plain.bin", "Public/renamed.bin")
    alice.ok("rm", "Public/renamed.bin")
    alice.ok("rm", "Public")


def test_usage_errors(alice, tmp_path):
    alice.ok("encrypt", "Usage")
    alice.fails(2, "encrypt", "Usage")
    alice.fails(2, "get", "Usage/nothing", tmp_path / "x")
    alice.fails(2, "mkdir", "Usage/a/b")
    alice.fails(2, "mv", "Usage", "Elsewhere")
    alice.fails(2, "bogus-command")
    (tmp_path / "f").write_text("x")
    alice.ok("mkdir", "Plain2")
    alice.fails(2, "mv", "Plain2", "Usage/inside")
    alice.ok("put", tmp_path / "f", "Usage/f")  # twin


def test_large_file_streams_with_progress_and_verifies(alice, tmp_path):
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        for _ in range(6):
            handle.write(os.urandom(1 << 20))
    alice.ok("encrypt", "Big")
    result = alice.run_process("put", big, "Big/")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "big.out"
    result = alice.run_process("get", "Big/big.bin", out)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == big.read_bytes()
    # a large plain file takes the same bulk path (client.bulk) outside encrypted trees
    alice.ok("mkdir", "PlainBig")
    alice.ok("put", big, "PlainBig/")
    plain_out = tmp_path / "plain.out"
    alice.ok("get", "PlainBig/big.bin", plain_out)
    assert plain_out.read_bytes() == big.read_bytes()


@pytest.mark.parametrize("size", [5, 5 << 20])  # the small path and the disk-thread path
def test_get_fsyncs_unless_told_not_to(alice, tmp_path, monkeypatch, size):
    data = os.urandom(size)
    (tmp_path / "f.bin").write_bytes(data)
    alice.ok("encrypt", f"Sync{size}")
    alice.ok("put", tmp_path / "f.bin", f"Sync{size}/")
    synced: list[str] = []  # what was fsynced in tmp_path (the keystore lives elsewhere)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if path.startswith(str(tmp_path)):
            synced.append(os.path.basename(path))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    alice.ok("get", f"Sync{size}/f.bin", tmp_path / "durable.bin")
    assert len(synced) == 2 and synced[1] == tmp_path.name  # the file, then its folder
    synced.clear()
    alice.ok("get", "--no-fsync", f"Sync{size}/f.bin", tmp_path / "cached.bin")
    assert synced == []
    assert (tmp_path / "cached.bin").read_bytes() == data == (tmp_path / "durable.bin").read_bytes()


def _blob_files(stack):
    return [p for p in stack.blob_dir.rglob("*") if p.is_file()]


def _wait_for_lock(device, timeout=30.0):
    """Until the server holds a lock and the client has noted its token (mid-transfer)."""
    import time

    deadline = time.monotonic() + timeout
    locks = device.config / "locks.json"
    while time.monotonic() < deadline:
        noted = locks.exists() and json.loads(locks.read_text() or "{}")
        if noted and device.stack.query("SELECT COUNT(*) FROM e2ee_lock")[0][0]:
            return
        time.sleep(0.02)
    raise AssertionError("the upload never took its lock")


@pytest.mark.parametrize("how", ["interrupt", "kill"])
def test_interrupted_upload_leaves_the_folder_as_it_was(alice, tmp_path, how):
    import signal
    import subprocess

    folder = f"Interrupted-{how}"
    alice.ok("encrypt", folder)
    small = tmp_path / "small.txt"
    small.write_text("kept")
    alice.ok("put", small, f"{folder}/")
    before = listing(alice, folder)
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        handle.truncate(1 << 30)  # sparse: cheap to make, slow enough to interrupt
    process = subprocess.Popen(
        [str(alice_e2ee()), "put", str(big), f"{folder}/"],
        env={**os.environ, **alice.env},
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    _wait_for_lock(alice)
    process.send_signal(signal.SIGINT if how == "interrupt" else signal.SIGKILL)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    if how == "interrupt":
        assert stderr.strip().splitlines() == ["e2ee: interrupted"]
        assert alice.stack.query("SELECT COUNT(*) FROM e2ee_lock")[0][0] == 0
    assert listing(alice, folder) == before
    # the next write aborts a lock a killed run left behind, and goes through
    small.write_text("next")
    alice.ok("put", small, f"{folder}/")
    out = tmp_path / "back"
    alice.ok("get", f"{folder}/small.txt", out)
    assert out.read_text() == "next"
    assert alice.stack.query("SELECT COUNT(*) FROM e2ee_lock")[0][0] == 0


def alice_e2ee():
    from tests.cli.conftest import E2EE

    return E2EE


def test_tampered_blob_is_refused_and_nothing_is_written(alice, tmp_path):
    alice.ok("encrypt", "Tamper")
    source = tmp_path / "t.txt"
    payload = b"exactly this content, 53 bytes long, to find its blob"
    source.write_bytes(payload)
    before = set(_blob_files(alice.stack))
    alice.ok("put", source, "Tamper/")
    (blob,) = [
        p for p in set(_blob_files(alice.stack)) - before if p.stat().st_size == len(payload) + 16
    ]
    out = tmp_path / "out.txt"
    alice.ok("get", "Tamper/t.txt", out)  # twin: the honest blob
    out.unlink()
    data = bytearray(blob.read_bytes())
    data[3] ^= 1
    blob.write_bytes(bytes(data))
    result = alice.fails(3, "get", "Tamper/t.txt", out)
    assert "DecryptionError" in result.stderr
    assert not out.exists() and list(tmp_path.glob(".out.txt*")) == []


@pytest.mark.parametrize(
    ("where", "error"), [("body", "DecryptionError"), ("tag", "TagMismatchError")]
)
def test_tampered_large_blob_is_refused_and_nothing_is_written(alice, tmp_path, where, error):
    """Large downloads (http.client body, disk thread, early writeback) check as strictly."""
    folder = f"TamperBig-{where}"
    alice.ok("encrypt", folder)
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(6 << 20))
    before = set(_blob_files(alice.stack))
    alice.ok("put", source, f"{folder}/")
    (blob,) = [p for p in set(_blob_files(alice.stack)) - before if p.stat().st_size > 6 << 20]
    out = tmp_path / "out.bin"
    alice.ok("get", f"{folder}/big.bin", out)  # twin: the honest blob
    assert out.read_bytes() == source.read_bytes()
    out.unlink()
    data = bytearray(blob.read_bytes())
    data[5 << 20 if where == "body" else -1] ^= 1
    blob.write_bytes(bytes(data))
    result = alice.fails(3, "get", f"{folder}/big.bin", out)
    assert error in result.stderr
    assert not out.exists() and list(tmp_path.glob(".out.bin*")) == []


def test_progress_bar_on_a_terminal_only_for_transfers_over_1_mb(alice, tmp_path, monkeypatch):
    alice.ok("encrypt", "Bars")
    big, small = tmp_path / "big.bin", tmp_path / "small.bin"
    big.write_bytes(os.urandom(2_000_000))
    small.write_bytes(os.urandom(900_000))
    # rich's switches: stderr counts as an interactive terminal
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    monkeypatch.setenv("COLUMNS", "120")
    for verb, source, target, quiet_target in (
        ("put", big, "Bars/", "Bars/quiet.bin"),
        ("get", "Bars/big.bin", tmp_path / "back.bin", tmp_path / "quiet.bin"),
    ):
        shown = alice.run_process(verb, source, target)
        assert shown.returncode == 0, shown.stderr
        assert f"{verb} big.bin" in shown.stderr and "MB" in shown.stderr
        quiet = alice.run_process("-q", verb, source, quiet_target)
        assert quiet.returncode == 0 and quiet.stderr == ""
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()
    small_put = alice.run_process("put", small, "Bars/")
    assert small_put.returncode == 0 and small_put.stderr == ""
    monkeypatch.setenv("TTY_COMPATIBLE", "0")  # a pipe or a log: no bar
    piped = alice.run_process("put", big, "Bars/piped.bin")
    assert piped.returncode == 0 and piped.stderr == ""
