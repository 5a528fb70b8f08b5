"""The administrator's side of the offline recovery key: create it, and decrypt a user's
folder tree with it.

``create`` runs offline: a key pair, the private key wrapped under 24 fresh words (the only
copy, in the chosen directory), and a CSR for ``manage.py recovery enable``.

``decrypt`` needs the recovery private key (directory + words) and an administrator's account
on the server (`e2ee login` as a superuser, which pins the server key). The server serves a
user's topmost encrypted folder as it stores it — metadata documents, signatures, blobs;
ciphertext only (``/ocs/v2.php/apps/e2ee-stack/api/v1/recovery/…``, superusers only, every
call audited). Everything is verified like a normal read (signatures by folder users,
certificates by the pinned server key, keyChecksums, tags) before a byte is written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from client import crypto
from client.api import ServerApi, _chunks, raise_for
from client.bulk import ChunkReader
from client.cli_support import atomic_output
from client.crypto.recovery import create_recovery_key, recovery_id
from client.crypto.verify import VerifiedFolder
from client.errors import (
    LocalPathError,
    MalformedMetadataError,
    OwnEntryMissingError,
    RemotePathError,
    ServerError,
)
from client.keystore import SECRET, Keystore, _write
from client.ops.session import now
from client.protocol import parse_metadata_document

WRAPPED_FILE = "recovery-key.wrapped"
CSR_FILE = "recovery.csr.pem"
INFO_FILE = "recovery.json"
RECOVERY_API = "/ocs/v2.php/apps/e2ee-stack/api/v1/recovery"


# --- create (offline) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    user_id: str
    csr_path: Path
    phrase: str = field(repr=False)


def create(directory: Path) -> Created:
    """Write the wrapped private key (0600), the CSR and a description into ``directory``."""
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise LocalPathError(f"{directory} is not empty; refusing to overwrite a recovery key")
    key = create_recovery_key()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write(directory / WRAPPED_FILE, key.wrapped.encode("ascii"), SECRET)
    _write(directory / CSR_FILE, key.csr_pem.encode("ascii"), 0o644)
    info = {
        "id": key.user_id,
        "words": len(key.phrase.split()),
        "wrapping": "PBKDF2-HMAC-SHA256/600000, AES-256-GCM (as the Nextcloud private key)",
        "files": {"private key (wrapped)": WRAPPED_FILE, "CSR": CSR_FILE},
    }
    _write(directory / INFO_FILE, json.dumps(info, indent=1).encode(), 0o644)
    return Created(key.user_id, directory / CSR_FILE, key.phrase)


def open_key(directory: Path, phrase: str) -> rsa.RSAPrivateKey:
    """The recovery private key from ``directory``, opened with the 24 words."""
    path = Path(directory) / WRAPPED_FILE
    if not path.is_file():
        raise LocalPathError(f"{path} does not exist: not a recovery key directory")
    return crypto.unwrap_private_key(path.read_text(encoding="ascii").strip(), phrase).private_key


# --- decrypt (admin access to the server) ----------------------------------------------------


class AdminApi(ServerApi):
    """The two admin endpoints of server.recovery."""

    def export(self, user: str, path: str) -> dict[str, Any]:
        data, _ = self._ocs(
            "GET", f"{RECOVERY_API}/export", "recovery export", params={"user": user, "path": path}
        )
        if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
            raise ServerError("recovery export: malformed answer")
        return data

    def blob(self, user: str, file_id: int) -> Iterator[bytes]:
        request = self._http.build_request(
            "GET",
            f"{RECOVERY_API}/blob/{file_id}",
            params={"user": user},
            headers={"OCS-APIRequest": "true"},
        )
        response = self._http.send(request, stream=True)
        try:
            if response.status_code >= 400:
                response.read()
                raise_for(response, "recovery blob")
            yield from _chunks(response)
        finally:
            response.close()


@dataclass
class _Node:
    id: int
    parent: int | None
    name: str
    type: str
    size: int
    metadata: str | None = None
    signature: str | None = None
    encrypted: bool = False


def _nodes(data: dict[str, Any]) -> dict[int, _Node]:
    out = {}
    for raw in data["nodes"]:
        try:
            node = _Node(
                id=int(raw["id"]),
                parent=None if raw.get("parent") is None else int(raw["parent"]),
                name=str(raw["name"]),
                type=str(raw["type"]),
                size=int(raw.get("size", 0)),
                metadata=raw.get("metadata"),
                signature=raw.get("signature"),
                encrypted=bool(raw.get("encrypted")),
            )
        except (KeyError, TypeError, ValueError):
            raise ServerError("recovery export: malformed node") from None
        out[node.id] = node
    return out


def _safe_name(name: str) -> str:
    if not name or "/" in name or "\\" in name or name in (".", "..") or "\x00" in name:
        raise MalformedMetadataError(f"refusing the local name {name!r}")
    return name


@dataclass
class Recovered:
    folders: int = 0
    files: int = 0
    bytes: int = 0


def decrypt(
    keystore: Keystore, private_key: rsa.RSAPrivateKey, user: str, remote_dir: str, out: Path
) -> Recovered:
    """Decrypt ``user``'s folder tree at ``remote_dir`` into ``out`` (which must not exist)."""
    out = Path(out)
    if out.exists():
        raise LocalPathError(f"{out} exists; choose a new directory")
    server_key = keystore.pinned_server_key()
    account = keystore.account()
    if server_key is None:
        raise LocalPathError("no pinned server key: run `e2ee login` as an administrator")
    me = recovery_id(private_key.public_key())
    with AdminApi(account.url, account.user, account.password) as api:
        data = api.export(user, remote_dir.strip("/"))
        nodes = _nodes(data)
        root = nodes.get(int(data.get("root", -1)))
        if root is None or root.metadata is None:
            raise RemotePathError("the export holds no root metadata")
        try:
            verified = crypto.verify_root_metadata(
                parse_metadata_document(root.metadata),
                signature=root.signature,
                user_id=me,
                private_key=private_key,
                server_public_key=server_key,
                now=now(),
            )
        except OwnEntryMissingError:
            raise OwnEntryMissingError(
                f"{remote_dir!r} has no entry for the recovery key {me}: it was written while "
                "recovery was disabled (or for another recovery key)"
            ) from None
        children: dict[int, dict[str, _Node]] = {}
        for node in nodes.values():
            if node.parent is not None:
                children.setdefault(node.parent, {})[node.name] = node
        result = Recovered()
        out.mkdir(parents=True, mode=0o700)
        _decrypt_folder(api, user, verified, verified, root, children, out, result)
    return result


