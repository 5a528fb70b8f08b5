"""Armed faults: what the next matching requests should suffer, shared by every web process.

The list lives in one small JSON file under the data dir, guarded by an exclusive flock, so all
gunicorn workers see the same counts and a fault fires exactly as many times as it was armed.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_E2EE = r"^/ocs/v[12]\.php/apps/end_to_end_encryption/api/v[12]/"
LOCK_PATH = re.compile(_E2EE + r"lock/[0-9]+/?$")
METADATA_PATH = re.compile(_E2EE + r"meta-data/[0-9]+/?$")
DAV_PREFIXES = ("/remote.php/dav/", "/remote.php/webdav/", "/public.php/dav/")
TESTKIT_PREFIX = re.compile(r"^/ocs/v[12]\.php/apps/e2ee_stack/api/v1/testkit/")

KINDS = ("lock-423", "metadata-500", "drop-upload", "delay")
MAX_COUNT = 1000
MAX_DELAY = 60.0


class FaultError(ValueError):
    """A fault request that does not make sense (answered 400)."""


@dataclass
class Fault:
    id: int
    fault: str
    remaining: int
    user: str | None = None  # only requests signed in (HTTP Basic) as this user
    after_bytes: int = 0  # drop-upload: how much of the body arrives first
    seconds: float = 0.0  # delay
    method: str | None = None  # delay: only this method
    path: str | None = None  # delay: only paths starting with this
    fired: int = field(default=0)

    def matches(self, method: str, path: str, user: str | None) -> bool:
        if self.user is not None and self.user != user:
            return False
        if self.fault == "lock-423":
            return method == "POST" and bool(LOCK_PATH.match(path))
        if self.fault == "metadata-500":
            return method == "PUT" and bool(METADATA_PATH.match(path))
        if self.fault == "drop-upload":
            return method == "PUT" and path.startswith(DAV_PREFIXES)
        # delay
        if self.method is not None and method != self.method:
            return False
        return self.path is None or path.startswith(self.path)


def _number(raw: Any, name: str, *, kind: type, low: float, high: float) -> Any:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise FaultError(f"{name} must be a number")
    value = kind(raw)
    if not low <= value <= high:
        raise FaultError(f"{name} must be between {low} and {high}")
    return value


def fault_parse(data: dict[str, Any]) -> dict[str, Any]:
    """Validate an arming request; returns the fields of a :class:`Fault` (without id)."""
    kind = data.get("fault")
    if kind not in KINDS:
        raise FaultError(f"fault must be one of {', '.join(KINDS)}")
    fields: dict[str, Any] = {
        "fault": kind,
        "remaining": _number(data.get("count", 1), "count", kind=int, low=1, high=MAX_COUNT),
    }
    user = data.get("user")
    if user is not None:
        if not isinstance(user, str) or not user:
            raise FaultError("user must be a user id")
        fields["user"] = user
    if kind == "drop-upload":
        fields["after_bytes"] = _number(
            data.get("after_bytes", 0), "after_bytes", kind=int, low=0, high=1 << 40
        )
    if kind == "delay":
        fields["seconds"] = _number(
            data.get("seconds"), "seconds", kind=float, low=0.0, high=MAX_DELAY
        )
        for name in ("method", "path"):
            value = data.get(name)
            if value is not None and (not isinstance(value, str) or not value):
                raise FaultError(f"{name} must be a non-empty string")
            fields[name] = value.upper() if name == "method" and value else value
    return fields


class FaultStore:
    """The armed faults of one stack, in `<data dir>/testkit/faults.json`."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "faults.json"
        self._lock_path = directory / "faults.lock"

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = json.loads(self.path.read_text()) if self.path.exists() else {}
                state.setdefault("next_id", 1)
                state.setdefault("faults", [])
                before = json.dumps(state, sort_keys=True)
                yield state
                if json.dumps(state, sort_keys=True) != before:
                    tmp = self.path.with_suffix(".tmp")
                    tmp.write_text(json.dumps(state))
                    os.replace(tmp, self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def arm(self, fields: dict[str, Any]) -> Fault:
        with self._locked() as state:
            fault = Fault(id=state["next_id"], **fields)
            state["next_id"] += 1
            state["faults"].append(asdict(fault))
        return fault

    def armed(self) -> list[Fault]:
        with self._locked() as state:
            return [Fault(**f) for f in state["faults"]]

    def clear(self) -> int:
        with self._locked() as state:
            count = len(state["faults"])
            state["faults"] = []
        return count

    def take(self, method: str, path: str, user: str | None) -> Fault | None:
        """The first armed fault this request triggers, counted down (and gone at zero)."""
        if not self.path.exists():  # the common case: nothing was ever armed
            return None
        with self._locked() as state:
            for raw in state["faults"]:
                fault = Fault(**raw)
                if fault.matches(method, path, user):
                    raw["remaining"] -= 1
                    raw["fired"] += 1
                    if raw["remaining"] <= 0:
                        state["faults"].remove(raw)
                    return fault
        return None


def basic_user(environ: dict[str, Any]) -> str | None:
    """The user id an HTTP Basic header claims (unverified: only for choosing a fault)."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def testkit_enabled() -> bool:
    from django.conf import settings

    return bool(getattr(settings, "E2EE_TESTKIT", False))


def fault_store() -> FaultStore:
    from django.conf import settings

    return FaultStore(Path(settings.DATA_DIR) / "testkit")
