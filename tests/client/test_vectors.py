"""Every folder of ../shared/vectors opens exactly as its SOURCE.md says, through the library."""

from __future__ import annotations

import base64
import gzip
import json

import pytest

from client import crypto, protocol
from client.crypto.metadata import decrypt_metadata_json, decrypt_v1_file_json
from client.errors import MetadataSignatureError
from tests.client.conftest import NOW

WEB = "v2-web-admin-alice"
V1 = "v1-testdata-version12"
V1_FOLDERS = ["134", "146", "159", "182"]


def test_every_vector_folder_is_covered(vectors):
    covered = {
        WEB,
        V1,
        "v2-android-filedrop",
        "v2-android-signed-metadata",
        "android-test-keys",
        "web-cert-signature-and-sha256",
    }
    assert {p.name for p in vectors.root.iterdir() if p.is_dir()} == covered


# --- v2-web-admin-alice ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "kdf"), [("admin", crypto.Kdf.SHA1_1024), ("alice", crypto.Kdf.SHA1_600000)]
)
def test_web_mnemonic_unwraps_private_key(vectors, user, kdf):
    unwrapped = crypto.unwrap_private_key(
        vectors.text(WEB, f"{user}.encrypted-private-key.txt"),
        vectors.text(WEB, f"{user}.mnemonic.txt"),
    )
    assert unwrapped.kdf is kdf
    assert unwrapped.needs_rewrap
    assert crypto.private_key_to_pem(unwrapped.private_key) == vectors.text(
        WEB, f"{user}.private-key.DERIVED.pem"
    )


@pytest.mark.parametrize("user", ["admin", "alice"])
def test_web_certificates_are_issued_by_the_server_key(vectors, user):
    cert = crypto.load_certificate(vectors.text(WEB, f"{user}.certificate.pem"))
    assert cert.serial_number == 0
    assert cert.common_name == user
    assert (cert.not_after - cert.not_before).days == 7300
    private_key = crypto.load_private_key(vectors.text(WEB, f"{user}.private-key.DERIVED.pem"))
    crypto.verify_certificate(
        cert,
        server_public_key=crypto.load_public_key(vectors.text(WEB, "server-public-key.pem")),
        user_id=user,
        now=NOW,
        expected_public_key=private_key.public_key(),
    )


@pytest.mark.parametrize("user", ["admin", "alice"])
def test_web_root_metadata_key_unwraps_for_each_user(vectors, user):
    doc = protocol.parse_metadata_document(vectors.text(WEB, "root-folder.metadata.json"))
    private_key = crypto.load_private_key(vectors.text(WEB, f"{user}.private-key.DERIVED.pem"))
    key = crypto.unwrap_metadata_key(doc, user, private_key)
    assert key.hex() == vectors.text(WEB, "metadata-key.DERIVED.hex").strip()


@pytest.mark.parametrize("folder", ["root-folder", "sub-folder"])
def test_web_metadata_decrypts_to_the_derived_json(vectors, folder):
    key = bytes.fromhex(vectors.text(WEB, "metadata-key.DERIVED.hex").strip())
    doc = protocol.parse_metadata_document(vectors.text(WEB, f"{folder}.metadata.json"))
    assert doc.metadata.nonce and len(doc.metadata.nonce) == 16
    assert decrypt_metadata_json(doc.metadata, key) == vectors.json(
        WEB, f"{folder}.metadata.decrypted.json"
    )


@pytest.mark.parametrize("folder", ["root-folder", "sub-folder"])
def test_web_signed_content_and_signature(vectors, folder):
    doc = protocol.parse_metadata_document(vectors.text(WEB, f"{folder}.metadata.json"))
    content = protocol.signed_content(doc.source)
    assert content.decode() == vectors.text(WEB, f"{folder}.signed-content.DERIVED.txt").strip()
    signer = crypto.verify_metadata_signature(
        doc.source, vectors.text(WEB, f"{folder}.metadata.signature.b64")
    )
    assert signer.der == crypto.load_certificate(vectors.text(WEB, "admin.certificate.pem")).der


def test_web_root_and_subfolder_pass_full_verification(vectors):
    root = crypto.verify_root_metadata(
        protocol.parse_metadata_document(vectors.text(WEB, "root-folder.metadata.json")),
        signature=vectors.text(WEB, "root-folder.metadata.signature.b64"),
        user_id="alice",
        private_key=crypto.load_private_key(vectors.text(WEB, "alice.private-key.DERIVED.pem")),
        server_public_key=crypto.load_public_key(vectors.text(WEB, "server-public-key.pem")),
        now=NOW,
    )
    assert root.signer.common_name == "admin"
    assert root.folder.counter == 5
    assert root.folder.folders == {"fa666d819a6c4315abba421172f0a0b1": "Test"}
    assert crypto.key_checksum(root.metadata_key) == root.folder.key_checksums[1]
    sub = crypto.verify_subfolder_metadata(
        protocol.parse_metadata_document(vectors.text(WEB, "sub-folder.metadata.json")),
        signature=vectors.text(WEB, "sub-folder.metadata.signature.b64"),
        root=root,
    )
    assert {e.filename for e in sub.folder.files.values()} == {
        "07-09-2018 11.40.15.jpg",
        "subtest.txt",
        "test.txt",
    }


