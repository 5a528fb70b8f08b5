"""`e2ee-stack serve --ephemeral` as client developers run it: the console script, one JSON
line, a seed, real certificates from the signing worker, nothing left after SIGTERM/SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from server.testkit.database import is_postgres, pg_connect, with_database
from server.testkit.harness import EphemeralServer
from tests.live import LiveStack

pytestmark = pytest.mark.e2e

E2EE_STACK = Path(sys.executable).with_name("e2ee-stack")
SEED = """
users:
  - {id: alice, keys: true}
  - {id: bob, password: bobs-own-password, keys: true}
  - {id: carol}
folders:
  - {owner: alice, path: Vault, encrypted: true}
  - {owner: alice, path: Vault/Docs}
  - {owner: alice, path: Photos/2026}
shares:
  - {owner: alice, path: Vault, with: bob}
  - {owner: alice, path: Photos, with: carol}
"""


def children_of(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True


def e2ee(config_dir: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("e2ee")), *args],
        env={**os.environ, "E2EE_CONFIG_DIR": config_dir},
        capture_output=True,
        text=True,
        timeout=120,
    )


def pg_databases() -> set[str]:
    with pg_connect(with_database(os.environ["DATABASE_URL"], "postgres")) as conn:
        rows = conn.execute("SELECT datname FROM pg_database").fetchall()
    return {r[0] for r in rows if r[0].startswith("e2ee_ephemeral_")}


def test_console_script_seeds_prints_one_line_and_leaves_nothing(tmp_path):
    seed = tmp_path / "seed.yaml"
    seed.write_text(SEED)
    started = time.monotonic()
    process = subprocess.Popen(
        [str(E2EE_STACK), "serve", "--ephemeral", "--seed", str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        info = json.loads(process.stdout.readline())
        startup = time.monotonic() - started
        url, users, data_dir = info["url"], info["users"], Path(info["data_dir"])
        assert url.startswith("http://127.0.0.1:") and data_dir.is_dir()
        assert set(users) == {"admin", "alice", "bob", "carol"} and users["admin"]["admin"]
        assert users["bob"]["password"] == "bobs-own-password"
        assert info["signing"] == "worker" and info["database_url"]
        for user in users.values():  # both secrets sign in
            for secret in (user["password"], user["app_password"]):
                me = httpx.get(
                    url + "/ocs/v2.php/cloud/user?format=json",
                    auth=(user["id"], secret),
                    headers={"OCS-APIRequest": "true"},
                )
                assert me.json()["ocs"]["data"]["id"] == user["id"]
        served = httpx.get(
            url + "/ocs/v2.php/apps/end_to_end_encryption/api/v2/server-key?format=json",
            auth=(users["carol"]["id"], users["carol"]["app_password"]),
            headers={"OCS-APIRequest": "true", "X-E2EE-SUPPORTED": "true"},
        )
        assert served.json()["ocs"]["data"]["public-key"] == info["server_key"]
        # bob's seeded device reads alice's encrypted share: certificates, keys, metadata real
        assert users["bob"]["mnemonic"] and len(users["bob"]["mnemonic"].split()) == 12
        listed = e2ee(users["bob"]["config_dir"], "--json", "ls", "Vault")
        assert listed.returncode == 0, listed.stderr
        assert [e["name"] for e in json.loads(listed.stdout)] == ["Docs"]
        plain = httpx.request(
            "PROPFIND",
            f"{url}/remote.php/dav/files/carol/Photos/",
            auth=("carol", users["carol"]["app_password"]),
            headers={"Depth": "1"},
        )
        assert plain.status_code == 207 and "2026" in plain.text
        # management commands run against the stack with the variables it names
        made = subprocess.run(
            [str(E2EE_STACK), "useradd", "dave"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **info["manage_env"]},
        )
        assert made.returncode == 0, made.stderr
        dave = httpx.get(
            url + "/ocs/v2.php/cloud/user?format=json",
            auth=("dave", made.stdout.strip()),
            headers={"OCS-APIRequest": "true"},
        )
        assert dave.status_code == 200
        children = children_of(process.pid)
        assert len(children) == 2  # gunicorn and the signing worker
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
    assert not data_dir.exists()
    assert all(gone(pid) for pid in children)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/status.php", timeout=2)
    if is_postgres(info["database_url"]):  # its own database was dropped (others may run)
        assert info["database_url"].rsplit("/", 1)[1] not in pg_databases()
    else:
        assert info["database_url"].startswith(f"sqlite:///{data_dir}/")
    assert startup < 60, startup


def test_a_bad_seed_is_one_line_exit_2_and_nothing_left(tmp_path):
    seed = tmp_path / "seed.yaml"
    seed.write_text("folders:\n  - {owner: alice, path: Vault, encrypted: true}\n")
    tmp = tmp_path / "tmp"  # its own TMPDIR: other runs on this machine make stacks too
    tmp.mkdir()
    done = subprocess.run(
        [str(E2EE_STACK), "serve", "--ephemeral", "--seed", str(seed)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TMPDIR": str(tmp)},
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "e2ee-stack: folders[0]: an encrypted folder needs an owner with keys: true"
    ]
    assert list(tmp.iterdir()) == []


def test_manage_py_serve_ephemeral_is_the_same_stack_and_stops_on_sigint(tmp_path):
    repo = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, str(repo / "manage.py"), "serve", "--ephemeral", "--inline-signing"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        info = json.loads(process.stdout.readline())
        assert info["signing"] == "inline" and set(info["users"]) == {"admin", "alice", "bob"}
        assert httpx.get(info["url"] + "/status.php").status_code == 200
        children = children_of(process.pid)
        assert len(children) == 1  # inline signing: gunicorn only
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        assert process.wait(timeout=30) == 0
        process.stdout.close()
    assert all(gone(pid) for pid in children)
    assert not Path(info["data_dir"]).exists()
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran


def test_harness_reports_a_stack_that_cannot_start(tmp_path):
    seed = tmp_path / "seed.json"
    seed.write_text("{not json")
    with (
        pytest.raises(Exception, match="did not start"),
        EphemeralServer.start(seed=seed, log_path=tmp_path / "log"),
    ):
        pass
    assert "not valid JSON" in (tmp_path / "log").read_text()


def test_a_regular_server_has_no_testkit_and_an_ephemeral_one_has(e2ee_server):
    testkit = "/ocs/v2.php/apps/e2ee_stack/api/v1/testkit/"
    with LiveStack.start(workers=1) as live:  # gunicorn on server.wsgi, as in production
        password = live.manage("useradd", "root", "--admin").strip()
        with live.client(auth=("root", password)) as http:
            for path, body in (
                ("faults", {"fault": "lock-423"}),
                ("users", {}),
                ("expire-lock", {}),
            ):
                assert http.post(testkit + path, json=body).status_code == 404, path
            assert http.get(testkit + "faults").status_code == 404
    with e2ee_server.http(e2ee_server.admin) as http:
        assert http.get(testkit + "faults").status_code == 200


EXTERNAL_SUITE = """
import httpx


def test_fixtures(e2ee_server, e2ee_user, e2ee_client, e2ee_faults, tmp_path):
    me = httpx.get(e2ee_server.url + "/ocs/v2.php/cloud/user?format=json",
                   auth=e2ee_user.auth, headers={"OCS-APIRequest": "true"})
    assert me.json()["ocs"]["data"]["id"] == e2ee_user.id == e2ee_client.user.id
    assert len(e2ee_client.mnemonic.split()) == 12
    assert e2ee_client.run("encrypt", "Vault").exit_code == 0
    e2ee_faults.lock_423(user=e2ee_user.id)  # one busy lock: the client waits it out
    (tmp_path / "a.txt").write_text("hello")
    assert e2ee_client.run("put", tmp_path / "a.txt", "Vault/").exit_code == 0
    assert not e2ee_faults.armed()
    with e2ee_client.session() as session:
        assert session.user == e2ee_user.id
"""


def test_the_plugin_serves_a_suite_outside_this_repository(tmp_path):
    """What a client developer's project gets from `pip install e2ee-stack`: the pytest11
    entry point, nothing from this repository's conftest."""
    (tmp_path / "test_mine.py").write_text(EXTERNAL_SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            "--e2ee-inline-signing",
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_mine.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout
