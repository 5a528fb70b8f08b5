"""The `e2ee` command against a live stack (gunicorn as a real process, its own database).

Each `Device` is one configuration directory (E2EE_CONFIG_DIR): alice's laptop and phone are
two devices of one account. Commands run in-process through click's runner, so a failure
shows its stderr line; `Device.run_process` runs the installed console script instead.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from client.cli import main
from tests.live import LiveStack

E2EE = Path(sys.executable).with_name("e2ee")
STACK_ENV = {"E2EE_SIGNING": "inline", "E2EE_SIGNER": "software", "LOG_LEVEL": "INFO"}


def prepare_ca(stack: LiveStack) -> None:
    """A software CA key for issuance (`manage.py ca init`, where that command exists)."""
    with contextlib.suppress(RuntimeError):
        stack.manage("ca", "init", "--backend", "software")


@pytest.fixture(scope="module")
def stack() -> Iterator[LiveStack]:
    with LiveStack.start(env=STACK_ENV) as live:
        prepare_ca(live)
        yield live


@dataclass
class Device:
    stack: LiveStack
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


@pytest.fixture(scope="module")
def make_device(stack, tmp_path_factory):
    passwords: dict[str, str] = {}

    def make(user: str, name: str = "laptop", *, login: bool = True) -> Device:
        if user not in passwords:
            stack.create_user(user)
            passwords[user] = stack.create_app_password(user, name="cli tests")
        config = tmp_path_factory.mktemp(f"{user}-{name}")
        device = Device(stack, user, passwords[user], config / "e2ee")
        if login:
            device.login()
        return device

    return make
