"""`e2ee-stack serve --ephemeral`: the whole stack, throw-away, for one test run.

A temporary data dir (blobs, software CA key, filesystem broker) and database (SQLite in that
dir; a fresh PostgreSQL database when DATABASE_URL names a PostgreSQL server), users from the
seed, then gunicorn serving server.testkit.wsgi (fault injection) on a loopback socket this
process binds itself (port 0: the kernel picks a free one) and the Celery signing worker on
the embedded broker. Once both answer, one JSON line goes to stdout; every log goes to stderr.
SIGTERM or SIGINT stops the children, drops the database and deletes the data dir.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from client.errors import E2EEError

from .database import ThrowawayDatabase
from .seed import Seed, SeedError, seed_apply, seed_load, seed_parse

STARTUP_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0
FAULTS_PATH = "/ocs/v2.php/apps/e2ee_stack/api/v1/testkit/faults"
# Settings the stack must not inherit: they would point it at real data or keys.
_DROPPED = (
    "E2EE_BLOB_DIR",
    "E2EE_CA_KEY_FILE",
    "SECRET_KEY",
    "E2EE_ADMIN_PASSWORD",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "CELERY_BROKER_KEYPREFIX",
    "DATABASE_URL",
    "E2EE_SIGNER",
    "LOG_FORMAT",
    "E2EE_BLOB_STORE",
)


class StartupError(RuntimeError):
    pass


@dataclass
class Options:
    seed: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
    signing: str = "worker"  # or "inline": the web process signs (faster start, no worker)
    workers: int = 1
    threads: int = 8


def _die_with_parent() -> None:
    """Children get SIGTERM if the supervisor is killed outright (Linux), so none outlives it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def gunicorn_private_flags() -> list[str]:
    """gunicorn >= 24 opens a control socket in ~/.gunicorn shared by every instance; a
    throw-away stack needs none (and must leave nothing behind)."""
    from gunicorn.config import KNOWN_SETTINGS

    return (
        ["--no-control-socket"]
        if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS)
        else []
    )


def _package_root() -> str:
    return str(Path(__file__).resolve().parent.parent.parent)


class Ephemeral:
    def __init__(self, options: Options, out: Callable[[str], None]) -> None:
        self.options = options
        self.out = out
        self.data_dir = Path(tempfile.mkdtemp(prefix="e2ee-ephemeral-"))
        self.database: ThrowawayDatabase | None = None
        self.children: list[subprocess.Popen[bytes]] = []
        # Nothing here outlives the run, so no graceful drain: gunicorn's quick shutdown
        # (SIGINT); the worker gets SIGTERM and one second (its Celery shutdown on the
        # filesystem broker takes ~4 s, and it has nothing to save) before SIGKILL.
        self.stop_signals: dict[int, tuple[int, float]] = {}
        self.stopping = threading.Event()
        self.secret_key = secrets.token_urlsafe(50)

    # --- environment --------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        # E2EE_EPHEMERAL_BLOB_STORE=inherit: keep the caller's S3 blob store (a prefix of its
        # own in the bucket), to run a client suite against the stack on object storage.
        inherit = os.environ.get("E2EE_EPHEMERAL_BLOB_STORE") == "inherit"
        dropped = tuple(k for k in _DROPPED if not (inherit and k == "E2EE_BLOB_STORE"))
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PKCS11_")
            and (inherit or not k.startswith("E2EE_S3_"))
            and k not in dropped
            and k.removesuffix("_FILE") not in dropped
        }
        if inherit:
            prefix = env.get("E2EE_S3_PREFIX", "")
            env["E2EE_S3_PREFIX"] = f"{prefix}ephemeral/{self.data_dir.name}/"
        env["PYTHONPATH"] = _package_root() + os.pathsep + env.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.stack_env())
        env["E2EE_TESTKIT_WORKER_READY"] = str(self.data_dir / "worker-ready")
        env.setdefault("E2EE_ISSUANCE_TIMEOUT", "30")
        env.setdefault("LOG_LEVEL", "WARNING")
        return env

    def stack_env(self) -> dict[str, str]:
        """What makes a process part of this stack; also in the JSON line (`manage_env`), so a
        suite can run management commands against it (`e2ee-stack COMMAND` with these set)."""
        assert self.database is not None
        return {
            "DJANGO_SETTINGS_MODULE": "server.settings",
            "E2EE_DATA_DIR": str(self.data_dir),
            "DATABASE_URL": self.database.url,
            "CELERY_BROKER_URL": "filesystem://",
            "E2EE_TESTKIT": "1",
            # one key for every process (each generating its own file would race)
            "SECRET_KEY": self.secret_key,
            "E2EE_SIGNER": "software",
            "E2EE_SIGNING": self.options.signing,
        }

    # --- steps ----------------------------------------------------------------------------

    def create_database(self) -> None:
        self.database = ThrowawayDatabase.create(
            self.data_dir, os.environ.get("DATABASE_URL", ""), prefix="e2ee_ephemeral_"
        )

    def prepare(self, seed: Seed) -> dict[str, Any]:
        result = subprocess.run(  # noqa: S603 - our arguments
            [sys.executable, "-m", "server.testkit.prepare"],
            input=json.dumps({"users": seed.database_users()}).encode(),
            env=self.env(),
            stdout=subprocess.PIPE,
            check=False,
            timeout=STARTUP_TIMEOUT,
        )
        if result.returncode != 0:
            raise StartupError("preparing the database failed (see above)")
        return json.loads(result.stdout)

    def _spawn(
        self, command: list[str], stop: tuple[int, float], **kwargs: Any
    ) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(  # noqa: S603 - our arguments
            command,
            env=kwargs.pop("env", None) or self.env(),
            stdout=sys.stderr.fileno(),
            preexec_fn=_die_with_parent,
            **kwargs,  # noqa: PLW1509 - before exec only
        )
        self.children.append(child)
        self.stop_signals[child.pid] = stop
        return child

    def start_web(self) -> str:
        """gunicorn on a socket bound here; it boots while the database is migrated (it
        touches the database only when requests come, and none come before prepare ends)."""
        listener = socket.create_server((self.options.host, self.options.port))
        port = listener.getsockname()[1]
        try:
            web_env = {k: v for k, v in self.env().items() if not k.startswith("PKCS11_")}
            self._spawn(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "server.testkit.wsgi:application",
                    "--bind",
                    f"fd://{listener.fileno()}",
                    "--workers",
                    str(self.options.workers),
                    "--worker-class",
                    "gthread",
                    "--threads",
                    str(self.options.threads),
                    "--timeout",
                    "300",
                    "--graceful-timeout",
                    "5",
                    *gunicorn_private_flags(),
                ],
                (signal.SIGINT, STOP_TIMEOUT),
                env=web_env,
                pass_fds=(listener.fileno(),),
            )
        finally:
            listener.close()  # gunicorn holds its own copy
        host = f"[{self.options.host}]" if ":" in self.options.host else self.options.host
        return f"http://{host}:{port}"

    def start_worker(self) -> None:
        """After prepare: on start the worker re-queues pending orders from the database."""
        if self.options.signing != "worker":
            return
        self._spawn(
            [
                sys.executable,
                "-m",
                "celery",
                "--quiet",
                "-A",
                "server.testkit.worker:app",
                "worker",
                "-Q",
                "hsm",
                "-P",
                "solo",
                "-l",
                "WARNING",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
            ],
            (signal.SIGTERM, 1.0),
        )

    def wait_ready(self, url: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        marker = self.data_dir / "worker-ready"
        web_up = False
        while time.monotonic() < deadline:
            if self.stopping.is_set():
                raise StartupError("stopped during startup")
            if any(child.poll() is not None for child in self.children):
                raise StartupError("a server process exited during startup (see above)")
            if not web_up:
                with contextlib.suppress(httpx.HTTPError):
                    web_up = httpx.get(url + "/status.php", timeout=2).status_code == 200
            if web_up and (self.options.signing != "worker" or marker.exists()):
                return
            time.sleep(0.05)
        raise StartupError(f"the stack did not answer within {STARTUP_TIMEOUT:.0f} s")

    def stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(self.stop_signals[child.pid][0])
        for child in self.children:
            try:
                child.wait(timeout=self.stop_signals[child.pid][1])
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.children = []
        if self.database is not None:
            with contextlib.suppress(Exception):  # the server may be gone; the dir still goes
                self.database.drop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # --- the whole run --------------------------------------------------------------------

    def run(self) -> int:
        def on_signal(signum: int, frame: Any) -> None:
            self.stopping.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            seed = seed_load(self.options.seed) if self.options.seed else seed_parse(None)
            self.create_database()
            url = self.start_web()
            prepared = self.prepare(seed)
            self.start_worker()
            self.wait_ready(url)
            users = {u["id"]: u for u in prepared["users"]}
            try:
                made = seed_apply(seed, url=url, users=users, clients_dir=self.data_dir / "clients")
            except E2EEError as exc:
                raise StartupError(f"seeding failed: {exc}") from None
            for uid, extra in made.items():
                users[uid].update(extra)
            self.out(
                json.dumps(
                    {
                        "url": url,
                        "server_key": prepared["server_key"],
                        "users": users,
                        "admin": next(uid for uid, u in users.items() if u["admin"]),
                        "faults": url + FAULTS_PATH,
                        "data_dir": str(self.data_dir),
                        "database_url": self.database.url if self.database else "",
                        "signing": self.options.signing,
                        "manage_env": self.stack_env(),
                        "pid": os.getpid(),
                    }
                )
            )
            while not self.stopping.wait(0.2):
                for child in self.children:
                    if child.poll() is not None:
                        name = " ".join(str(a) for a in child.args[2:4])  # type: ignore[index]
                        sys.stderr.write(
                            f"e2ee-stack: {name} exited ({child.returncode}); stopping\n"
                        )
                        return 1
            return 0
        except (SeedError, StartupError) as exc:
            sys.stderr.write(f"e2ee-stack: {exc}\n")
            return 2 if isinstance(exc, SeedError) else 1
        finally:
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def serve_ephemeral(options: Options) -> int:
    def out(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    return Ephemeral(options, out).run()
