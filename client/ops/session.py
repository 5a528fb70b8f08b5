"""A signed-in device: the stored account, the pinned server key, the server connection and
(lazily) this user's identity."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from client.api import ServerApi
from client.errors import NotLoggedInError
from client.keystore import Account, Identity, Keystore

#: Progress callback: called with the number of bytes just moved.
Progress = Callable[[int], None]


def now() -> datetime:
    return datetime.now(UTC)


def _to_stderr(message: str) -> None:
    sys.stderr.write(message + "\n")


@dataclass
class Session:
    keystore: Keystore
    account: Account
    api: ServerApi = field(repr=False)
    _identity: Identity | None = field(default=None, repr=False)
    #: Where notices for the user go (default: one line on stderr); ops never print themselves.
    notify: Callable[[str], None] = field(default=_to_stderr, repr=False)
    #: The recovery key as the server offers it, verified once per session (ops.recovery).
    recovery: Any = field(default=None, repr=False)
    #: Serials known revoked, once the server's revoked list was checked (ops.revocation).
    revocation: frozenset[int] | None = field(default=None, repr=False)

    @classmethod
    def open(
        cls, keystore: Keystore | None = None, notify: Callable[[str], None] | None = None
    ) -> Session:
        keystore = keystore or Keystore()
        account = keystore.account()
        api = ServerApi(account.url, account.user, account.password)
        session = cls(keystore, account, api)
        if notify is not None:
            session.notify = notify
        return session

    @property
    def user(self) -> str:
        return self.account.user

    @property
    def server_key(self) -> rsa.RSAPublicKey:
        key = self.keystore.pinned_server_key()
        if key is None:
            raise NotLoggedInError("no pinned server key: run `e2ee login` again")
        return key

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            self._identity = self.keystore.identity(self.user)
        return self._identity

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
