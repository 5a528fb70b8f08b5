"""What a device remembers, in one configuration directory (0700, secrets 0600).

Location: ``$E2EE_CONFIG_DIR`` if set (several identities on one machine), else the platform's
user config dir for ``e2ee``. Layout::

    account.json        server URL, user id, app password                      (secret)
    server-key.pem      the server's signing key, pinned at first use
    private-key.pem     this user's unwrapped private key                      (secret)
    pending-key.pem     the key of an `init` not finished yet                  (secret)
    mnemonic.txt        the 12 words, for `e2ee mnemonic show`                  (secret)
    certificate.pem     this user's own certificate
    pins.json           user id -> pinned certificate PEM (a change is refused loudly)
    folders.json        folder id -> FolderHistory (highest counter, keyChecksums, version),
                        the last version accepted (counter, hash) and whether the folder's
                        metadata carries links; plus the topmost encrypted folders, by path
    locks.json          lock tokens held by an unfinished write, to abort on the next run
    recovery.json       the server's recovery certificate, pinned at first sight; the folders
                        whose user was warned that it can read them; the last state seen
    sync/<pair>.json    the base state of each `e2ee sync` pair

Every write goes to a temporary file renamed into place, so a crash never leaves half a file.
Histories only grow: :meth:`Keystore.remember_folder` merges, never replaces (THREATS I3).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
from cryptography.hazmat.primitives.asymmetric import rsa

from client import crypto
from client.crypto.keys import Certificate, same_public_key
from client.crypto.lineage import Head
from client.crypto.verify import FolderHistory
from client.errors import (
    CertificateChangedError,
    NoIdentityError,
    NotLoggedInError,
    ServerKeyChangedError,
)

SECRET, PUBLIC = 0o600, 0o644


def config_dir() -> Path:
    override = os.environ.get("E2EE_CONFIG_DIR")
    return Path(override) if override else Path(platformdirs.user_config_dir("e2ee"))


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fingerprint(cert: Certificate) -> str:
    """Safety number of a certificate: SHA-256 of its DER, in groups of four hex digits."""
    digest = hashlib.sha256(cert.der).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))


@dataclass(frozen=True)
class Account:
    url: str
    user: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Identity:
    """This device's key material, loaded; the private key and words never print."""

    user: str
    private_key: rsa.RSAPrivateKey = field(repr=False)
    certificate: Certificate
    mnemonic: str | None = field(repr=False, default=None)


