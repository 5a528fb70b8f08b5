"""Account and key setup: login, first device (init), further devices, mnemonic, status
(PROTOCOL.md §8 flows A and B)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from client import crypto
from client.api import ServerApi
from client.errors import (
    AuthenticationError,
    IdentityExistsError,
    NoIdentityError,
    RemotePathError,
    RevocationListError,
)
from client.keystore import Account, Identity, Keystore, fingerprint
from client.ops import recovery, revocation
from client.ops.keys import trust_certificate
from client.ops.session import Session


def login(keystore: Keystore, url: str, user: str, password: str) -> dict[str, Any]:
    """Check the credentials and E2EE support, pin the server key (first use), remember the
    revoked list it signed, store the account."""
    with ServerApi(url, user, password) as api:
        if api.current_user() != user:
            raise AuthenticationError("the server signed us in as another user")
        caps = api.e2ee_capability()
        pem = api.server_key()
        pinned_before = keystore.pinned_server_key() is not None
        revocation.refresh(keystore, api, keystore.pin_server_key(pem))
    keystore.save_account(Account(url=url.rstrip("/"), user=user, password=password))
    return {
        "user": user,
        "url": url.rstrip("/"),
        "api_version": str(caps.get("api-version", "")),
        "keys_exist": bool(caps.get("keys-exist")),
        "server_key_newly_pinned": not pinned_before,
    }


@dataclass(frozen=True)
class NewIdentity:
    certificate_fingerprint: str
    mnemonic: str  # shown once by the CLI, never logged

    def __repr__(self) -> str:
        return f"NewIdentity({self.certificate_fingerprint!r})"


def init(session: Session) -> NewIdentity:
    """First device: key pair, CSR, certificate checked against the pinned key, wrapped key up."""
    if session.keystore.has_identity():
        raise IdentityExistsError("this device already holds a key")
    if session.api.e2ee_capability().get("keys-exist"):
        raise IdentityExistsError("the account has keys already: use `e2ee add-device`")
    private_key = session.keystore.pending_key()
    cert_pem = session.api.submit_csr(crypto.build_csr(private_key, session.user))
    cert = crypto.load_certificate(cert_pem)
    crypto.check_key_pair(private_key, cert.public_key)
    cert = trust_certificate(session, session.user, cert_pem)
    mnemonic = crypto.generate_mnemonic()
    session.api.store_private_key(crypto.wrap_private_key(private_key, mnemonic).serialize())
    session.keystore.save_identity(Identity(session.user, private_key, cert, mnemonic))
    session.keystore.drop_pending_key()
    return NewIdentity(fingerprint(cert), mnemonic)


def add_device(session: Session, mnemonic: str) -> str:
    """Another device: fetch both halves, open the private key with the words, check they match."""
    if session.keystore.has_identity():
        raise IdentityExistsError("this device already holds a key")
    try:
        wrapped = session.api.private_key()
        cert_pem = session.api.public_keys([]).get(session.user)
    except RemotePathError:
        raise NoIdentityError("the account has no keys yet: run `e2ee init` first") from None
    if cert_pem is None:
        raise NoIdentityError("the account has no certificate yet: run `e2ee init` first")
    unwrapped = crypto.unwrap_private_key(wrapped, mnemonic)
    cert = crypto.load_certificate(cert_pem)
    crypto.check_key_pair(unwrapped.private_key, cert.public_key)
    cert = trust_certificate(session, session.user, cert_pem)
    words = " ".join(mnemonic.lower().split())
    session.keystore.save_identity(Identity(session.user, unwrapped.private_key, cert, words))
    return fingerprint(cert)


def mnemonic_show(session: Session) -> str:
    words = session.identity.mnemonic
    if words is None:
        raise NoIdentityError("this device does not hold the words")
    return words


def _revocation_status(keystore: Keystore, api: ServerApi) -> dict[str, Any]:
    """The revoked list as checked now, and whether this device's own certificate is on it."""
    server_key = keystore.pinned_server_key()
    info: dict[str, Any] = {}
    if server_key is None:
        return {"revoked_list": "not checked (no pinned server key)"}
    try:
        seen = revocation.refresh(keystore, api, server_key)
    except RevocationListError as exc:  # shown, and every write refuses it too
        seen = revocation.record(keystore)
        info["revoked_list"] = f"REFUSED: {type(exc).__name__}: {exc}"
    else:
        info["revoked_list"] = (
            f"#{seen['sequence']} signed {seen['issuedAt']}, "
            f"{len(seen['serials'])} serial(s) revoked"
            if seen.get("sequence") is not None
            else "not offered by the server"
        )
    if keystore.has_identity():
        own = keystore.identity(keystore.account().user).certificate
        revoked = own.serial_number in revocation.known_revoked(keystore)
        info["certificate_revoked"] = revoked
        info["certificate"] = (
            f"REVOKED (serial {own.serial_number:x}): this device can no longer write"
            if revoked
            else f"valid (serial {own.serial_number:x})"
        )
    return info


def status(keystore: Keystore) -> dict[str, Any]:
    """What this device knows; asks the server only for its capabilities (if reachable)."""
    account = keystore.account()
    result: dict[str, Any] = {
        "config_dir": str(keystore.dir),
        "user": account.user,
        "url": account.url,
        "server_key_pinned": keystore.pinned_server_key() is not None,
        "device_has_key": keystore.has_identity(),
        "pinned_users": sorted(keystore.pins()),
        "encrypted_folders": sorted(keystore.roots()),
        "recovery_key": None,
    }
    if keystore.has_identity():
        result["fingerprint"] = fingerprint(keystore.identity(account.user).certificate)
    with ServerApi(account.url, account.user, account.password) as api:
        everything = api.capabilities()
        caps = api.e2ee_capability()
        result.update(_revocation_status(keystore, api))
    result["keys_on_server"] = bool(caps.get("keys-exist"))
    result["api_version"] = str(caps.get("api-version", ""))
    result["recovery"] = info = recovery.status(keystore, everything)
    if "refused" in info:
        result["recovery_key"] = f"REFUSED: {info['refused']}"
    elif info["enabled"]:
        result["recovery_key"] = (
            f"ENABLED ({info['id']}, safety number {info['fingerprint']}): the administrator's "
            f"recovery key can decrypt every folder you write; {info['folders_warned']} "
            "folder(s) written for it so far"
        )
    elif info["pinned"]:
        result["recovery_key"] = (
            "disabled by the administrator; folders written while it was enabled stay "
            "readable to it until re-keyed (`e2ee recovery drop REMOTE_DIR`)"
        )
    return result