def test_web_file_decrypts_with_its_metadata_entry(vectors):
    key = bytes.fromhex(vectors.text(WEB, "metadata-key.DERIVED.hex").strip())
    doc = protocol.parse_metadata_document(vectors.text(WEB, "root-folder.metadata.json"))
    folder = crypto.decrypt_folder_metadata(doc.metadata, key)
    file_id = "ad3b12554e0d4364854ae3e21b170152"
    blob = base64.b64decode(vectors.text(WEB, f"file.{file_id}.encrypted.b64"))
    assert len(blob) == 29
    plaintext = crypto.decrypt_file(blob, folder.files[file_id])
    assert plaintext == vectors.bytes(WEB, f"file.{file_id}.plaintext.txt") == b"test content\n"


# --- web-cert-signature-and-sha256 -----------------------------------------------------------


@pytest.mark.parametrize(
    ("stem", "server", "hash_name"),
    [("louisc.sha1-signed", "louisc", "sha1"), ("admin.sha256-signed", "admin", "sha256")],
)
def test_certificates_signed_with_sha1_and_sha256(vectors, stem, server, hash_name):
    folder = "web-cert-signature-and-sha256"
    cert = crypto.load_certificate(vectors.text(folder, f"{stem}.certificate.pem"))
    assert cert.signature_hash == hash_name
    crypto.verify_certificate(
        cert,
        server_public_key=crypto.load_public_key(
            vectors.text(folder, f"{server}.server-public-key.pem")
        ),
        user_id=server,
        now=NOW,
    )


def test_key_checksum_vector(vectors):
    data = vectors.json("web-cert-signature-and-sha256", "sha256-keychecksum.json")
    key = base64.b64decode(data["metadataKeyBase64"])
    assert crypto.key_checksum(key) == data["expectedKeyChecksumHex"]


# --- v2-android-filedrop ---------------------------------------------------------------------


def test_android_filedrop_entry_opens(vectors):
    folder = "v2-android-filedrop"
    entry = protocol.parse_filedrop_entry(vectors.json(folder, "filedrop-entry.json"))
    private_key = crypto.load_private_key(vectors.text(folder, "android3.private-key.pkcs8.b64"))
    derived = crypto.load_private_key(vectors.text(folder, "android3.private-key.DERIVED.pem"))
    assert private_key.private_numbers() == derived.private_numbers()
    file_entry = crypto.open_filedrop_entry(entry, "android3", private_key)
    assert file_entry.to_json() == vectors.json(folder, "filedrop-entry.decrypted.json")
    # The exact decrypted bytes, through the raw path.
    key = crypto.rsa_unwrap(private_key, entry.recipients[0].encrypted_filedrop_key)
    exact = vectors.bytes(folder, "filedrop-entry.decrypted.exact-bytes.txt")
    decrypted = decrypt_metadata_json(entry.blob, key)
    assert json.dumps(decrypted, separators=(",", ":")).encode() == exact


# --- v2-android-signed-metadata --------------------------------------------------------------


def test_android_signature_verifies_over_sorted_json_only(vectors):
    folder = "v2-android-signed-metadata"
    doc = protocol.parse_metadata_document(vectors.text(folder, "metadata.json"))
    assert len(doc.metadata.nonce) == 12
    signature = vectors.text(folder, "metadata.signature.b64")
    assert (
        protocol.signed_content(doc.source).decode()
        == vectors.text(folder, "signed-content.DERIVED.txt").strip()
    )
    signer = crypto.verify_metadata_signature(doc.source, signature)
    assert signer.common_name == "admin"
    assert signer.serial_number == 0
    assert signer.der == crypto.load_certificate(vectors.text(folder, "admin.certificate.pem")).der
    # Declaration-order JSON (what a naive signer would hash) must not verify.
    unsorted = base64.b64encode(
        json.dumps(vectors.json(folder, "metadata.json"), separators=(",", ":")).encode()
    )
    assert unsorted != protocol.signed_content(doc.source)
    with pytest.raises(MetadataSignatureError):
        crypto.verify_detached(unsorted, base64.b64decode(signature))


