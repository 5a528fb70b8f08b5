"""A live stack for tests: its own data dir and database, `manage.py migrate`, users and app
passwords through the management commands, and gunicorn serving `server.wsgi:application` on
a free loopback port.

    with LiveStack.start() as stack:
        password = stack.create_user("alice")
        httpx.get(stack.url("/status.php"))

The database: if DATABASE_URL names PostgreSQL, a fresh database is created on that server for
this stack (and dropped afterwards); otherwise SQLite inside the stack's data dir. Pytest
fixtures: `live_stack` (one per test module) and `make_live_stack` (a factory).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.testkit.database import ThrowawayDatabase, is_postgres, pg_connect
from server.testkit.ephemeral import gunicorn_private_flags
from server.testkit.harness import terminate

REPO = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The throw-away database is the test kit's (server.testkit.database), shared with
# `e2ee-stack serve --ephemeral`; these names stay for the suites that import them.
_is_postgres = is_postgres
_pg_connect = pg_connect


class _Database(ThrowawayDatabase):
    """The stack's own database: a fresh PostgreSQL database when DATABASE_URL names one,
    otherwise SQLite in the data dir."""

    @classmethod
    def create(cls, data_dir: Path, base_url: str | None = None,  # type: ignore[override]
               prefix: str = "e2ee_live_") -> _Database:
        url = os.environ.get("DATABASE_URL", "") if base_url is None else base_url
        return super().create(data_dir, url, prefix)  # type: ignore[return-value]


@dataclass
class LiveStack:
    data_dir: Path
    database: _Database
    port: int = 0
    workers: int = 2
    threads: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    _owns_data_dir: bool = False

    # --- construction ---------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def start(cls, *, data_dir: Path | None = None, workers: int = 2, threads: int = 4,
              env: dict[str, str] | None = None) -> Iterator[LiveStack]:
        """Prepare (data dir, database, migrate), serve, and tear everything down afterwards."""
        owns = data_dir is None
        data_dir = Path(tempfile.mkdtemp(prefix="e2ee-live-")) if data_dir is None else data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        database = _Database.create(data_dir)
        stack = cls(data_dir=data_dir, database=database, workers=workers, threads=threads,
                    extra_env=dict(env or {}), _owns_data_dir=owns)
        try:
            stack.manage("migrate", "--noinput")
            stack.serve()
            yield stack
        finally:
            stack.stop()
            database.drop()
            if owns:
                shutil.rmtree(data_dir, ignore_errors=True)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env.update({
            "DJANGO_SETTINGS_MODULE": "server.settings",
            "E2EE_DATA_DIR": str(self.data_dir),
            "DATABASE_URL": self.database.url,
            "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
            "PYTHONUNBUFFERED": "1",
        })
        env.pop("E2EE_BLOB_DIR", None)  # blobs belong under this stack's data dir
        env.update(self.extra_env)
        return env

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "gunicorn.log"

    # --- management commands --------------------------------------------------------------

    def manage(self, *args: str, input_text: str | None = None) -> str:
        """Run `manage.py ARGS` against this stack; returns stdout, raises with stderr."""
        result = subprocess.run(
            [sys.executable, str(REPO / "manage.py"), *args], cwd=REPO, env=self.env,
            input=input_text, capture_output=True, text=True, timeout=120, check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def create_user(self, uid: str, password: str | None = None) -> str:
        """Create a user; returns the account password (given, or generated and printed)."""
        if password is None:
            return self.manage("useradd", uid).strip()
        path = self.data_dir / f".password-{secrets.token_hex(4)}"
        path.write_text(password)
        try:
            self.manage("useradd", uid, "--password-file", str(path))
        finally:
            path.unlink()
        return password

    def create_app_password(self, uid: str, name: str = "tests") -> str:
        return self.manage("apppassword", "create", uid, "--name", name).strip()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.database.query(sql, params)

    # --- the server -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def client(self, auth: tuple[str, str] | None = None, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, auth=auth, timeout=120, **kwargs)

    def serve(self) -> None:
        """Start gunicorn on a free port and wait until /status.php answers."""
        for _attempt in range(3):
            self.port = free_port()
            log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
            try:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "gunicorn", "server.wsgi:application",
                     "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
                     "--worker-class", "gthread", "--threads", str(self.threads),
                     "--timeout", "300", "--graceful-timeout", "5",
                     *gunicorn_private_flags()],
                    cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                )
            finally:
                log.close()  # the child holds its own descriptor
            if self._wait_ready():
                return
            self.stop()
        raise RuntimeError(f"gunicorn did not start; log:\n{self.log_text()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False  # e.g. the port was taken meanwhile; the caller retries
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url("/status.php"), timeout=2).status_code == 200:
                    return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            terminate(process, timeout=15)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@pytest.fixture(scope="module")
def live_stack() -> Iterator[LiveStack]:
    with LiveStack.start() as stack:
        yield stack


@pytest.fixture
def make_live_stack() -> Iterator[Any]:
    """A factory for tests that need their own stack (custom env, several stacks)."""
    with contextlib.ExitStack() as stacks:
        yield lambda **kwargs: stacks.enter_context(LiveStack.start(**kwargs))
