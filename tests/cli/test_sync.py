"""Two-way sync: additions, changes, deletions and renames on both sides, conflicts keep both,
a second run changes nothing, two devices converge, an interrupted run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.cli.conftest import E2EE

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def devices(make_device, tmp_path_factory):
    words = tmp_path_factory.mktemp("sync-words") / "w"
    laptop = make_device("syd")
    laptop.ok("init", "--mnemonic-out", words)
    phone = make_device("syd", "phone")
    phone.ok("add-device", "--mnemonic-file", words)
    return laptop, phone


def tree(root):
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def sync(device, local, remote):
    return json.loads(device.ok("--json", "sync", local, remote).stdout)


def test_two_devices_converge(devices, tmp_path):
    laptop, phone = devices
    laptop.ok("encrypt", "Sync")
    a, b = tmp_path / "laptop", tmp_path / "phone"
    a.mkdir(), b.mkdir()
    (a / "docs" / "deep").mkdir(parents=True)
    (a / "docs" / "deep" / "ünïcode.txt").write_text("one")
    (a / "top.txt").write_text("top")
    (a / "empty").mkdir()
    first = sync(laptop, a, "Sync")
    assert sorted(first["uploaded"]) == ["docs/deep/ünïcode.txt", "top.txt"]
    assert sync(laptop, a, "Sync") == {k: [] for k in first}  # idempotent

    sync(phone, b, "Sync")
    assert tree(b) == tree(a)
    assert (b / "empty").is_dir()

    # changes on both sides, different files: additions, edits, deletes, renames
    (b / "top.txt").write_text("edited on phone")
    (b / "docs" / "deep" / "ünïcode.txt").rename(b / "docs" / "renamed.txt")
    (a / "new-on-laptop.txt").write_text("new")
    sync(phone, b, "Sync")
    sync(laptop, a, "Sync")
    sync(phone, b, "Sync")
    assert tree(a) == tree(b)
    assert set(tree(a)) == {"top.txt", "docs/renamed.txt", "new-on-laptop.txt"}
    assert (a / "top.txt").read_text() == "edited on phone"

    (a / "new-on-laptop.txt").unlink()
    sync(laptop, a, "Sync")
    report = sync(phone, b, "Sync")
    assert report["deleted_local"] == ["new-on-laptop.txt"]
    assert tree(a) == tree(b)
    assert sync(laptop, a, "Sync")["uploaded"] == [] and sync(phone, b, "Sync")["uploaded"] == []


def test_conflict_keeps_both_copies(devices, tmp_path):
    laptop, phone = devices
    laptop.ok("encrypt", "Conflict")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "plan.txt").write_text("v0")
    sync(laptop, a, "Conflict")
    sync(phone, b, "Conflict")
    (a / "plan.txt").write_text("laptop version")
    time.sleep(0.01)
    (b / "plan.txt").write_text("phone version")
    sync(laptop, a, "Conflict")
    report = sync(phone, b, "Conflict")
    assert report["conflicts"] == ["plan.txt"]
    sync(laptop, a, "Conflict")
    contents = sorted(tree(a).values())
    assert contents == [b"laptop version", b"phone version"]
    (copy,) = [name for name in tree(b) if "conflict" in name]
    assert copy.startswith("plan (conflict syd ") and copy.endswith(").txt")
    assert tree(a) == tree(b)
    assert (a / "plan.txt").read_text() == "laptop version"  # the remote version keeps the name


def test_new_on_both_sides_with_equal_content_is_no_conflict(devices, tmp_path):
    laptop, phone = devices
    laptop.ok("encrypt", "Same")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "same.txt").write_text("identical")
    (b / "same.txt").write_text("identical")
    sync(laptop, a, "Same")
    assert sync(phone, b, "Same")["conflicts"] == []
    assert tree(b) == {"same.txt": b"identical"}


def test_interrupted_sync_resumes(devices, tmp_path):
    laptop, _ = devices
    laptop.ok("encrypt", "Resume")
    a = tmp_path / "a"
    a.mkdir()
    for i in range(3):
        with (a / f"big{i}.bin").open("wb") as handle:
            handle.truncate(300 << 20)
    (a / "small.txt").write_text("small")
    process = subprocess.Popen(
        [str(E2EE), "sync", str(a), "Resume"],
        env={**os.environ, **laptop.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not laptop.stack.query("SELECT COUNT(*) FROM e2ee_lock")[0][0]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert process.returncode == 1
    report = sync(laptop, a, "Resume")
    assert len(report["uploaded"]) == 4
    assert sync(laptop, a, "Resume")["uploaded"] == []
    listed = json.loads(laptop.ok("--json", "ls", "Resume").stdout)
    assert {item["name"]: item["size"] for item in listed}["big2.bin"] == 300 << 20
