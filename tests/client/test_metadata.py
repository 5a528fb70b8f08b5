"""Metadata v2 write/read round trips, tolerances, CMS interop, file drop, v1.x specifics."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import subprocess
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from client import crypto, protocol
from client.crypto.metadata import (
    _create_filedrop_entry_from_parts,
    _encrypt_folder_metadata_from_parts,
    decrypt_metadata_json,
)
from client.errors import (
    DecryptionError,
    DowngradeError,
    KeyUnwrapError,
    MalformedMetadataError,
    MetadataSignatureError,
    MissingKeyMaterialError,
    OwnEntryMissingError,
    TagMismatchError,
    UnsupportedVersionError,
    V1ChecksumError,
)
from tests.client.conftest import NOW
from tests.conftest import require

KEY = bytes(range(16))


def sample_folder(counter: int = 1) -> protocol.FolderMetadata:
    _, entry = crypto.encrypt_file(b"x", filename="ä ü.txt", mimetype="text/plain")
    return protocol.FolderMetadata(
        counter=counter,
        files={"a" * 32: entry},
        folders={"b" * 32: "Sub"},
        key_checksums=(crypto.key_checksum(KEY),),
    )


# --- v2 encryption round trips ---------------------------------------------------------------


def test_folder_metadata_round_trip_is_gzip_then_gcm():
    folder = sample_folder()
    blob = _encrypt_folder_metadata_from_parts(folder, KEY, root=True, nonce=b"n" * 12)
    compressed = crypto.aead.decrypt(crypto.FileSecret(KEY, b"n" * 12), blob.ciphertext)
    assert compressed[:3] == b"\x1f\x8b\x08"
    inner = json.loads(gzip.decompress(compressed))
    assert inner["keyChecksums"] == [crypto.key_checksum(KEY)]
    assert inner["deleted"] is False
    assert crypto.decrypt_folder_metadata(blob, KEY) == folder
    # Pinned randomness gives identical bytes; fresh randomness never does.
    assert blob == _encrypt_folder_metadata_from_parts(folder, KEY, root=True, nonce=b"n" * 12)
    a = crypto.encrypt_folder_metadata(folder, KEY, root=True)
    b = crypto.encrypt_folder_metadata(folder, KEY, root=True)
    assert a.nonce != b.nonce and len(a.nonce) == 12


def test_subfolder_document_has_no_users_or_checksums(alice):
    obj = crypto.build_subfolder_document(sample_folder(), KEY)
    assert set(obj) == {"metadata", "version"}
    doc = protocol.parse_metadata_v2(json.loads(json.dumps(obj)))
    assert not doc.is_root
    inner = decrypt_metadata_json(doc.metadata, KEY)
    assert "keyChecksums" not in inner


def test_root_document_round_trip_for_every_user(alice, bob):
    folder = sample_folder()
    obj = crypto.build_root_document(folder, KEY, [alice.recipient, bob.recipient])
    doc = protocol.parse_metadata_document(json.dumps(obj))
    assert doc.version == "2.0" and doc.is_root
    for ident in (alice, bob):
        assert crypto.unwrap_metadata_key(doc, ident.user_id, ident.private_key) == KEY
    assert crypto.decrypt_folder_metadata(doc.metadata, KEY) == folder


def test_root_document_requires_users_and_current_checksum(alice):
    with pytest.raises(MissingKeyMaterialError):
        crypto.build_root_document(sample_folder(), KEY, [])
    stale = protocol.FolderMetadata(counter=1, key_checksums=("0" * 64,))
    with pytest.raises(MissingKeyMaterialError):
        crypto.build_root_document(stale, KEY, [alice.recipient])


def test_unwrap_for_missing_or_wrong_user(alice, bob):
    doc = protocol.parse_metadata_v2(
        crypto.build_root_document(sample_folder(), KEY, [alice.recipient])
    )
    with pytest.raises(OwnEntryMissingError):
        crypto.unwrap_metadata_key(doc, "bob", bob.private_key)
    with pytest.raises(KeyUnwrapError):
        crypto.unwrap_metadata_key(doc, "alice", bob.private_key)


def test_recorded_metadata_tag_must_match():
    blob = crypto.encrypt_folder_metadata(sample_folder(), KEY, root=True)
    forged = protocol.EncryptedBlob(blob.ciphertext, blob.nonce, b"\x00" * 16)
    with pytest.raises(TagMismatchError):
        crypto.decrypt_folder_metadata(forged, KEY)
    with pytest.raises(DecryptionError):
        crypto.decrypt_folder_metadata(blob, bytes(16))


def test_reader_tolerances():
    """PROTOCOL.md §2.2: nonce under initializationVector, inode/directory, missing optional
    fields, empty file names skipped, unknown fields ignored, '|nonce' ciphertext suffix."""
    nonce = b"m" * 16
    entry = {
        "filename": "x",
        "mimetype": "inode/directory",
        "key": protocol.b64encode(b"k" * 16),
        "initializationVector": protocol.b64encode(b"i" * 16),
        "authenticationTag": protocol.b64encode(b"t" * 16),
        "filesize": 3,
    }
    inner = {
        "counter": 3,
        "files": {"1" * 32: entry, "2" * 32: {**entry, "filename": ""}},
        "chunked": True,
    }
    data = crypto.aead.encrypt(
        crypto.FileSecret(KEY, nonce), gzip.compress(json.dumps(inner).encode())
    )
    outer = {
        "metadata": {
            "ciphertext": protocol.b64encode(data) + "|" + protocol.b64encode(nonce),
            "nonce": protocol.b64encode(nonce),
            "authenticationTag": protocol.b64encode(data[-16:]),
        },
        "version": 2,
    }
    doc = protocol.parse_metadata_document(json.dumps(outer))
    assert doc.version == "2.0"
    folder = crypto.decrypt_folder_metadata(doc.metadata, KEY)
    assert list(folder.files) == ["1" * 32]
    only = folder.files["1" * 32]
    assert only.is_folder and only.nonce == b"i" * 16
    assert folder.folders == {} and folder.key_checksums == () and folder.deleted is False


@pytest.mark.parametrize(
    ("raw", "normal"), [("2", "2.0"), ("2.0", "2.0"), ("2.1", "2.1"), (2, "2.0"), (2.1, "2.1")]
)
def test_version_spellings(raw, normal):
    assert protocol.normalise_version(raw) == normal


@pytest.mark.parametrize("raw", ["3.0", "x", 0.5, None, True])
def test_unknown_versions_are_refused(raw):
    with pytest.raises((UnsupportedVersionError, MalformedMetadataError)):
        protocol.normalise_version(raw)


def test_nonce_suffix_can_be_written_for_old_readers():
    blob = crypto.encrypt_folder_metadata(sample_folder(), KEY, root=True)
    text = blob.to_json(nonce_suffix=True)["ciphertext"]
    assert text.endswith("|" + protocol.b64encode(blob.nonce))
    parsed = protocol.parse_encrypted_blob(blob.to_json(nonce_suffix=True), "m")
    assert parsed == blob


def test_gzip_bomb_is_refused():
    bomb = gzip.compress(b"\x00" * (crypto.metadata.MAX_INFLATED_BYTES + 1))
    with pytest.raises(MalformedMetadataError):
        crypto.metadata.gunzip(bomb)
    with pytest.raises(MalformedMetadataError):
        crypto.metadata.gunzip(gzip.compress(b"{}")[:-3])
    with pytest.raises(MalformedMetadataError):
        crypto.metadata.gunzip(b"{}")


# --- CMS signatures ---------------------------------------------------------------------------


def test_sign_and_verify_round_trip_with_serial_zero(alice):
    obj = crypto.build_root_document(sample_folder(), KEY, [alice.recipient])
    signature = crypto.sign_metadata(obj, alice.certificate, alice.private_key, signing_time=NOW)
    assert "\n" not in signature
    assert crypto.verify_metadata_signature(obj, signature).der == alice.certificate.der


def test_signing_needs_the_matching_key(alice, bob):
    with pytest.raises(crypto.keys.KeyMismatchError):
        crypto.sign_detached(b"x", alice.certificate, bob.private_key, signing_time=NOW)


def test_signature_does_not_cover_other_content(alice):
    der = crypto.sign_detached(b"content", alice.certificate, alice.private_key, signing_time=NOW)
    crypto.verify_detached(b"content", der)
    with pytest.raises(MetadataSignatureError):
        crypto.verify_detached(b"Content", der)


def _openssl() -> str:
    path = shutil.which("openssl")
    require(path is not None, "the openssl command")
    assert path
    return path


def _write_identity(tmp_path, ident):
    cert = tmp_path / "cert.pem"
    key = tmp_path / "key.pem"
    cert.write_text(ident.certificate_pem)
    key.write_text(crypto.private_key_to_pem(ident.private_key))
    return cert, key


def test_openssl_verifies_our_signature(tmp_path, alice):
    openssl = _openssl()
    content = tmp_path / "content"
    content.write_bytes(b"eyJhIjoxfQ==")
    sig = tmp_path / "sig.der"
    sig.write_bytes(
        crypto.sign_detached(
            content.read_bytes(), alice.certificate, alice.private_key, signing_time=NOW
        )
    )
    proc = subprocess.run(
        [
            openssl,
            "cms",
            "-verify",
            "-binary",
            "-noverify",
            "-inform",
            "DER",
            "-in",
            str(sig),
            "-content",
            str(content),
            "-out",
            "/dev/null",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("stream", [False, True], ids=["DER", "BER-indefinite"])
def test_we_verify_openssl_signatures_in_der_and_ber(tmp_path, alice, stream):
    openssl = _openssl()
    cert, key = _write_identity(tmp_path, alice)
    content = tmp_path / "content"
    content.write_bytes(b"eyJiIjoyfQ==")
    sig = tmp_path / "sig"
    args = [
        openssl,
        "cms",
        "-sign",
        "-binary",
        "-md",
        "sha256",
        "-signer",
        str(cert),
        "-inkey",
        str(key),
        "-in",
        str(content),
        "-outform",
        "DER",
        "-out",
        str(sig),
    ]
    if stream:
        args.append("-stream")
    subprocess.run(args, check=True, capture_output=True)
    der = sig.read_bytes()
    if stream:
        assert der[1] == 0x80  # indefinite length: BER, like Android's BouncyCastle output
    assert crypto.verify_detached(content.read_bytes(), der).der == alice.certificate.der
    with pytest.raises(MetadataSignatureError):
        crypto.verify_detached(b"other", der)


def test_we_verify_signatures_from_the_cryptography_pkcs7_builder(server):
    """cryptography's PKCS7 builder (positive serial: it cannot load serial 0) interoperates."""
    key = crypto.generate_private_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "frank")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .sign(server.key, hashes.SHA256())
    )
    content = b"eyJjIjozfQ=="
    der = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(cert, key, hashes.SHA256())
        .sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
        )
    )
    signer = crypto.verify_detached(content, der)
    assert signer.common_name == "frank"
    crypto.verify_certificate(signer, server_public_key=server.public_key, user_id="frank", now=NOW)
    with pytest.raises(MetadataSignatureError):
        crypto.verify_detached(content + b"x", der)


