"""``e2ee offline …``: recover data from a backup with no server (issue 3, item 8).

Exit status: 0 success; 2 usage error; 3 a verification or integrity failure (tampering, wrong
key, wrong mnemonic); 1 anything else. Failures print exactly one line on stderr, never a
traceback. This module is I/O shell around the pure core: it reads files, asks the clock, and
writes decrypted files through :func:`atomic_output` so nothing unauthenticated is left behind.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from client import crypto
from client.cli_support import atomic_output, one_line_command, report_errors
from client.crypto.metadata import decrypt_metadata_json, decrypt_v1_file_json
from client.errors import E2EEError
from client.protocol import (
    MetadataDocumentV1,
    MetadataDocumentV2,
    parse_metadata_document,
    unwrap_ocs_metadata,
)

PREFIX = "e2ee offline"
OfflineCommand = one_line_command(PREFIX)
_report_errors = report_errors(PREFIX)


def _usage(message: str) -> NoReturn:
    raise OfflineCommand.usage_error(message)  # type: ignore[attr-defined]


_in_file = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False))


def _b64_option(value: str, name: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        _usage(f"{name} must be base64")


# --- commands -------------------------------------------------------------------------------


@click.group(name="offline")
def offline() -> None:
    """Decrypt keys, metadata and files from a backup, without a server."""


@offline.command("unwrap-key", cls=OfflineCommand)
@click.option(
    "--encrypted-key",
    "encrypted_key",
    type=_in_file,
    required=True,
    help="The wrapped private key (ct|iv|salt) as stored on the server.",
)
@click.option("--mnemonic", help="The 12 words, quoted.")
@click.option("--mnemonic-file", type=_in_file, help="A file holding the 12 words.")
@_report_errors
def unwrap_key(encrypted_key: Path, mnemonic: str | None, mnemonic_file: Path | None) -> None:
    """Print the PKCS#8 PEM private key the mnemonic unwraps."""
    if (mnemonic is None) == (mnemonic_file is None):
        _usage("give exactly one of --mnemonic and --mnemonic-file")
    words = mnemonic if mnemonic is not None else _read_text(mnemonic_file)  # type: ignore[arg-type]
    unwrapped = crypto.unwrap_private_key(_read_text(encrypted_key), words)
    click.echo(crypto.private_key_to_pem(unwrapped.private_key), nl=False)


@offline.command("decrypt-metadata", cls=OfflineCommand)
@click.option(
    "--metadata",
    "metadata_file",
    type=_in_file,
    required=True,
    help="Metadata JSON, bare or as the OCS response.",
)
@click.option(
    "--private-key",
    "private_key_file",
    type=_in_file,
    help="PEM (or base64 DER) private key of --user.",
)
@click.option("--user", "user_id", help="User id whose users entry to open.")
@click.option(
    "--signature",
    "signature_file",
    type=_in_file,
    help="The X-NC-E2EE-SIGNATURE value (base64 CMS).",
)
@click.option(
    "--server-key",
    "server_key_file",
    type=_in_file,
    help="The server public key (GET /server-key).",
)
@click.option(
    "--metadata-key",
    "metadata_key_hex",
    help="Hex metadata key: opens sub-folders and v1 entries without RSA.",
)
@_report_errors
def decrypt_metadata(
    metadata_file: Path,
    private_key_file: Path | None,
    user_id: str | None,
    signature_file: Path | None,
    server_key_file: Path | None,
    metadata_key_hex: str | None,
) -> None:
    """Print the decrypted inner metadata JSON (verified when --signature and --server-key)."""
    if (signature_file is None) != (server_key_file is None):
        _usage("--signature and --server-key go together")
    metadata_key = _parse_metadata_key(metadata_key_hex)
    if metadata_key is None and (private_key_file is None or user_id is None):
        _usage("give --private-key and --user, or --metadata-key")
    private_key = None
    if private_key_file is not None:
        private_key = crypto.load_private_key(_read_text(private_key_file))
    document = parse_metadata_document(unwrap_ocs_metadata(metadata_file.read_bytes()))
    if isinstance(document, MetadataDocumentV1):
        _print_json(_open_v1(document, private_key, metadata_key))
        return
    if signature_file is not None and server_key_file is not None:
        metadata_key = _verify_v2(
            document,
            signature=_read_text(signature_file),
            server_key=crypto.load_public_key(_read_text(server_key_file)),
            private_key=private_key,
            user_id=user_id,
            metadata_key=metadata_key,
        )
    if metadata_key is None:
        assert private_key is not None and user_id is not None
        metadata_key = crypto.unwrap_metadata_key(document, user_id, private_key)
    _print_json(decrypt_metadata_json(document.metadata, metadata_key))


