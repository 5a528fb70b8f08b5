"""Drive an ephemeral stack from Python: start it, read its JSON line, arm faults, stop it.

    with EphemeralServer.start() as server:
        alice = server.users["alice"]
        httpx.get(server.url + "/status.php")
        server.faults.lock_423(count=2)

Only httpx is imported here, so the pytest plugin costs nothing in suites that do not use it.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

TESTKIT = "/ocs/v2.php/apps/e2ee_stack/api/v1/testkit"
START_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0


class StackError(RuntimeError):
    """The stack did not start, or the testkit endpoint refused a request."""


@dataclass(frozen=True)
class StackUser:
    id: str
    password: str = field(repr=False)
    app_password: str = field(repr=False)
    admin: bool = False
    mnemonic: str | None = field(default=None, repr=False)  # seeded users with keys: true
    config_dir: str | None = None  # seeded users with keys: their logged-in client keystore

    @property
    def auth(self) -> tuple[str, str]:
        return (self.id, self.app_password)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StackUser:
        return cls(
            data["id"],
            data["password"],
            data["app_password"],
            bool(data.get("admin")),
            data.get("mnemonic"),
            data.get("config_dir"),
        )


class Faults:
    """The fault-injection endpoint, as the stack's admin. ``user`` limits a fault to requests
    signed in as that user (so tests sharing one stack do not trip over each other's faults)."""

    def __init__(self, server: EphemeralServer) -> None:
        self._server = server

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        with self._server.http(self._server.admin) as http:
            response = http.request(method, TESTKIT + path, json=body, params={"format": "json"})
        if response.status_code >= 400:
            raise StackError(
                f"testkit {method} {path}: HTTP {response.status_code}: {response.text[:300]}"
            )
        return response.json()["ocs"]["data"]

    def arm(self, fault: str, **params: Any) -> dict[str, Any]:
        body = {"fault": fault, **{k: v for k, v in params.items() if v is not None}}
        return self._call("POST", "/faults", body)

    def lock_423(self, count: int = 1, user: str | None = None) -> dict[str, Any]:
        """The next `count` lock requests answer 423 Locked."""
        return self.arm("lock-423", count=count, user=user)

    def metadata_500(self, count: int = 1, user: str | None = None) -> dict[str, Any]:
        """The next `count` metadata PUTs answer 500; nothing is stored."""
        return self.arm("metadata-500", count=count, user=user)

    def drop_upload(
        self, after_bytes: int = 0, count: int = 1, user: str | None = None
    ) -> dict[str, Any]:
        """The next `count` WebDAV PUTs lose their connection after `after_bytes` of body."""
        return self.arm("drop-upload", after_bytes=after_bytes, count=count, user=user)

    def delay(
        self,
        seconds: float,
        count: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        user: str | None = None,
    ) -> dict[str, Any]:
        """The next `count` requests (of `method`, under `path`) wait `seconds` first."""
        return self.arm("delay", seconds=seconds, count=count, method=method, path=path, user=user)

    def expire_lock(self, folder: int | None = None) -> list[int]:
        """Roll back the lock covering `folder` (every lock if None) now, as the 24 h rollback
        would; returns the folder ids whose locks were rolled back."""
        return self._call("POST", "/expire-lock", {"folder": folder})["rolled_back"]

    def armed(self) -> list[dict[str, Any]]:
        return self._call("GET", "/faults")["faults"]

    def clear(self) -> int:
        return self._call("DELETE", "/faults")["cleared"]


def terminate(
    process: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT, sig: int = signal.SIGTERM
) -> None:
    """Ask a child to stop; kill it if it has not within `timeout` seconds."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _read_line(stream: IO[bytes], process: subprocess.Popen[bytes], timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.2):
                return stream.readline()
            if process.poll() is not None:
                return b""
    return b""


@dataclass
class EphemeralServer:
    info: dict[str, Any]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path | None = None

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        *,
        seed: Path | None = None,
        inline_signing: bool = False,
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = START_TIMEOUT,
    ) -> Iterator[EphemeralServer]:
        """`e2ee-stack serve --ephemeral` as a child process; stopped when the block ends.
        Its logs go to `log_path` (default: discarded)."""
        command = [sys.executable, "-m", "server.testkit.cli", "serve", "--ephemeral"]
        if seed is not None:
            command += ["--seed", str(seed)]
        if inline_signing:
            command.append("--inline-signing")
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            process = subprocess.Popen(  # noqa: S603 - our arguments
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
            )
        finally:
            if log_path:
                log.close()  # type: ignore[union-attr]
        server = cls(info={}, process=process, log_path=log_path)
        try:
            assert process.stdout is not None
            line = _read_line(process.stdout, process, timeout)
            if not line:
                raise StackError(f"the ephemeral stack did not start{server._log_tail()}")
            server.info = json.loads(line)
            yield server
        finally:
            server.stop()

    def _log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return ":\n" + "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        terminate(process)
        if process.stdout is not None:
            process.stdout.close()

    # --- what the JSON line says ------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.info["url"]

    @property
    def server_key(self) -> str:
        return self.info["server_key"]

    @property
    def data_dir(self) -> Path:
        return Path(self.info["data_dir"])

    @property
    def database_url(self) -> str:
        """The stack's own database (SQLite file in the data dir, or a temporary PostgreSQL
        database): for suites that want to look behind the API."""
        return self.info["database_url"]

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """One read query against the stack's database (placeholders: %s)."""
        from .database import ThrowawayDatabase

        return ThrowawayDatabase(url=self.database_url).query(sql, params)

    @property
    def users(self) -> dict[str, StackUser]:
        return {uid: StackUser.from_json(u) for uid, u in self.info["users"].items()}

    @property
    def admin(self) -> StackUser:
        return self.users[self.info["admin"]]

    @property
    def faults(self) -> Faults:
        return Faults(self)

    def http(self, user: StackUser | None = None, **kwargs: Any) -> httpx.Client:
        """An httpx client on the stack, signed in with the user's app password."""
        return httpx.Client(
            base_url=self.url,
            auth=user.auth if user else None,
            timeout=kwargs.pop("timeout", 120),
            **kwargs,
        )

    def manage(self, *args: str, input_text: str | None = None, timeout: float = 120) -> str:
        """`e2ee-stack ARGS` (a management command) against this stack; returns its stdout,
        raises StackError with its stderr."""
        import os

        done = subprocess.run(  # noqa: S603 - our arguments
            [sys.executable, "-m", "server.testkit.cli", *args],
            env={**os.environ, **self.info["manage_env"]},
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise StackError(f"e2ee-stack {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    def check_running(self) -> None:
        """Raise StackError (with the log's tail) if the stack's process has ended."""
        if self.process is None or self.process.poll() is not None:
            raise StackError(f"the ephemeral stack is no longer running{self._log_tail()}")

    def create_user(self, uid: str | None = None, *, admin: bool = False) -> StackUser:
        """A fresh user (random id unless given) with a password and an app password."""
        self.check_running()
        with self.http(self.admin) as http:
            response = http.post(
                TESTKIT + "/users",
                json={"id": uid, "admin": admin} if uid else {"admin": admin},
                params={"format": "json"},
            )
        if response.status_code != 201:
            raise StackError(f"creating a user: HTTP {response.status_code}: {response.text[:300]}")
        return StackUser.from_json(response.json()["ocs"]["data"])
