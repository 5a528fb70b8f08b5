"""Recovery-key tests against a live stack (inline software signing, as tests/cli)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.cli.conftest import Device, make_device, stack  # noqa: F401 - fixtures
from tests.live import LiveStack


@dataclass
class RecoveryKeyDir:
    path: Path
    user_id: str
    phrase: str = field(repr=False)

    @property
    def csr(self) -> Path:
        return self.path / "recovery.csr.pem"

    def phrase_file(self, tmp: Path) -> Path:
        target = tmp / f"phrase-{self.user_id.split(':')[1]}.txt"
        target.write_text(self.phrase + "\n")
        return target


def make_superuser(live: LiveStack, user: str) -> None:
    live.manage(
        "shell",
        "-c",
        "from server.accounts.models import User; "
        f"User.objects.filter(username={user!r}).update(is_superuser=True, is_staff=True)",
    )


@pytest.fixture(scope="module")
def admin(stack, make_device) -> Device:  # noqa: F811
    """The administrator: a superuser with an `e2ee login` (pinned server key), no E2EE key."""
    device = make_device("admin", "workstation")
    make_superuser(stack, "admin")
    return device


@pytest.fixture(scope="module")
def new_recovery_key(admin, tmp_path_factory):
    def create() -> RecoveryKeyDir:
        out = tmp_path_factory.mktemp("offline") / "recovery-key"
        created = json.loads(admin.ok("--json", "recovery", "create", "--out", out).stdout)
        return RecoveryKeyDir(out, created["id"], created["phrase"])

    return create


def enable(live: LiveStack, key: RecoveryKeyDir) -> str:
    return live.manage("recovery", "enable", "--csr", str(key.csr), "--actor", "tests")


def disable(live: LiveStack) -> str:
    return live.manage("recovery", "disable", "--actor", "tests")


def root_users(live: LiveStack, folder: str, owner: str) -> list[str]:
    """The `users` ids of the committed root metadata of `owner`'s top folder `folder`."""
    rows = live.query(
        "SELECT m.document FROM e2ee_foldermetadata m JOIN files_node n ON n.id = m.node_id "
        "JOIN accounts_user u ON u.id = n.owner_id "
        "WHERE n.name = %s AND u.username = %s",
        [folder, owner],
    )
    assert len(rows) == 1, rows
    return [u["userId"] for u in json.loads(rows[0][0])["users"]]