class Keystore:
    def __init__(self, directory: Path | None = None) -> None:
        self.dir = Path(directory) if directory is not None else config_dir()

    def __repr__(self) -> str:
        return f"Keystore({str(self.dir)!r})"

    def _path(self, name: str) -> Path:
        return self.dir / name

    def _json(self, name: str, default: Any) -> Any:
        path = self._path(name)
        if not path.exists():
            return default
        return json.loads(path.read_text(encoding="utf-8"))

    def _put_json(self, name: str, obj: Any, mode: int = SECRET) -> None:
        text = json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False)
        _write(self._path(name), text.encode("utf-8"), mode)

    # --- account -------------------------------------------------------------------------

    def save_account(self, account: Account) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)
        self._put_json("account.json", vars(account))

    def account(self) -> Account:
        raw = self._json("account.json", None)
        if raw is None:
            raise NotLoggedInError(f"no account in {self.dir}: run `e2ee login URL --user U`")
        return Account(url=raw["url"], user=raw["user"], password=raw["password"])

    def has_account(self) -> bool:
        return self._path("account.json").exists()

    # --- the server key: pinned at first use ---------------------------------------------

    def pinned_server_key(self) -> rsa.RSAPublicKey | None:
        path = self._path("server-key.pem")
        return crypto.load_public_key(path.read_text()) if path.exists() else None

    def pin_server_key(self, pem: str) -> rsa.RSAPublicKey:
        """Pin ``pem`` if nothing is pinned; else it must be the pinned key."""
        offered = crypto.load_public_key(pem)
        pinned = self.pinned_server_key()
        if pinned is None:
            _write(self._path("server-key.pem"), crypto.public_key_to_pem(offered).encode(), PUBLIC)
            return offered
        if not same_public_key(pinned, offered):
            raise ServerKeyChangedError(
                "the server's signing key differs from the key pinned at first use"
            )
        return pinned

    # --- own identity --------------------------------------------------------------------

    def save_identity(self, identity: Identity) -> None:
        _write(
            self._path("private-key.pem"),
            crypto.private_key_to_pem(identity.private_key).encode(),
            SECRET,
        )
        if identity.mnemonic is not None:
            _write(self._path("mnemonic.txt"), identity.mnemonic.encode(), SECRET)
        _write(self._path("certificate.pem"), identity.certificate.pem.encode(), PUBLIC)
        self.pin_certificate(identity.user, identity.certificate)

    def pending_key(self) -> rsa.RSAPrivateKey:
        """The key pair an unfinished `init` made (same key, same CSR: a retry is idempotent)."""
        path = self._path("pending-key.pem")
        if path.exists():
            return crypto.load_private_key(path.read_bytes())
        key = crypto.generate_private_key()
        _write(path, crypto.private_key_to_pem(key).encode(), SECRET)
        return key

    def drop_pending_key(self) -> None:
        self._path("pending-key.pem").unlink(missing_ok=True)

    def has_identity(self) -> bool:
        return self._path("private-key.pem").exists()

    def identity(self, user: str) -> Identity:
        if not self.has_identity():
            raise NoIdentityError("this device has no key: run `e2ee init` or `e2ee add-device`")
        # Checked when it was stored (generated here, or unwrapped and loaded checked).
        private_key = crypto.load_private_key(
            self._path("private-key.pem").read_bytes(), checked=False
        )
        cert = crypto.load_certificate(self._path("certificate.pem").read_bytes())
        words = self._path("mnemonic.txt")
        mnemonic = words.read_text().strip() if words.exists() else None
        return Identity(user, private_key, cert, mnemonic)

    # --- pinned certificates -------------------------------------------------------------

    def pins(self) -> dict[str, str]:
        return dict(self._json("pins.json", {}))

    def pinned_certificate(self, user: str) -> Certificate | None:
        pem = self.pins().get(user)
        return crypto.load_certificate(pem) if pem else None

    def pin_certificate(self, user: str, cert: Certificate) -> bool:
        """Pin at first sight; True if newly pinned. A different certificate is refused."""
        pins = self.pins()
        known = pins.get(user)
        if known is not None:
            if crypto.load_certificate(known).der != cert.der:
                raise CertificateChangedError(
                    f"the certificate of {user!r} changed since it was pinned "
                    f"(pinned {fingerprint(crypto.load_certificate(known))[:19]}…, "
                    f"offered {fingerprint(cert)[:19]}…)"
                )
            return False
        pins[user] = cert.pem
        self._put_json("pins.json", pins, PUBLIC)
        return True

    # --- folder histories ----------------------------------------------------------------

    def _folders(self) -> dict[str, Any]:
        return dict(self._json("folders.json", {"folders": {}, "roots": {}}))

    def folder_history(self, file_id: int) -> FolderHistory:
        raw = self._folders()["folders"].get(str(file_id))
        if raw is None:
            return FolderHistory()
        return FolderHistory(
            highest_counter=raw.get("counter"),
            key_checksums=frozenset(raw.get("keyChecksums", [])),
            version=raw.get("version"),
            encrypted=bool(raw.get("encrypted")),
        )

    def remember_folder(self, file_id: int, history: FolderHistory) -> None:
        data = self._folders()
        old = self.folder_history(file_id)
        merged = FolderHistory(
            highest_counter=max(history.highest_counter or 0, old.highest_counter or 0),
            key_checksums=old.key_checksums | history.key_checksums,
            version=max(history.version or "0", old.version or "0"),
            encrypted=old.encrypted or history.encrypted,
        )
        data["folders"].setdefault(str(file_id), {}).update(
            counter=merged.highest_counter,
            keyChecksums=sorted(merged.key_checksums),
            version=merged.version,
            encrypted=merged.encrypted,
        )
        self._put_json("folders.json", data, PUBLIC)

    def folder_head(self, file_id: int) -> tuple[Head | None, bool]:
        """The last version of the folder this device accepted, and whether it was linked."""
        raw = self._folders()["folders"].get(str(file_id), {})
        head = raw.get("head")
        return (Head(int(head[0]), str(head[1])) if head else None), bool(raw.get("linked"))

    def remember_head(self, file_id: int, head: Head, *, linked: bool) -> None:
        """Move the folder's head forward (never back); "linked" is sticky."""
        data = self._folders()
        entry = data["folders"].setdefault(str(file_id), {})
        old = entry.get("head")
        if old is None or head.counter >= old[0]:
            entry["head"] = [head.counter, head.digest]
        entry["linked"] = bool(entry.get("linked")) or linked
        self._put_json("folders.json", data, PUBLIC)

    def known_root(self, path: str) -> int | None:
        value = self._folders()["roots"].get(path.strip("/"))
        return int(value) if value is not None else None

    def remember_root(self, path: str, file_id: int) -> None:
        data = self._folders()
        data["roots"][path.strip("/")] = file_id
        self._put_json("folders.json", data, PUBLIC)

    def forget_root(self, path: str) -> None:
        data = self._folders()
        data["roots"].pop(path.strip("/"), None)
        self._put_json("folders.json", data, PUBLIC)

    def roots(self) -> dict[str, int]:
        return {k: int(v) for k, v in self._folders()["roots"].items()}

    # --- unfinished writes ---------------------------------------------------------------

    def held_locks(self) -> dict[str, str]:
        return dict(self._json("locks.json", {}))

    def remember_lock(self, file_id: int, token: str) -> None:
        locks = self.held_locks()
        locks[str(file_id)] = token
        self._put_json("locks.json", locks)

    def forget_lock(self, file_id: int) -> None:
        locks = self.held_locks()
        if locks.pop(str(file_id), None) is not None:
            self._put_json("locks.json", locks)

    # --- the server's recovery key (client.ops.recovery) ---------------------------------

    def recovery_record(self) -> dict[str, Any]:
        return dict(self._json("recovery.json", {}))

    def save_recovery_record(self, record: dict[str, Any]) -> None:
        self._put_json("recovery.json", record, PUBLIC)

    # --- sync state ----------------------------------------------------------------------

    def sync_state(self, key: str) -> dict[str, Any]:
        return dict(self._json(f"sync/{key}.json", {}))

    def save_sync_state(self, key: str, state: dict[str, Any]) -> None:
        # compact, not indented: the C encoder, ~10x faster for a base of many files
        text = json.dumps(state, separators=(",", ":"), ensure_ascii=False)
        _write(self._path(f"sync/{key}.json"), text.encode("utf-8"), SECRET)
