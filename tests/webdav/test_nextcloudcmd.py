"""The official Nextcloud sync engine (nextcloudcmd, Debian's nextcloud-desktop-cmd) against a
live stack under gunicorn: first sync, then changes on both sides, then convergence."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from tests.conftest import require
from tests.live import LiveStack

pytestmark = [pytest.mark.nextcloudcmd, pytest.mark.e2e]

UID = "alice"
DAV = "{DAV:}"
# The client's own bookkeeping in the synced folder; it must never reach the server.
JOURNAL = re.compile(
    r"^\.?_?\.?sync_[0-9a-f]+\.db(-wal|-shm|-journal)?$|^\.(own|next)cloudsync\.log")
BIG = 20 * 1000 * 1000


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def local_tree(root: Path) -> dict[str, str | None]:
    """{relative path: sha256 of the bytes, None for folders}, journal files left out."""
    tree: dict[str, str | None] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if JOURNAL.match(path.name):
            continue
        tree[rel] = None if path.is_dir() else digest(path.read_bytes())
    return tree


def local_mtimes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): int(p.stat().st_mtime)
            for p in root.rglob("*") if p.is_file() and not JOURNAL.match(p.name)}


def server_listing(client: httpx.Client, path: str) -> list[tuple[str, bool, int]]:
    response = client.request("PROPFIND", path, headers={"Depth": "1"})
    assert response.status_code == 207, response.text
    entries = []
    for resp in ET.fromstring(response.text).iter(DAV + "response"):
        href = unquote(resp.findtext(DAV + "href") or "")
        is_dir = resp.find(f".//{DAV}resourcetype/{DAV}collection") is not None
        modified = resp.findtext(f".//{DAV}getlastmodified") or ""
        mtime = int(parsedate_to_datetime(modified).timestamp()) if modified else 0
        entries.append((href, is_dir, mtime))
    return entries


def server_tree(client: httpx.Client) -> tuple[dict[str, str | None], dict[str, int]]:
    """The server's tree read back over WebDAV (PROPFIND walk + GET of every file)."""
    base = f"/remote.php/dav/files/{UID}/"
    tree: dict[str, str | None] = {}
    mtimes: dict[str, int] = {}
    pending = [base]
    while pending:
        folder = pending.pop()
        for href, is_dir, mtime in server_listing(client, folder):
            rel = href[len(base):].rstrip("/")
            if href.rstrip("/") == folder.rstrip("/") or not rel:
                continue
            if is_dir:
                tree[rel] = None
                pending.append(href)
            else:
                response = client.get(href)
                assert response.status_code == 200
                tree[rel] = digest(response.content)
                mtimes[rel] = mtime
    return dict(sorted(tree.items())), mtimes


