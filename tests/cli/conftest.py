"""The `e2ee` command against a live stack: an ephemeral one per module, started exactly as
client developers start theirs (`e2ee-stack serve --ephemeral`, server.testkit), with inline
signing (no worker process) and no default users; users come from its testkit endpoint.

Each `Device` is one configuration directory (E2EE_CONFIG_DIR): alice's laptop and phone are
two devices of one account. Commands run in-process through click's runner, so a failure
shows its stderr line; `Device.run_process` runs the installed console script instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from client.cli import main
from server.testkit.database import ThrowawayDatabase
from server.testkit.harness import EphemeralServer, StackError
from tests.live import LiveStack

E2EE = Path(sys.executable).with_name("e2ee")


@dataclass
class KitStack:
    """An ephemeral stack with the parts of tests.live.LiveStack these tests use."""

    server: EphemeralServer

    @property
    def base_url(self) -> str:
        return self.server.url

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def database(self) -> ThrowawayDatabase:
        return ThrowawayDatabase(url=self.server.database_url)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.server.query(sql, params)

    def manage(self, *args: str, input_text: str | None = None) -> str:
        try:
            return self.server.manage(*args, input_text=input_text)
        except StackError as exc:
            raise RuntimeError(str(exc)) from None  # what LiveStack.manage raises

    def client(self, auth: tuple[str, str] | None = None, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, auth=auth, timeout=120, **kwargs)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[KitStack]:
    base = tmp_path_factory.mktemp("stack")
    seed = base / "seed.yaml"
    # only the kit's own administrator (not `admin`: tests/recovery makes that one)
    seed.write_text("users: [{id: testkit-admin, admin: true}]\n")
    with EphemeralServer.start(seed=seed, inline_signing=True, log_path=base / "log") as server:
        yield KitStack(server)


@dataclass
class Device:
    stack: KitStack | LiveStack
    user: str
    password: str
    config: Path

    @property
    def env(self) -> dict[str, str]:
        return {"E2EE_CONFIG_DIR": str(self.config)}

    def run(self, *args: str | Path, input: str | None = None) -> Result:
        old = os.environ.get("E2EE_CONFIG_DIR")
        os.environ["E2EE_CONFIG_DIR"] = str(self.config)
        try:
            return CliRunner().invoke(main, [str(a) for a in args], input=input)
        finally:
            if old is None:
                os.environ.pop("E2EE_CONFIG_DIR", None)
            else:
                os.environ["E2EE_CONFIG_DIR"] = old

    def ok(self, *args: str | Path, input: str | None = None) -> Result:
        result = self.run(*args, input=input)
        assert result.exit_code == 0, (args, result.stderr, result.exception)
        return result

    def fails(self, code: int, *args: str | Path) -> Result:
        result = self.run(*args)
        assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("e2ee"), result.stderr
        assert "Traceback" not in result.stderr
        return result

    def run_process(self, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
        env = {**os.environ, **self.env}
        return subprocess.run(
            [str(E2EE), *map(str, args)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def login(self) -> None:
        secret = self.config.parent / f"{self.config.name}.password"
        secret.write_text(self.password)
        self.ok("login", self.stack.base_url, "--user", self.user, "--password-file", secret)


def new_account(stack: KitStack | LiveStack, user: str) -> str:
    """A user and an app password: one testkit call, or (a module's own LiveStack, e.g. the
    SoftHSM story) the management commands."""
    if isinstance(stack, KitStack):
        return stack.server.create_user(user).app_password
    stack.create_user(user)
    return stack.create_app_password(user, name="cli tests")


@pytest.fixture(scope="module")
def make_device(stack, tmp_path_factory):
    passwords: dict[str, str] = {}

    def make(user: str, name: str = "laptop", *, login: bool = True) -> Device:
        if user not in passwords:
            passwords[user] = new_account(stack, user)
        config = tmp_path_factory.mktemp(f"{user}-{name}")
        device = Device(stack, user, passwords[user], config / "e2ee")
        if login:
            device.login()
        return device

    return make
