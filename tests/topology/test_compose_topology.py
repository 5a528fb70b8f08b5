"""The docker-compose topology without a Docker engine: the web, worker and beat commands of
docker-compose.yml run as separate processes under honcho, against PostgreSQL, Redis and a
SoftHSM token the worker initialises itself. The client's end-to-end flow runs against it; then
every process restarts and the flow runs again with nothing lost and no first-start step redone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import Device
from tests.compose import compose_config
from tests.conftest import require
from tests.e2ee.helpers import API
from tests.live import REPO, _Database, free_port
from tests.softhsm import module_path

HONCHO = Path(sys.executable).with_name("honcho")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# What only the worker may hold (compose gives these to the worker service alone).
WORKER_ONLY = (
    "PKCS11_MODULE",
    "PKCS11_PIN_FILE",
    "PKCS11_SO_PIN_FILE",
    "PKCS11_TOKEN_LABEL",
    "SOFTHSM2_CONF",
)


@dataclass
class Topology:
    base_url: str
    log: Path
    procfile: Path
    env: dict[str, str]
    process: subprocess.Popen | None = None

    def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [str(HONCHO), "-f", str(self.procfile), "-d", str(REPO), "start"],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "honcho ended:\n" + self.log_text(offset)
            with contextlib.suppress(httpx.HTTPError):
                # 200 once web is up and the worker has recorded the CA key in the token
                if (
                    httpx.get(f"{self.base_url}{API}/server-key?format=json", timeout=2).status_code
                    == 200
                    and "celery@" in self.log_text(offset)
                    and " ready." in self.log_text(offset)
                ):
                    return
            time.sleep(0.3)
        raise AssertionError("topology did not come up:\n" + self.log_text(offset))

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def log_text(self, offset: int = 0) -> str:
        return self.log.read_bytes()[offset:].decode(errors="replace")


def procfile_from_compose(compose: dict) -> str:
    """The compose services' own commands; web and beat run without the worker's HSM settings."""
    lines = []
    for name in ("web", "worker", "beat"):
        # `$$` is compose's escape for a `$` the container's shell sees
        command = shlex.join(compose["services"][name]["command"]).replace("$$", "$")
        if name != "worker":
            command = "env " + " ".join(f"-u {var}" for var in WORKER_ONLY) + " " + command
        lines.append(f"{name}: {command}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def topology(tmp_path_factory):
    require(HONCHO.exists(), "honcho (dev extra)")
    require(module_path() is not None, "SoftHSM2")
    require(os.environ.get("DATABASE_URL", "").startswith("postgres"), "PostgreSQL (DATABASE_URL)")
    from tests.certificates.workers import require_redis

    require_redis()
    work = tmp_path_factory.mktemp("topology")
    (work / "compose").mkdir()
    compose = compose_config(work / "compose")
    data = work / "data"
    data.mkdir()
    database = _Database.create(data)
    tokens = work / "tokens"
    tokens.mkdir()
    (work / "softhsm2.conf").write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    secret_files = {}
    for name, value in {
        "hsm_pin": secrets.token_hex(8),
        "hsm_so_pin": secrets.token_hex(8),
        "admin_password": "topology admin password",
    }.items():
        path = work / name
        path.write_text(value + "\n")
        path.chmod(0o600)
        secret_files[name] = path
    port = free_port()
    (work / "Procfile").write_text(procfile_from_compose(compose))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PKCS11_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "server.settings",
            "E2EE_DATA_DIR": str(data),
            "DATABASE_URL": database.url,
            "CELERY_BROKER_URL": REDIS_URL,
            "CELERY_BROKER_KEYPREFIX": f"e2ee-topology-{secrets.token_hex(4)}:",
            "E2EE_SIGNER": "pkcs11",
            "E2EE_SIGNING": "worker",
            "E2EE_PORT": str(port),
            "E2EE_ADMIN_PASSWORD_FILE": str(secret_files["admin_password"]),
            "SOFTHSM2_CONF": str(work / "softhsm2.conf"),
            "PKCS11_MODULE": module_path() or "",
            "PKCS11_TOKEN_LABEL": "e2ee-ca",
            "PKCS11_KEY_LABEL": "e2ee-ca",
            "PKCS11_PIN_FILE": str(secret_files["hsm_pin"]),
            "PKCS11_SO_PIN_FILE": str(secret_files["hsm_so_pin"]),
            "PYTHONUNBUFFERED": "1",
            "E2EE_AUDIT_CHECKPOINT_SECONDS": "1",  # beat asks the worker to sign the head often
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    topo = Topology(
        base_url=f"http://127.0.0.1:{port}",
        log=work / "honcho.log",
        procfile=work / "Procfile",
        env=env,
    )
    try:
        yield topo
    finally:
        topo.stop()
        database.drop()


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.softhsm
@pytest.mark.worker
def test_compose_topology_survives_a_restart(topology, tmp_path):
    topology.start()
    log = topology.log_text()
    assert "created admin 'admin' with the password from the environment" in log
    assert "created the pkcs11 CA" in log
    server_key = httpx.get(f"{topology.base_url}{API}/server-key?format=json").json()
    admin = ("admin", "topology admin password")
    me = httpx.get(f"{topology.base_url}/ocs/v2.php/cloud/user?format=json", auth=admin)
    assert me.status_code == 200

    # a user and the client flow: certificate from the worker's HSM, encrypted upload, download
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from server.accounts.models import User; from server.accounts.services import "
            "app_password_create; u = User.objects.create_user('alice', password=None); "
            "print(app_password_create(user=u, name='t')[1])",
        ],
        cwd=REPO,
        env={k: v for k, v in topology.env.items() if k not in WORKER_ONLY},
        capture_output=True,
        text=True,
        check=True,
    )
    alice = Device(topology, "alice", done.stdout.strip().splitlines()[-1], tmp_path / "alice")  # type: ignore[arg-type]
    alice.login()
    alice.ok("init", "--mnemonic-out", tmp_path / "words")
    alice.ok("encrypt", "/Vault")
    first = tmp_path / "first.bin"
    first.write_bytes(secrets.token_bytes(300_000))
    alice.ok("put", first, "/Vault/first.bin")
    alice.ok("get", "/Vault/first.bin", tmp_path / "first.back")
    assert (tmp_path / "first.back").read_bytes() == first.read_bytes()

    # every process restarts; nothing is lost and no first-start step runs again
    topology.stop()
    offset = topology.log.stat().st_size
    topology.start()
    later = topology.log_text(offset)
    assert "created admin" not in later and "created the pkcs11 CA" not in later
    assert httpx.get(f"{topology.base_url}{API}/server-key?format=json").json() == server_key
    alice.ok("get", "/Vault/first.bin", tmp_path / "first.again")
    assert (tmp_path / "first.again").read_bytes() == first.read_bytes()
    second = tmp_path / "second.txt"
    second.write_text("written after the restart")
    alice.ok("put", second, "/Vault/second.txt")
    listing = alice.ok("ls", "/Vault").stdout
    assert "first.bin" in listing and "second.txt" in listing

    # beat → worker → token: the audit chain head is signed, and the whole log verifies
    web_env = {k: v for k, v in topology.env.items() if k not in WORKER_ONLY}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        verified = subprocess.run(
            [sys.executable, "manage.py", "audit", "verify"],
            cwd=REPO,
            env=web_env,
            capture_output=True,
            text=True,
            check=False,
        )
        if verified.returncode == 0 and " 0 signed checkpoint" not in verified.stdout:
            break
        time.sleep(1)
    assert verified.returncode == 0, verified.stderr
    assert "signed checkpoint(s)" in verified.stdout and " 0 signed" not in verified.stdout
