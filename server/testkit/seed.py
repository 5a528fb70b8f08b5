"""`--seed FILE`: users, folders, shares and (optionally) keys for an ephemeral stack.

    users:
      - {id: alice, keys: true}          # keys: an E2EE identity (certificate + wrapped key)
      - {id: bob, password: secret-pw, keys: true}
      - {id: carol, admin: true}
    folders:
      - {owner: alice, path: Photos}                   # plain
      - {owner: alice, path: Vault, encrypted: true}   # a topmost encrypted folder (needs keys)
      - {owner: alice, path: Vault/Docs}               # inside it: an encrypted sub-folder
    shares:
      - {owner: alice, path: Vault, with: bob}         # encrypted: the metadata key is re-wrapped
      - {owner: alice, path: Photos, with: carol}

JSON or YAML (a superset). Users are made in the database before the server starts; keys,
folders and shares afterwards through the real API with our own client, exactly as a client
would make them — so what a suite finds is what any client could have written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RESERVED_ADMIN = "admin"
DEFAULT_USERS = ({"id": "alice"}, {"id": "bob"})


class SeedError(ValueError):
    """The seed file is malformed; the message says where."""


@dataclass(frozen=True)
class SeedUser:
    id: str
    password: str | None = field(default=None, repr=False)
    admin: bool = False
    keys: bool = False


@dataclass(frozen=True)
class SeedFolder:
    owner: str
    path: str
    encrypted: bool = False


@dataclass(frozen=True)
class SeedShare:
    owner: str
    path: str
    with_: str


@dataclass(frozen=True)
class Seed:
    users: tuple[SeedUser, ...]
    folders: tuple[SeedFolder, ...] = ()
    shares: tuple[SeedShare, ...] = ()

    def database_users(self) -> list[dict[str, Any]]:
        """What prepare.py creates: the seed's users, plus `admin` for the fault endpoint
        unless the seed names an administrator itself."""
        wanted = [{"id": u.id, "password": u.password, "admin": u.admin} for u in self.users]
        if not any(u.admin for u in self.users):
            wanted.insert(0, {"id": RESERVED_ADMIN, "admin": True})
        return wanted


def _items(doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = doc.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise SeedError(f"{key}: a list of mappings expected")
    return items


def _text(item: dict[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = item.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip("/"):
        raise SeedError(f"{where}: {key!r} must be a non-empty string")
    return value.strip("/") if key == "path" else value


def _flag(item: dict[str, Any], key: str, where: str) -> bool:
    value = item.get(key, False)
    if not isinstance(value, bool):
        raise SeedError(f"{where}: {key!r} must be true or false")
    return value


def seed_parse(doc: Any) -> Seed:
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise SeedError("the seed must be a mapping with users, folders, shares")
    unknown = set(doc) - {"users", "folders", "shares"}
    if unknown:
        raise SeedError(f"unknown keys: {', '.join(sorted(unknown))}")
    users = []
    for n, item in enumerate(_items(doc, "users") if "users" in doc else list(DEFAULT_USERS)):
        where = f"users[{n}]"
        users.append(
            SeedUser(
                id=str(_text(item, "id", where)),
                password=_text(item, "password", where, required=False),
                admin=_flag(item, "admin", where),
                keys=_flag(item, "keys", where),
            )
        )
    ids = [u.id for u in users]
    if len(set(ids)) != len(ids):
        raise SeedError("users: an id appears twice")
    if RESERVED_ADMIN in ids and not any(u.admin for u in users):
        raise SeedError(
            f"users: {RESERVED_ADMIN!r} is the administrator unless another user has admin: true"
        )
    known = set(ids) | (set() if any(u.admin for u in users) else {RESERVED_ADMIN})
    with_keys = {u.id for u in users if u.keys}
    folders = []
    for n, item in enumerate(_items(doc, "folders")):
        where = f"folders[{n}]"
        folder = SeedFolder(
            owner=str(_text(item, "owner", where)),
            path=str(_text(item, "path", where)),
            encrypted=_flag(item, "encrypted", where),
        )
        if folder.owner not in known:
            raise SeedError(f"{where}: unknown owner {folder.owner!r}")
        if folder.encrypted and folder.owner not in with_keys:
            raise SeedError(f"{where}: an encrypted folder needs an owner with keys: true")
        folders.append(folder)
    shares = []
    for n, item in enumerate(_items(doc, "shares")):
        where = f"shares[{n}]"
        share = SeedShare(
            owner=str(_text(item, "owner", where)),
            path=str(_text(item, "path", where)),
            with_=str(_text(item, "with", where)),
        )
        if share.owner not in known or share.with_ not in known:
            raise SeedError(f"{where}: unknown user")
        shares.append(share)
    return Seed(tuple(users), tuple(folders), tuple(shares))


def seed_load(path: Path) -> Seed:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SeedError(f"cannot read {path}: {exc.strerror}") from None
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SeedError(
            f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: "
            f"{str(exc).splitlines()[0]}"
        ) from None
    return seed_parse(doc)


def _quiet(message: str) -> None:
    """Seeding warnings (e.g. the recovery-key notice) would only clutter stderr."""


def seed_apply(
    seed: Seed, *, url: str, users: dict[str, dict[str, Any]], clients_dir: Path
) -> dict[str, dict[str, str]]:
    """Keys, folders and shares through the live server. Returns, per user who got keys, the
    mnemonic and the client config dir that holds the identity (E2EE_CONFIG_DIR)."""
    from client.api import PERMISSION_ALL, SHARE_USER
    from client.keystore import Keystore
    from client.ops import folders, identity, share
    from client.ops.session import Session
    from client.ops.tree import locate

    needed = {u.id for u in seed.users if u.keys}
    needed |= {f.owner for f in seed.folders} | {s.owner for s in seed.shares}
    sessions: dict[str, Session] = {}
    made: dict[str, dict[str, str]] = {}
    try:
        for uid in sorted(needed):
            config = clients_dir / uid
            keystore = Keystore(config)
            identity.login(keystore, url, uid, users[uid]["app_password"])
            sessions[uid] = Session.open(keystore, notify=_quiet)
        for user in seed.users:
            if user.keys:
                created = identity.init(sessions[user.id])
                made[user.id] = {
                    "mnemonic": created.mnemonic,
                    "config_dir": str(clients_dir / user.id),
                }
        for folder in seed.folders:
            session = sessions[folder.owner]
            if folder.encrypted:
                if "/" in folder.path:
                    folders.mkdir(session, folder.path.rsplit("/", 1)[0], parents=True)
                folders.encrypt(session, folder.path)
            else:
                folders.mkdir(session, folder.path, parents=True)
        for item in seed.shares:
            session = sessions[item.owner]
            loc = locate(session, item.path)
            if loc.folder is not None and loc.folder.is_root:
                share.share(session, item.path, item.with_)
            else:
                session.api.create_share(
                    item.path, SHARE_USER, share_with=item.with_, permissions=PERMISSION_ALL
                )
    finally:
        for session in sessions.values():
            session.close()
    return made