# --- file drop ------------------------------------------------------------------------------


def test_filedrop_round_trip_for_every_user(alice, bob):
    _, entry = crypto.encrypt_file(b"dropped", filename="drop.txt", mimetype="text/plain")
    recipients = [(i.user_id, i.certificate.public_key) for i in (alice, bob)]
    drop = crypto.create_filedrop_entry(entry, recipients)
    wire = protocol.parse_filedrop_entry(json.loads(json.dumps(drop.to_json())))
    assert "|" not in drop.to_json()["ciphertext"]
    for ident in (alice, bob):
        assert crypto.open_filedrop_entry(wire, ident.user_id, ident.private_key) == entry
    with pytest.raises(OwnEntryMissingError):
        crypto.open_filedrop_entry(wire, "carol", alice.private_key)
    with pytest.raises(KeyUnwrapError):
        crypto.open_filedrop_entry(wire, "bob", alice.private_key)


def test_filedrop_tampered_and_pinned(alice):
    _, entry = crypto.encrypt_file(b"d", filename="d.txt")
    recipients = [("alice", alice.certificate.public_key)]
    drop = _create_filedrop_entry_from_parts(entry, recipients, filedrop_key=KEY, nonce=b"q" * 12)
    assert drop.blob.nonce == b"q" * 12
    ct = bytearray(drop.blob.ciphertext)
    ct[0] ^= 1
    tampered = protocol.FiledropEntry(
        protocol.EncryptedBlob(bytes(ct), drop.blob.nonce, drop.blob.tag), drop.recipients
    )
    with pytest.raises(DecryptionError):
        crypto.open_filedrop_entry(tampered, "alice", alice.private_key)
    with pytest.raises(MissingKeyMaterialError):
        crypto.create_filedrop_entry(entry, [])