def _parse_metadata_key(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        key = bytes.fromhex(value.strip())
    except ValueError:
        _usage("--metadata-key must be hex")
    if len(key) != 16:
        _usage("--metadata-key must be 16 bytes (32 hex digits)")
    return key


def _verify_v2(
    document: MetadataDocumentV2,
    *,
    signature: str,
    server_key: Any,
    private_key: Any,
    user_id: str | None,
    metadata_key: bytes | None,
) -> bytes:
    """Run the verification a live client runs; return the verified metadata key."""
    now = datetime.now(UTC)
    if document.is_root and private_key is not None and user_id is not None:
        verified = crypto.verify_root_metadata(
            document,
            signature=signature,
            user_id=user_id,
            private_key=private_key,
            server_public_key=server_key,
            now=now,
        )
        return verified.metadata_key
    # A sub-folder (or a root opened by key): the root's users are not at hand offline, so
    # check the signature and that the signer's certificate comes from the server key.
    signer = crypto.verify_metadata_signature(document.source, signature)
    crypto.verify_certificate(
        signer, server_public_key=server_key, user_id=signer.common_name or "", now=now
    )
    if metadata_key is None:
        _usage("a sub-folder needs --metadata-key (the root folder's key)")
    return metadata_key


def _open_v1(
    document: MetadataDocumentV1, private_key: Any, metadata_key: bytes | None
) -> dict[str, Any]:
    if metadata_key is None:
        metadata_key = crypto.unwrap_metadata_key_v1(document, private_key)
    files = {}
    for uid, record in document.files.items():
        entry = decrypt_v1_file_json(record, metadata_key)
        if isinstance(entry, dict):
            entry["initializationVector"] = base64.b64encode(record.initialization_vector).decode()
            entry["authenticationTag"] = base64.b64encode(record.authentication_tag).decode()
        files[uid] = entry
    return {"version": document.version, "files": files}


@offline.command("decrypt-file", cls=OfflineCommand)
@click.option(
    "--blob",
    "blob_file",
    type=_in_file,
    required=True,
    help="The encrypted file as stored on WebDAV (ct‖tag).",
)
@click.option("--key", required=True, help="Base64 file key (from metadata).")
@click.option("--nonce", required=True, help="Base64 nonce (from metadata).")
@click.option("--tag", help="Base64 authenticationTag from metadata, checked against the blob.")
@click.option(
    "--out",
    "out_file",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Where to write the plaintext; written only if the tag verifies.",
)
@_report_errors
def decrypt_file(blob_file: Path, key: str, nonce: str, tag: str | None, out_file: Path) -> None:
    """Decrypt one file blob, streaming, releasing it only after the tag verifies."""
    secret_key, secret_nonce = _b64_option(key, "--key"), _b64_option(nonce, "--nonce")
    expected_tag = _b64_option(tag, "--tag") if tag is not None else None
    try:
        secret = crypto.FileSecret(secret_key, secret_nonce)
    except E2EEError as exc:
        _usage(str(exc))
    with blob_file.open("rb") as src, atomic_output(out_file) as dst:
        crypto.decrypt_stream(src, dst, secret, expected_tag=expected_tag)


@offline.command("verify-certificate", cls=OfflineCommand)
@click.option("--certificate", "certificate_file", type=_in_file, required=True)
@click.option("--server-key", "server_key_file", type=_in_file, required=True)
@click.option("--user", "user_id", required=True)
@_report_errors
def verify_certificate(certificate_file: Path, server_key_file: Path, user_id: str) -> None:
    """Check a user certificate: issued by the server key, CN = user, valid now."""
    cert = crypto.load_certificate(certificate_file.read_bytes())
    server_key = crypto.load_public_key(_read_text(server_key_file))
    crypto.verify_certificate(
        cert, server_public_key=server_key, user_id=user_id, now=datetime.now(UTC)
    )
    click.echo(
        f"ok: certificate of {user_id} is issued by the server key, valid until "
        f"{cert.not_after:%Y-%m-%d}"
    )
