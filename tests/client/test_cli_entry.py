"""The installed `e2ee` console script reaches the offline tools."""

import subprocess
import sys
from pathlib import Path

from client import __version__

E2EE = Path(sys.executable).with_name("e2ee")
VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(E2EE), *args], capture_output=True, text=True, check=False)


def test_version_and_help():
    assert run("--version").stdout.strip().endswith(__version__)
    listing = run("offline", "--help").stdout
    for command in ("unwrap-key", "decrypt-metadata", "decrypt-file", "verify-certificate"):
        assert command in listing


def test_offline_unwrap_key_through_the_console_script():
    folder = VECTORS / "v2-web-admin-alice"
    mnemonic = (folder / "admin.mnemonic.txt").read_text().strip()
    ok = run(
        "offline",
        "unwrap-key",
        "--encrypted-key",
        str(folder / "admin.encrypted-private-key.txt"),
        "--mnemonic",
        mnemonic,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("-----BEGIN PRIVATE KEY-----")
    wrong = run(
        "offline",
        "unwrap-key",
        "--encrypted-key",
        str(folder / "admin.encrypted-private-key.txt"),
        "--mnemonic",
        "abandon " * 11 + "about",
    )
    assert wrong.returncode == 3 and len(wrong.stderr.splitlines()) == 1
