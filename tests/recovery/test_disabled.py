"""The negative of issue 7 item 3: with recovery disabled before a folder was written, the
recovery key opens nothing in it. Twin: the same key opens a folder written while enabled."""

from __future__ import annotations

from tests.recovery.conftest import disable, enable, root_users


def test_recovery_key_opens_nothing_written_while_disabled(
    stack, admin, make_device, new_recovery_key, tmp_path
):
    key = new_recovery_key()
    enable(stack, key)
    erin = make_device("erin")
    erin.ok("init", "--mnemonic-out", tmp_path / "words")
    note = tmp_path / "note.txt"
    note.write_bytes(b"written while recovery was enabled\n")
    erin.ok("encrypt", "Before")
    erin.ok("put", note, "Before/note.txt")
    disable(stack)
    later = erin.ok("encrypt", "After")
    assert "WARNING" not in later.stderr and "disabled the recovery key" in later.stderr
    erin.ok("mkdir", "-p", "After/inner")
    note.write_bytes(b"written after recovery was disabled\n")
    erin.ok("put", note, "After/inner/note.txt")
    assert root_users(stack, "After", "erin") == ["erin"]
    phrase = key.phrase_file(tmp_path)
    out = tmp_path / "after"
    failed = admin.fails(
        3, "recovery", "decrypt", "--key", key.path, "--user", "erin",
        "--folder", "After", "--out", out, "--phrase-file", phrase,
    )  # fmt: skip
    assert "no entry for the recovery key" in failed.stderr
    assert not out.exists() or not any(out.rglob("*"))
    # Twin: the same key, the same admin, a folder written while recovery was enabled.
    before = tmp_path / "before"
    admin.ok(
        "recovery", "decrypt", "--key", key.path, "--user", "erin",
        "--folder", "Before", "--out", before, "--phrase-file", phrase,
    )  # fmt: skip
    assert (before / "note.txt").read_bytes() == b"written while recovery was enabled\n"
