"""Refusals on read, each with its honest twin: a known encrypted folder reported plain, a
metadata rollback, and output modes (--quiet, --json) of the same commands."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.live import _pg_connect

pytestmark = pytest.mark.e2e


def execute(stack, sql, params=()):
    """Write to the stack's database, as a malicious server operator could."""
    if stack.database.is_postgres:
        with _pg_connect(stack.database.url) as conn:
            conn.execute(sql, params)
        return
    conn = sqlite3.connect(stack.database.url.removeprefix("sqlite:///"))
    try:
        conn.execute(sql.replace("%s", "?"), params)
        conn.commit()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def tina(make_device, tmp_path_factory):
    device = make_device("tina")
    device.ok("init", "--mnemonic-out", tmp_path_factory.mktemp("w") / "w")
    return device


def root_id(device, name):
    return json.loads((device.config / "folders.json").read_text())["roots"][name]


def test_encrypted_folder_reported_plain_is_refused(tina):
    tina.ok("encrypt", "Flip")
    tina.ok("ls", "Flip")  # twin: honest
    execute(
        tina.stack,
        "UPDATE files_node SET is_encrypted = %s WHERE id = %s",
        (False, root_id(tina, "Flip")),
    )
    result = tina.fails(3, "ls", "Flip")
    assert "PlaintextInEncryptedFolderError" in result.stderr
    execute(
        tina.stack,
        "UPDATE files_node SET is_encrypted = %s WHERE id = %s",
        (True, root_id(tina, "Flip")),
    )
    tina.ok("ls", "Flip")


def test_metadata_rollback_is_refused(tina, tmp_path):
    tina.ok("encrypt", "Roll")
    note = tmp_path / "n.txt"
    note.write_text("n")
    tina.ok("put", note, "Roll/")
    folder = str(root_id(tina, "Roll"))
    # the server serves an older document than this device has seen: simulate by raising
    # what the device remembers above what the server holds
    state = json.loads((tina.config / "folders.json").read_text())
    honest = state["folders"][folder]["counter"]
    state["folders"][folder]["counter"] = honest + 5
    (tina.config / "folders.json").write_text(json.dumps(state))
    assert "CounterRollbackError" in tina.fails(3, "ls", "Roll").stderr
    state["folders"][folder]["counter"] = honest
    (tina.config / "folders.json").write_text(json.dumps(state))
    tina.ok("ls", "Roll")


def test_quiet_and_json(tina, tmp_path):
    tina.ok("encrypt", "Modes")
    note = tmp_path / "m.txt"
    note.write_text("m")
    assert tina.ok("--quiet", "put", note, "Modes/").stdout == ""
    assert tina.ok("put", note, "Modes/").stdout.startswith("uploaded")
    listed = json.loads(tina.ok("--json", "ls", "Modes").stdout)
    assert listed == [
        {
            "name": "m.txt",
            "type": "file",
            "size": 1,
            "modified": listed[0]["modified"],
            "encrypted": True,
            "missing": False,
            "dropped": False,
        }
    ]
