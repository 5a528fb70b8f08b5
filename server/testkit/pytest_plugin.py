"""pytest fixtures for suites that test a client against a real e2ee-stack (entry point
`pytest11`, so `pip install e2ee-stack` is all it takes):

- ``e2ee_server`` (session): an ephemeral stack (:class:`EphemeralServer`): ``.url``,
  ``.users``, ``.admin``, ``.server_key``, ``.faults``, ``.create_user()``, ``.http(user)``.
- ``e2ee_user``: a fresh user on it (:class:`StackUser`: ``.id``, ``.password``,
  ``.app_password``, ``.auth``).
- ``e2ee_client``: our own client signed in as ``e2ee_user`` with keys made (``e2ee init``):
  ``.session()`` for the library, ``.run("put", …)`` for the ``e2ee`` command.
- ``e2ee_faults``: ``e2ee_server.faults``, cleared after the test.

Options: ``--e2ee-seed FILE`` (users, folders, shares, keys for the session's stack) and
``--e2ee-inline-signing`` (no worker process; the web process signs). The stack's log goes to
``e2ee-stack.log`` in pytest's base temp dir.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .harness import EphemeralServer, Faults, StackUser


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("e2ee-stack", "e2ee-stack test server")
    group.addoption(
        "--e2ee-seed",
        type=Path,
        default=None,
        help="seed file (YAML/JSON) for the e2ee_server fixture",
    )
    group.addoption(
        "--e2ee-inline-signing",
        action="store_true",
        default=False,
        help="e2ee_server: sign certificates in the web process (no worker)",
    )


@dataclass
class ClientDevice:
    """One device of our client: its own keystore (E2EE_CONFIG_DIR), signed in, with keys."""

    server: EphemeralServer
    user: StackUser
    config_dir: Path
    mnemonic: str = field(default="", repr=False)

    def session(self) -> Any:
        """A :class:`client.ops.session.Session` on this device; use it as a context manager."""
        from client.keystore import Keystore
        from client.ops.session import Session

        return Session.open(Keystore(self.config_dir), notify=lambda message: None)

    def run(self, *args: str | Path, input: str | None = None) -> Any:
        """`e2ee ARGS` in-process (click's runner); returns its Result (exit_code, stdout)."""
        from click.testing import CliRunner

        from client.cli import main

        return CliRunner().invoke(
            main, [str(a) for a in args], input=input, env={"E2EE_CONFIG_DIR": str(self.config_dir)}
        )

    @classmethod
    def create(
        cls, server: EphemeralServer, user: StackUser, config_dir: Path, *, keys: bool = True
    ) -> ClientDevice:
        from client.keystore import Keystore
        from client.ops import identity

        identity.login(Keystore(config_dir), server.url, user.id, user.app_password)
        device = cls(server, user, config_dir)
        if keys:
            with device.session() as session:
                device.mnemonic = identity.init(session).mnemonic
        return device


@pytest.fixture(scope="session")
def e2ee_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EphemeralServer]:
    log = tmp_path_factory.getbasetemp() / "e2ee-stack.log"
    with EphemeralServer.start(
        seed=request.config.getoption("e2ee_seed"),
        inline_signing=request.config.getoption("e2ee_inline_signing"),
        log_path=log,
    ) as server:
        yield server


@pytest.fixture
def e2ee_user(e2ee_server: EphemeralServer) -> StackUser:
    return e2ee_server.create_user()


@pytest.fixture
def e2ee_client(e2ee_server: EphemeralServer, e2ee_user: StackUser, tmp_path: Path) -> ClientDevice:
    return ClientDevice.create(e2ee_server, e2ee_user, tmp_path / "e2ee-client")


@pytest.fixture
def e2ee_faults(e2ee_server: EphemeralServer) -> Iterator[Faults]:
    faults = e2ee_server.faults
    yield faults
    with contextlib.suppress(Exception):  # the stack may be gone already
        faults.clear()
