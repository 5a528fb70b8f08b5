"""The write gate: every WebDAV write asks the configured gates first.

A gate sees a `WriteIntent` (what is about to change, and the request's headers) and either
returns it, returns a changed one (for E2EE staging: a new name such as "<name>.e2e-to-save", or
a DELETE turned into a MOVE to "<name>.e2e-to-delete"), or raises `GateRefused` with the HTTP
status to answer (403 without an e2e-token, 423 when another token holds the lock).

Gates are listed as dotted paths in settings.WEBDAV_WRITE_GATES and run in order. The E2EE app
adds its gate there; this module knows nothing about E2EE.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from server.accounts.models import User
from server.files.models import Node

Operation = Literal["put", "mkcol", "delete", "move", "copy", "proppatch"]


@dataclass(frozen=True)
class WriteIntent:
    operation: Operation
    user: User
    # The folder whose membership changes (for move/copy: the destination folder).
    parent: Node
    # The name written in `parent` (for move/copy: the destination name).
    name: str
    # The existing node that is changed, removed, or moved/copied (None for a new PUT/MKCOL).
    node: Node | None
    # The WSGI environ: headers such as HTTP_E2E_TOKEN and HTTP_USER_AGENT, the query string.
    environ: Mapping[str, Any] = dataclasses.field(repr=False, compare=False)
    # An anonymous upload through a public link share (file drop): a new file in the share's
    # folder, never an overwrite; `user` is the share's owner.
    link_share: bool = False

    def replace(self, **changes: Any) -> WriteIntent:
        return dataclasses.replace(self, **changes)


class GateRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class WriteGate(Protocol):
    def __call__(self, intent: WriteIntent) -> WriteIntent: ...


@functools.cache
def _load(paths: tuple[str, ...]) -> tuple[WriteGate, ...]:
    return tuple(import_string(path) for path in paths)


def write_gates() -> tuple[WriteGate, ...]:
    return _load(tuple(getattr(settings, "WEBDAV_WRITE_GATES", ())))


def gate_write(intent: WriteIntent) -> WriteIntent:
    """Run every gate; the result says what the provider actually does."""
    for gate in write_gates():
        intent = gate(intent)
    return intent