def _decrypt_folder(
    api: AdminApi,
    user: str,
    root: VerifiedFolder,
    folder: VerifiedFolder,
    node: _Node,
    children: dict[int, dict[str, _Node]],
    local: Path,
    result: Recovered,
) -> None:
    result.folders += 1
    here = children.get(node.id, {})
    for uuid, entry in sorted(folder.folder.files.items()):
        blob = here.get(uuid)
        if blob is None or blob.type != "file":
            raise RemotePathError(f"{entry.filename!r} is in the metadata but not on the server")
        target = local / _safe_name(entry.filename)
        with atomic_output(target) as handle:
            source = ChunkReader(api.blob(user, blob.id))
            written = crypto.decrypt_file_stream(source, handle, entry)
        os.chmod(target, 0o600)
        result.files += 1
        result.bytes += written
    for uuid, name in sorted(folder.folder.folders.items()):
        sub = here.get(uuid)
        if sub is None or sub.type != "dir" or sub.metadata is None:
            raise RemotePathError(f"folder {name!r} is in the metadata but not on the server")
        verified = crypto.verify_subfolder_metadata(
            parse_metadata_document(sub.metadata),
            signature=sub.signature,
            root=root,
            reported_encrypted=sub.encrypted,
        )
        target = local / _safe_name(name)
        target.mkdir(mode=0o700)
        _decrypt_folder(api, user, root, verified, sub, children, target, result)
