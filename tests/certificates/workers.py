"""A live signing stack for tests: gunicorn (web, no PIN, no module) on its own database, a
SoftHSM CA made with `manage.py ca init --backend pkcs11`, and a real Celery worker process on
the real Redis broker (queue `hsm`) that can be killed with SIGKILL and restarted."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.conftest import require
from tests.live import REPO, LiveStack
from tests.softhsm import SoftHSM

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def require_redis() -> None:
    require(redis_available(), f"Redis at {REDIS_URL}")


@dataclass
class Worker:
    """`celery worker -Q hsm -c 1` in its own process group, so kill -9 takes all of it."""

    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    pool: str = "prefork"  # the benchmark also measures "solo" (no child process, no IPC)

    def start(self, timeout: float = 60) -> None:
        self.starts += 1
        name = f"hsm-{secrets.token_hex(3)}@localhost"
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "server.celery:app",
                    "worker",
                    "-Q",
                    "hsm",
                    "-c",
                    "1",
                    "-P",
                    self.pool,
                    "-n",
                    name,
                    "-l",
                    "INFO",
                    "--without-mingle",
                    "--without-gossip",
                    "--without-heartbeat",
                ],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[offset:].decode(errors="replace")
            if " ready." in text:
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError("worker did not start:\n" + self.log_text())

    def kill9(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class SigningStack:
    stack: LiveStack
    hsm: SoftHSM
    key_label: str
    worker: Worker
    keyprefix: str
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def worker_env(self) -> dict[str, str]:
        return {**self.stack.env, **self.hsm.env(self.key_label)}

    def manage_as_worker(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(REPO / "manage.py"), *args],
            cwd=REPO,
            env=self.worker_env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def manage_as_web(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(REPO / "manage.py"), *args],
            cwd=REPO,
            env=self.stack.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def create_users(self, uids: list[str]) -> dict[str, str]:
        """Users with one app password each, in one process (the commands take ~1 s each)."""
        script = (
            "import json,sys\n"
            "from server.accounts.models import User\n"
            "from server.accounts.services import app_password_create\n"
            "out={}\n"
            f"for uid in {uids!r}:\n"
            "    user=User.objects.create_user(username=uid, password=None)\n"
            "    out[uid]=app_password_create(user=user, name='tests')[1]\n"
            "print(json.dumps(out))\n"
        )
        done = self.manage_as_web("shell", "-c", script)
        assert done.returncode == 0, done.stderr
        created = json.loads(done.stdout.strip().splitlines()[-1])
        self.passwords.update(created)
        return created


def web_env(keyprefix: str, timeout: float) -> dict[str, str]:
    """The web process's environment: broker and wait, no PKCS#11 module, no PIN file."""
    return {
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_BROKER_KEYPREFIX": keyprefix,
        "E2EE_ISSUANCE_TIMEOUT": str(timeout),
        "E2EE_SIGNING": "worker",
        "E2EE_SIGNER": "pkcs11",
        "PKCS11_MODULE": "",
        "PKCS11_PIN_FILE": "",
        "PKCS11_TOKEN_LABEL": "",
    }


@contextlib.contextmanager
def signing_stack(
    hsm: SoftHSM, *, timeout: float = 3.0, workers: int = 2, threads: int = 16
) -> Iterator[SigningStack]:
    require_redis()
    keyprefix = f"e2ee-test-{secrets.token_hex(4)}:"
    with LiveStack.start(
        env=web_env(keyprefix, timeout), workers=workers, threads=threads
    ) as stack:
        label = "ca-" + secrets.token_hex(4)
        signing = SigningStack(
            stack=stack,
            hsm=hsm,
            key_label=label,
            keyprefix=keyprefix,
            worker=Worker(env={}, log_path=stack.data_dir / "worker.log"),
        )
        signing.worker.env = signing.worker_env
        done = signing.manage_as_worker("ca", "init", "--backend", "pkcs11")
        assert done.returncode == 0, done.stderr
        try:
            yield signing
        finally:
            signing.worker.stop()
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=keyprefix + "*"))
            if keys:
                client.delete(*keys)