def test_signed_content_drops_filedrop_and_filedrop_keys():
    obj = {
        "metadata": {"x": "/"},
        "users": [{"userId": "a", "encryptedFiledropKey": "k", "certificate": "c"}],
        "filedrop": {"u": {}},
        "version": "2.0",
    }
    content = base64.b64decode(protocol.signed_content(obj)).decode()
    assert (
        content
        == '{"metadata":{"x":"/"},"users":[{"certificate":"c","userId":"a"}],"version":"2.0"}'
    )


# --- v1.x -----------------------------------------------------------------------------------


def _v1_doc(vectors, folder_id="134"):
    return protocol.parse_metadata_document(
        vectors.text("v1-testdata-version12", f"metadata/{folder_id}.meta.data.json")
    )


def test_v12_checksum_mismatch_and_absence(vectors):
    doc = _v1_doc(vectors)
    mnemonic = vectors.text("v1-testdata-version12", "admin.mnemonic.txt")
    crypto.metadata.verify_v1_checksum(doc, mnemonic)
    with pytest.raises(V1ChecksumError):
        crypto.metadata.verify_v1_checksum(doc, mnemonic.replace("hood", "wood"))
    files = dict(doc.files)
    files.pop(next(iter(files)))
    with pytest.raises(V1ChecksumError):  # a file entry removed by the server
        crypto.metadata.verify_v1_checksum(
            protocol.MetadataDocumentV1(
                doc.version, doc.metadata_keys, doc.metadata_key_text, doc.checksum, files
            ),
            mnemonic,
        )
    without = protocol.MetadataDocumentV1(
        doc.version, doc.metadata_keys, doc.metadata_key_text, None, doc.files
    )
    with pytest.raises(DowngradeError):
        crypto.metadata.verify_v1_checksum(without, mnemonic)