# --- android-test-keys -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["t1", "john", "enc1", "enc2", "EncryptionTestIT"])
def test_android_key_pairs_match_their_certificates(vectors, name):
    folder = "android-test-keys"
    private_key = crypto.load_private_key(vectors.text(folder, f"{name}.private-key.pkcs8.b64"))
    cert = crypto.load_certificate(vectors.text(folder, f"{name}.certificate.pem"))
    crypto.check_key_pair(private_key, cert.public_key)
    if name == "enc2":
        assert cert.common_name == "enc3"  # SOURCE.md: enc2's certificate says CN=enc3
    # The key wraps and unwraps like any other (OAEP SHA-256 both ways).
    assert crypto.rsa_unwrap(private_key, crypto.rsa_wrap(cert.public_key, b"k" * 16)) == b"k" * 16


def test_android_v12_checksum_vector(vectors):
    data = vectors.json("android-test-keys", "v1.2-checksum-vector.json")
    checksum = crypto.v1_checksum(data["mnemonic"], data["fileIds"], data["metadataKeyField"])
    assert checksum == data["expectedChecksum"]


def test_android_gzip_vector(vectors):
    from client.crypto.metadata import gunzip

    data = vectors.json("android-test-keys", "gzip-vector.json")
    raw = base64.b64decode(data["gzipBase64"])
    assert gunzip(raw) == gzip.decompress(raw) == data["expectedPlaintextBytes"].encode()


# --- v1-testdata-version12 -------------------------------------------------------------------


@pytest.fixture(scope="module")
def v1_private_key(vectors):
    unwrapped = crypto.unwrap_private_key(
        vectors.text(V1, "admin.private.key"), vectors.text(V1, "admin.mnemonic.txt")
    )
    assert unwrapped.kdf is crypto.Kdf.SHA1_1024
    assert crypto.private_key_to_pem(unwrapped.private_key) == vectors.text(
        V1, "admin.private-key.DERIVED.pem"
    )
    cert = crypto.load_certificate(vectors.text(V1, "admin.public.key.pem"))
    crypto.check_key_pair(unwrapped.private_key, cert.public_key)
    assert cert.signature_hash == "sha1"
    return unwrapped.private_key


@pytest.mark.parametrize("folder_id", V1_FOLDERS)
def test_v1_metadata_decrypts_to_the_derived_json(vectors, v1_private_key, folder_id):
    doc = protocol.parse_metadata_document(vectors.text(V1, f"metadata/{folder_id}.meta.data.json"))
    assert isinstance(doc, protocol.MetadataDocumentV1)
    assert doc.version == "1.2"
    expected = vectors.json(V1, f"metadata/{folder_id}.meta.data.DERIVED-decrypted.json")
    rsa_plaintext = crypto.rsa_unwrap(v1_private_key, doc.metadata_keys[0])
    assert rsa_plaintext.decode() == expected["rsaPlaintext"]
    folder = crypto.decrypt_metadata_v1(
        doc, private_key=v1_private_key, mnemonic=vectors.text(V1, "admin.mnemonic.txt")
    )
    assert folder.metadata_key.hex() == expected["metadataKeyHex"]
    for uid, raw in expected["files"].items():
        assert decrypt_v1_file_json(doc.files[uid], folder.metadata_key) == raw
        entry = folder.files[uid]
        assert (entry.filename, entry.mimetype) == (raw["filename"], raw["mimetype"])
        assert entry.key == base64.b64decode(raw["key"])
    assert set(folder.files) == set(expected["files"])


def test_v1_files_decrypt_to_their_originals(vectors, v1_private_key):
    index = vectors.json(V1, "index.json")
    folders = {}
    for folder_id in V1_FOLDERS:
        doc = protocol.parse_metadata_document(
            vectors.text(V1, f"metadata/{folder_id}.meta.data.json")
        )
        folders.update(crypto.decrypt_metadata_v1(doc, private_key=v1_private_key).files)
    assert len(index["fileVectors"]) == 7
    for item in index["fileVectors"]:
        entry = folders[item["id"]]
        assert entry.filename == item["filename"]
        assert base64.b64encode(entry.nonce).decode() == item["iv"]
        blob = vectors.bytes(V1, f"files/{item['id']}.encrypted.bin")
        assert crypto.decrypt_file(blob, entry) == vectors.bytes(
            V1, f"files/{item['id']}.plaintext.bin"
        )


def test_v1_folders_appear_as_directory_entries(vectors, v1_private_key):
    doc = protocol.parse_metadata_document(vectors.text(V1, "metadata/134.meta.data.json"))
    folder = crypto.decrypt_metadata_v1(doc, private_key=v1_private_key)
    names = {e.filename for e in folder.files.values() if e.is_folder}
    assert names == {"Documents", "Vorlagen", "Photos"}
