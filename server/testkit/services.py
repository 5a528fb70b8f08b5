"""What the testkit does to an ephemeral stack besides arming faults: test users, lock expiry."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from server.accounts.services import app_password_create
from server.e2ee.locks import ROLLBACK_AFTER, locks_roll_back_stale
from server.e2ee.models import Lock
from server.errors import BadRequest, Conflict, NotFound
from server.files.selectors import node_ancestor_ids

USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True)
class KitUser:
    id: str
    password: str
    app_password: str
    admin: bool = False

    def __repr__(self) -> str:  # never the secrets
        return f"KitUser({self.id!r}, admin={self.admin})"

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "password": self.password,
            "app_password": self.app_password,
            "admin": self.admin,
        }


def kit_user_create(
    *, uid: str | None = None, password: str | None = None, admin: bool = False
) -> KitUser:
    """A user with a password (given or random) and one app password, both returned once."""
    uid = uid or "user-" + secrets.token_hex(4)
    if not USER_ID.match(uid):
        raise BadRequest("a user id is 1-64 letters, digits or _.@- (no ':' or '/')")
    password = password or secrets.token_urlsafe(18)
    User = get_user_model()
    with transaction.atomic():
        if User.objects.filter(username=uid).exists():
            raise Conflict(f"user {uid!r} already exists")
        user = User.objects.create_user(
            username=uid, password=password, is_staff=admin, is_superuser=admin
        )
        _, app_password = app_password_create(user=user, name="testkit")
    return KitUser(uid, password, app_password, admin)


def lock_expire_now(*, folder_id: int | None) -> list[int]:
    """Age the lock covering `folder_id` (every lock if None) past the 24 h limit and run the
    rollback the hourly beat task runs: staged writes reverted, lock gone. Returns folder ids."""
    locks = Lock.objects.all()
    if folder_id is not None:
        locks = locks.filter(node_id__in=node_ancestor_ids(node_id=folder_id))
        if not locks.exists():
            raise NotFound("No lock covers this folder")
    locks.update(touched_at=timezone.now() - ROLLBACK_AFTER - timedelta(seconds=1))
    return locks_roll_back_stale()
