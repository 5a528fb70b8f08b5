"""Fixtures of the hostile-server suite: one real stack and one :class:`HostileProxy` per
module, devices that talk only to the proxy, the attacker's knowledge (its own RSA keys and the
stack's CA key, which a malicious server operator holds), and the global invariants checked
after every test:

* I1 — the leak oracle: no metadata key in anything the server archived unwraps with a key the
  attacker knows (its keys, keys of users removed before the upload), and no plaintext marker
  (file contents, file names, mnemonic words) appears in any request;
* I3 — what a device remembers never regresses between tests (every CLI call is a fresh
  process state read from disk, so this holds across restarts): counters and the last accepted
  version only move forward, key checksums only accumulate, "linked" and "encrypted" are
  sticky, pinned certificates and the pinned server key never change;
* I5 — no (key, nonce) pair is used twice: every metadata upload and every file version the
  archive holds is opened with the honest users' keys and the pairs are compared.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from client import crypto
from client.errors import E2EEError
from client.protocol import MetadataDocumentV2, parse_metadata_document
from tests.cli.conftest import Device
from tests.hostile.proxy import HostileProxy, metadata_upload
from tests.live import LiveStack

pytestmark = pytest.mark.hostile


# --- the malicious server ----------------------------------------------------------------------


#: Inline software signing: the attacker holds the CA key file (data_dir/keys/ca.key.pem).
STACK_ENV = {"E2EE_SIGNING": "inline", "E2EE_SIGNER": "software", "LOG_LEVEL": "INFO"}


@pytest.fixture(scope="module")
def stack() -> Iterator[LiveStack]:
    with LiveStack.start(env=STACK_ENV) as live:
        live.manage("ca", "init", "--backend", "software")
        yield live


@pytest.fixture(scope="module")
def proxy(stack) -> Iterator[HostileProxy]:
    hostile = HostileProxy(stack.base_url).start()
    try:
        yield hostile
    finally:
        hostile.stop()


@dataclass
class Attacker:
    """What the malicious server knows: its own keys, the CA key, revoked users' keys."""

    ca_key: rsa.RSAPrivateKey
    keys: list[rsa.RSAPrivateKey] = field(default_factory=list)
    #: Keys of removed users, each with the archive mark from which it must open nothing.
    revoked: list[tuple[rsa.RSAPrivateKey, int]] = field(default_factory=list)
    #: Metadata/file keys the attacker chose itself (injected), which must never be used.
    chosen: list[bytes] = field(default_factory=list)

    def new_key(self) -> rsa.RSAPrivateKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys.append(key)
        return key

    def certificate(
        self,
        user_id: str,
        public_key: rsa.RSAPublicKey | None = None,
        *,
        signer: rsa.RSAPrivateKey | None = None,
        expired: bool = False,
    ) -> str:
        """A certificate for ``user_id`` signed by the stack's CA key (the server can)."""
        if public_key is None:
            public_key = self.new_key().public_key()
        now = dt.datetime.now(dt.UTC)
        start, end = (
            (now - dt.timedelta(days=30), now - dt.timedelta(days=1))
            if expired
            else (now - dt.timedelta(minutes=5), now + dt.timedelta(days=365))
        )
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .sign(signer or self.ca_key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def attacker(stack) -> Attacker:
    path = stack.data_dir / "keys" / "ca.key.pem"
    ca_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    return Attacker(ca_key=ca_key)


# --- devices -----------------------------------------------------------------------------------


@dataclass
class HostileDevice(Device):
    url: str = ""
    markers: list[bytes] = field(default_factory=list)

    def login(self) -> None:
        secret = self.config.parent / f"{self.config.name}.password"
        secret.write_text(self.password)
        self.ok("login", self.url, "--user", self.user, "--password-file", secret)

    def init(self) -> str:
        words = self.config.parent / "words.txt"
        self.ok("init", "--mnemonic-out", words)
        mnemonic = " ".join(words.read_text().split())
        self.markers += [mnemonic.encode(), "".join(mnemonic.split()).encode()]
        return mnemonic

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        return crypto.load_private_key((self.config / "private-key.pem").read_bytes())

    @property
    def certificate_pem(self) -> str:
        return (self.config / "certificate.pem").read_text()

    def state(self) -> dict[str, Any]:
        def load(name: str, default: Any) -> Any:
            path = self.config / name
            return json.loads(path.read_text()) if path.exists() else default

        server_key = self.config / "server-key.pem"
        return {
            "folders": load("folders.json", {"folders": {}})["folders"],
            "pins": load("pins.json", {}),
            "server_key": server_key.read_text() if server_key.exists() else None,
        }

    def root_id(self, name: str) -> int:
        return int(json.loads((self.config / "folders.json").read_text())["roots"][name])

    def secret_file(self, directory: Path, name: str, body: bytes | None = None) -> Path:
        """A local file whose name and content are plaintext markers the server must not see."""
        marker = f"MARK{secrets.token_hex(8)}"
        path = directory / f"{name}-{marker}.txt"
        path.write_bytes(body if body is not None else f"secret {marker} content".encode())
        self.markers += [marker.encode()]
        return path


DEVICES: list[HostileDevice] = []


@pytest.fixture(scope="module")
def make_device(stack, proxy, tmp_path_factory):
    passwords: dict[str, str] = {}

    def make(user: str, name: str = "laptop", *, login: bool = True) -> HostileDevice:
        if user not in passwords:
            stack.create_user(user)
            passwords[user] = stack.create_app_password(user, name="hostile tests")
        config = tmp_path_factory.mktemp(f"{user}-{name}")
        device = HostileDevice(stack, user, passwords[user], config / "e2ee", url=proxy.base_url)
        if login:
            device.login()
        DEVICES.append(device)
        return device

    yield make
    DEVICES.clear()


# --- global invariants -------------------------------------------------------------------------


def _docs(proxy: HostileProxy, since: int = 0) -> list[tuple[int, dict[str, Any], int]]:
    """(folder id, outer document, archive index) of every metadata upload."""
    out = []
    for index, exchange in enumerate(proxy.since(since), start=since):
        found = metadata_upload(exchange)
        if found is not None:
            out.append((found[0], found[1], index))
    return out


def _unwrap_all(doc: MetadataDocumentV2, keys: list[rsa.RSAPrivateKey]) -> list[bytes]:
    found = []
    for user in doc.users:
        for key in keys:
            try:
                found.append(crypto.rsa_unwrap(key, user.encrypted_metadata_key))
            except E2EEError:
                continue
    for entry in doc.filedrop.values():
        for recipient in entry.recipients:
            for key in keys:
                try:
                    found.append(crypto.rsa_unwrap(key, recipient.encrypted_filedrop_key))
                except E2EEError:
                    continue
    return found


def leaks(
    proxy: HostileProxy, attacker: Attacker, devices: list[HostileDevice], since: int = 0
) -> list[str]:
    """I1: what the attacker could open in the archive (from ``since``); [] when nothing."""
    problems = []
    for file_id, raw, index in _docs(proxy, since):
        try:
            doc = parse_metadata_document(json.dumps(raw))
        except E2EEError:
            problems.append(f"unparseable metadata upload for {file_id}")
            continue
        if not isinstance(doc, MetadataDocumentV2):
            problems.append(f"legacy (unsigned) metadata uploaded for {file_id}")
            continue
        keys = list(attacker.keys) + [k for k, mark in attacker.revoked if index >= mark]
        opened = _unwrap_all(doc, keys)
        if opened:
            problems.append(f"metadata upload for {file_id} wraps a key the attacker opens")
        for chosen in attacker.chosen:
            try:
                crypto.decrypt_folder_metadata(doc.metadata, chosen)
                problems.append(f"metadata of {file_id} uploaded under an attacker-chosen key")
            except E2EEError:
                pass
    markers = [m for d in devices for m in d.markers]
    for exchange in proxy.since(since):
        seen = b" ".join(
            [
                exchange.target.encode(),
                unquote_to_bytes(exchange.target),
                json.dumps(exchange.request_headers).encode(),
                exchange.request_body,
                unquote_to_bytes(exchange.request_body.replace(b"+", b" ")),
            ]
        )
        for marker in markers:
            if marker in seen:
                problems.append(f"plaintext marker in {exchange.method} {exchange.path}")
    return problems


def nonce_reuse(proxy: HostileProxy, devices: list[HostileDevice]) -> list[str]:
    """I5 over everything the archive holds, opened with the honest users' keys."""
    private = []
    for device in devices:
        if (device.config / "private-key.pem").exists():
            private.append(device.private_key)
    metadata_keys: set[bytes] = set()
    docs = []
    for file_id, raw, _ in _docs(proxy):
        try:
            doc = parse_metadata_document(json.dumps(raw))
        except E2EEError:
            continue
        if isinstance(doc, MetadataDocumentV2):
            docs.append((file_id, doc))
            metadata_keys.update(_unwrap_all(doc, private))
    problems: list[str] = []
    pairs: dict[tuple[bytes, bytes], str] = {}
    file_pairs: dict[bytes, str] = {}
    for file_id, doc in docs:
        nonce = base64.b64decode(raw_nonce(doc))
        for key in metadata_keys:
            try:
                inner = crypto.decrypt_folder_metadata(doc.metadata, key)
            except E2EEError:
                continue
            seen = pairs.setdefault((key, nonce), f"meta:{file_id}:{doc.metadata.ciphertext[:16]}")
            if seen != f"meta:{file_id}:{doc.metadata.ciphertext[:16]}":
                problems.append(f"metadata key and nonce reused (folder {file_id})")
            for uuid, entry in inner.files.items():
                owner = file_pairs.setdefault(entry.key, uuid)
                if owner != uuid:
                    problems.append(f"file key reused by {uuid} and {owner}")
                if pairs.setdefault((entry.key, entry.nonce), uuid) != uuid:
                    problems.append(f"file key and nonce reused ({uuid})")
            break
    return problems


def raw_nonce(doc: MetadataDocumentV2) -> str:
    source = doc.source["metadata"]
    return str(source.get("nonce", ""))


def _regressions(before: dict[str, Any], after: dict[str, Any], who: str) -> list[str]:
    problems = []
    if before["server_key"] and after["server_key"] != before["server_key"]:
        problems.append(f"{who}: pinned server key changed")
    for user, pem in before["pins"].items():
        if after["pins"].get(user) != pem:
            problems.append(f"{who}: pinned certificate of {user} changed")
    for folder, old in before["folders"].items():
        new = after["folders"].get(folder)
        if new is None:
            problems.append(f"{who}: history of folder {folder} forgotten")
            continue
        if (new.get("counter") or 0) < (old.get("counter") or 0):
            problems.append(f"{who}: counter of folder {folder} went down")
        if not set(old.get("keyChecksums", [])) <= set(new.get("keyChecksums", [])):
            problems.append(f"{who}: key checksums of folder {folder} lost")
        if old.get("encrypted") and not new.get("encrypted"):
            problems.append(f"{who}: folder {folder} forgotten as encrypted")
        if old.get("head") and (not new.get("head") or new["head"][0] < old["head"][0]):
            problems.append(f"{who}: last accepted version of folder {folder} went back")
        if old.get("linked") and not new.get("linked"):
            problems.append(f"{who}: folder {folder} forgotten as linked")
    return problems


@pytest.fixture(scope="module")
def _states() -> dict[int, dict[str, Any]]:
    return {}


@pytest.fixture(autouse=True)
def invariants(request, _states):
    """I1, I3, I5 after every test. A test marked xfail documents a leak on purpose: its
    uploads are left out of I1 (the archive mark moves past them)."""
    if "proxy" not in request.fixturenames or "attacker" not in request.fixturenames:
        yield
        return
    proxy = request.getfixturevalue("proxy")
    attacker = request.getfixturevalue("attacker")
    mark = proxy.mark()
    yield
    if request.node.get_closest_marker("xfail") is not None:
        for device in DEVICES:
            _states[id(device)] = device.state()
        return
    problems = leaks(proxy, attacker, DEVICES, since=mark) + nonce_reuse(proxy, DEVICES)
    for device in DEVICES:
        after = device.state()
        before = _states.get(id(device))
        if before is not None:
            problems += _regressions(before, after, f"{device.user}@{device.config.parent.name}")
        _states[id(device)] = after
    assert not problems, problems


def forged_root(
    *,
    counter: int,
    recipients: list[tuple[str, str]],
    signer_cert: str,
    signer_key: rsa.RSAPrivateKey,
    key: bytes | None = None,
    checksums: tuple[str, ...] = (),
    files: dict[str, Any] | None = None,
    folders: dict[str, str] | None = None,
) -> tuple[str, str, bytes]:
    """A complete, validly signed root document made by whoever holds ``signer_key``."""
    from client.protocol import FolderMetadata

    key = key or crypto.new_metadata_key()
    inner = FolderMetadata(
        counter=counter,
        files=files or {},
        folders=folders or {},
        key_checksums=tuple(checksums) + (crypto.key_checksum(key),),
    )
    document = crypto.build_root_document(
        inner, key, [crypto.Recipient(uid, pem) for uid, pem in recipients]
    )
    signature = crypto.sign_metadata(
        document,
        crypto.load_certificate(signer_cert),
        signer_key,
        signing_time=dt.datetime.now(dt.UTC),
    )
    return json.dumps(document, separators=(",", ":")), signature, key
