"""`manage.py serve`, the README's run command: migrates, creates the first admin once, serves."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]


def start(data_dir: Path, port: int, **env: str) -> subprocess.Popen:
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "E2EE_ADMIN_PASSWORD", "E2EE_ADMIN_USER"}
    }
    environment.update(E2EE_DATA_DIR=str(data_dir), **env)
    return subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=environment,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def wait_ready(port: int, process: subprocess.Popen) -> list[str]:
    """Read stderr until gunicorn answers; returns the lines printed before that."""
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        lines.append(line)
        if "serving on" in line:
            break
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/status.php", timeout=2).status_code == 200:
                return lines
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("server did not start: " + "".join(lines))


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)
    process.stderr.close()


@pytest.mark.e2e
def test_serve_creates_admin_once_and_serves(tmp_path):
    port = free_port()
    process = start(tmp_path, port)
    try:
        lines = wait_ready(port, process)
        printed = re.search(r"created admin 'admin' with password: (\S+)", "".join(lines))
        assert printed, lines
        password = printed.group(1)
        me = httpx.get(
            f"http://127.0.0.1:{port}/ocs/v2.php/cloud/user?format=json", auth=("admin", password)
        )
        assert me.json()["ocs"]["data"]["id"] == "admin"
        admin_page = httpx.get(f"http://127.0.0.1:{port}/admin/login/")
        assert admin_page.status_code == 200
        css = re.search(r'href="(/static/admin/css/[^"]+)"', admin_page.text)
        assert css and httpx.get(f"http://127.0.0.1:{port}{css.group(1)}").status_code == 200
    finally:
        stop(process)
    assert (tmp_path / "db.sqlite3").exists()

    port = free_port()
    process = start(tmp_path, port)
    try:
        lines = wait_ready(port, process)
        assert not any("created admin" in line for line in lines)
        me = httpx.get(
            f"http://127.0.0.1:{port}/ocs/v2.php/cloud/user?format=json", auth=("admin", password)
        )
        assert me.status_code == 200
    finally:
        stop(process)


@pytest.mark.e2e
def test_serve_takes_admin_credentials_from_environment(tmp_path):
    port = free_port()
    process = start(
        tmp_path, port, E2EE_ADMIN_USER="root", E2EE_ADMIN_PASSWORD="chosen by the admin"
    )
    try:
        lines = wait_ready(port, process)
        assert "chosen by the admin" not in "".join(lines)
        me = httpx.get(
            f"http://127.0.0.1:{port}/ocs/v2.php/cloud/user?format=json",
            auth=("root", "chosen by the admin"),
        )
        assert me.status_code == 200
    finally:
        stop(process)