def run_sync(stack: LiveStack, local: Path, home: Path, password: str) -> str:
    env = {**os.environ, "HOME": str(home), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    result = subprocess.run(
        ["nextcloudcmd", "--non-interactive", "--trust", "--max-sync-retries", "1",
         "-u", UID, "-p", password, str(local), stack.base_url],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:] + "\n--- server log ---\n" + stack.log_text()
    return output


@pytest.fixture
def nextcloudcmd() -> None:
    require(shutil.which("nextcloudcmd") is not None, "nextcloudcmd (apt: nextcloud-desktop-cmd)")


def test_nextcloudcmd_syncs_both_ways_and_converges(nextcloudcmd, make_live_stack, tmp_path):
    stack: LiveStack = make_live_stack()
    stack.create_user(UID, "account password for alice")
    app_password = stack.create_app_password(UID, "nextcloudcmd")
    local, home = tmp_path / "local", tmp_path / "home"
    home.mkdir()

    # --- a first tree: nesting, an empty file, 20 MB, spaces and non-ASCII ---------------
    (local / "Documents" / "Reports 2026").mkdir(parents=True)
    (local / "Documents" / "Reports 2026" / "Q1 — Übersicht.txt").write_text("Quartal eins\n")
    (local / "Documents" / "empty.txt").write_bytes(b"")
    (local / "Photos").mkdir()
    (local / "Photos" / "big.bin").write_bytes(os.urandom(BIG))
    (local / "日本語 フォルダ").mkdir()
    (local / "日本語 フォルダ" / "ファイル.md").write_text("# こんにちは\n")
    (local / "Empty Folder").mkdir()
    (local / "top level.txt").write_text("top\n")

    output = run_sync(stack, local, home, app_password)
    assert "does not support X-OC-MTime" not in output

    with stack.client(auth=(UID, app_password)) as client:
        remote, remote_mtimes = server_tree(client)
        expected = local_tree(local)
        assert remote == expected
        assert remote["Photos/big.bin"] == digest((local / "Photos" / "big.bin").read_bytes())
        assert remote["Documents/empty.txt"] == digest(b"")
        assert remote_mtimes == local_mtimes(local)  # X-OC-MTime honoured
        # The journal stays local.
        assert any(JOURNAL.match(p.name) for p in local.iterdir())
        assert not stack.query("SELECT name FROM files_node WHERE name LIKE %s", ["%sync_%"])
        # DB and blob store agree with what WebDAV served: one blob per file, none stray.
        keys = {row[0] for row in stack.query(
            "SELECT blob_key FROM files_node WHERE kind = 'file'")}
        assert keys == {p.name for p in stack.blob_dir.glob("??/??/*")}
        assert not stack.query("SELECT id FROM files_uploadchunk")

        # --- change, add and delete on both sides -----------------------------------------
        time.sleep(1.1)  # the client compares mtimes in whole seconds
        (local / "top level.txt").write_text("top, changed locally\n")
        (local / "Documents" / "new local.txt").write_text("new on the laptop\n")
        (local / "Documents" / "empty.txt").unlink()
        (local / "Local Dir" / "sub").mkdir(parents=True)
        (local / "Local Dir" / "sub" / "x.txt").write_text("deep local\n")

        base = f"/remote.php/dav/files/{UID}"
        assert client.put(f"{base}/Photos/server added.txt",
                          content=b"added on the server\n").status_code == 201
        assert client.put(f"{base}/日本語 フォルダ/ファイル.md",
                          content=b"# changed on the server\n").status_code == 204
        assert client.delete(f"{base}/Empty Folder").status_code == 204
        assert client.request("MKCOL", f"{base}/Server Dir").status_code == 201
        assert client.put(f"{base}/Server Dir/s.txt", content=b"server dir\n").status_code == 201
        moved = client.request("MOVE", f"{base}/Photos/big.bin", headers={
            "Destination": stack.url(f"{base}/Photos/big renamed.bin")})
        assert moved.status_code == 201

        run_sync(stack, local, home, app_password)

        remote, remote_mtimes = server_tree(client)
        assert remote == local_tree(local)
        assert remote_mtimes == local_mtimes(local)
    assert not [p for p in local_tree(local) if "conflict" in p.lower()]
    assert (local / "top level.txt").read_text() == "top, changed locally\n"
    assert remote["top level.txt"] == digest(b"top, changed locally\n")
    assert remote["Documents/new local.txt"] == digest(b"new on the laptop\n")
    assert remote["Local Dir/sub/x.txt"] == digest(b"deep local\n")
    assert "Documents/empty.txt" not in remote
    assert (local / "Photos" / "server added.txt").read_bytes() == b"added on the server\n"
    assert (local / "日本語 フォルダ" / "ファイル.md").read_bytes() == b"# changed on the server\n"
    assert not (local / "Empty Folder").exists() and "Empty Folder" not in remote
    assert (local / "Server Dir" / "s.txt").read_bytes() == b"server dir\n"
    assert not (local / "Photos" / "big.bin").exists()
    assert len((local / "Photos" / "big renamed.bin").read_bytes()) == BIG