def test_v10_metadata_keys_use_the_highest_index(alice):
    keys = {
        str(i): protocol.b64encode(
            crypto.rsa_wrap(alice.certificate.public_key, base64.b64encode(base64.b64encode(k)))
        )
        for i, k in ((0, b"0" * 16), (1, b"1" * 16))
    }
    doc = protocol.parse_metadata_v1(
        {"metadata": {"metadataKeys": keys, "version": 1}, "files": {}}
    )
    assert doc.version == "1.0"
    assert crypto.unwrap_metadata_key_v1(doc, alice.private_key) == b"1" * 16
    assert crypto.unwrap_metadata_key_v1(doc, alice.private_key, 0) == b"0" * 16
    with pytest.raises(MissingKeyMaterialError):
        crypto.unwrap_metadata_key_v1(doc, alice.private_key, 7)


def test_v1_legacy_separator_in_file_entries(vectors):
    raw = json.loads(vectors.text("v1-testdata-version12", "metadata/146.meta.data.json"))
    for entry in raw["files"].values():
        entry["encrypted"] = entry["encrypted"].replace("|", "fA==")
    key = bytes.fromhex(
        vectors.json("v1-testdata-version12", "metadata/146.meta.data.DERIVED-decrypted.json")[
            "metadataKeyHex"
        ]
    )
    folder = crypto.decrypt_metadata_v1(protocol.parse_metadata_v1(raw), metadata_key=key)
    assert "Readme.md" in {e.filename for e in folder.files.values()}


def test_split_legacy_parts_rejoins_a_literal_separator_quantum():
    assert protocol.split_legacy_parts("QUJDfA==fA==SVY=") == ["QUJDfA==", "SVY="]
    assert protocol.split_legacy_parts("QUJDfA==SVY=") == ["QUJD", "SVY="]
    assert protocol.split_legacy_parts("a|b|c") == ["a", "b", "c"]
