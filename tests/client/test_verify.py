"""§8.1 read verification: every failure raises its own error, next to an untampered twin."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest

from client import crypto, protocol
from client.errors import (
    CertificateKeyMismatchError,
    CertificateNotIssuedByServerError,
    CertificateUserMismatchError,
    CounterRollbackError,
    DecryptionError,
    DowngradeError,
    KeyChecksumMissingError,
    KeyChecksumRemovedError,
    KeyUnwrapError,
    MetadataSignatureError,
    OwnEntryMissingError,
    PlaintextInEncryptedFolderError,
    SignerNotRootUserError,
)
from tests.client.conftest import NOW

KEY = bytes(range(16))
OLD_KEY = bytes(range(16, 32))
CHECKSUMS = (crypto.key_checksum(OLD_KEY), crypto.key_checksum(KEY))


def folder(counter: int = 5, checksums: tuple[str, ...] = CHECKSUMS) -> protocol.FolderMetadata:
    blob, entry = crypto.encrypt_file(b"data", filename="a.txt", mimetype="text/plain")
    return protocol.FolderMetadata(
        counter=counter,
        files={"f" * 32: entry},
        folders={"d" * 32: "Docs"},
        key_checksums=checksums,
    )


def wire(obj) -> protocol.MetadataDocumentV2:
    """Serialise and parse again, as if it came from the server."""
    return protocol.parse_metadata_document(json.dumps(obj))


def sign(obj, identity) -> str:
    return crypto.sign_metadata(obj, identity.certificate, identity.private_key, signing_time=NOW)


@pytest.fixture(scope="module")
def carol(server):
    return server.issue("carol")


@pytest.fixture
def read(server, bob):
    """Verify a root document as bob would."""

    def _read(obj, signature, *, user=bob, history=None, reported_encrypted=True):
        return crypto.verify_root_metadata(
            wire(obj),
            signature=signature,
            user_id=user.user_id,
            private_key=user.private_key,
            server_public_key=server.public_key,
            now=NOW,
            history=history,
            reported_encrypted=reported_encrypted,
        )

    return _read


@pytest.fixture
def honest(alice, bob):
    obj = crypto.build_root_document(folder(), KEY, [alice.recipient, bob.recipient])
    return obj, sign(obj, alice)


def test_untampered_twin_passes(read, honest, alice):
    obj, signature = honest
    verified = read(obj, signature)
    assert verified.metadata_key == KEY
    assert verified.signer.der == alice.certificate.der
    assert set(verified.certificates) == {"alice", "bob"}
    assert verified.folder.counter == 5
    text = repr(verified)
    assert repr(KEY) not in text, text[max(0, text.find(repr(KEY)) - 300) :][:400]
    history = verified.history()
    assert history == crypto.FolderHistory(5, frozenset(CHECKSUMS), "2.0", True)
    # The same document again, with the history it produced, still passes.
    read(obj, signature, history=history)


def test_flipped_signature_byte(read, honest):
    obj, signature = honest
    der = bytearray(base64.b64decode(signature))
    der[-5] ^= 1  # inside the RSA signature value
    with pytest.raises(MetadataSignatureError) as info:
        read(obj, base64.b64encode(bytes(der)).decode())
    assert type(info.value) is MetadataSignatureError


@pytest.mark.parametrize("signature", [None, "", "not base64!", "QUJD"])
def test_missing_or_garbage_signature(read, honest, signature):
    with pytest.raises(MetadataSignatureError):
        read(honest[0], signature)


def test_edited_version_field_breaks_the_signature(read, honest):
    obj, signature = honest
    with pytest.raises(MetadataSignatureError):
        read({**obj, "version": "2.1"}, signature)


def test_signature_over_unsorted_json_is_refused(read, honest, alice):
    obj, _ = honest
    unsorted = base64.b64encode(json.dumps(obj, separators=(",", ":")).encode())
    assert unsorted != protocol.signed_content(obj)
    der = crypto.sign_detached(unsorted, alice.certificate, alice.private_key, signing_time=NOW)
    with pytest.raises(MetadataSignatureError):
        read(obj, base64.b64encode(der).decode())


def test_filedrop_and_php_escaping_do_not_touch_the_signature(server, honest, alice, bob):
    obj, signature = honest
    drop = crypto.create_filedrop_entry(
        folder().files["f" * 32], [("alice", alice.certificate.public_key)]
    )
    with_drop = {**obj, "filedrop": {"e" * 32: drop.to_json()}}
    php_text = json.dumps(with_drop).replace("/", "\\/")  # PHP json_encode after a merge
    assert "\\/" in php_text
    verified = crypto.verify_root_metadata(
        protocol.parse_metadata_document(php_text),
        signature=signature,
        user_id="bob",
        private_key=bob.private_key,
        server_public_key=server.public_key,
        now=NOW,
    )
    assert "e" * 32 in verified.document.filedrop


def test_signer_not_a_root_user(read, honest, carol):
    obj, _ = honest
    with pytest.raises(SignerNotRootUserError):
        read(obj, sign(obj, carol))


def test_user_certificate_not_issued_by_server(read, alice, bob, rogue_server):
    mallory = rogue_server.issue("mallory")
    obj = crypto.build_root_document(
        folder(), KEY, [alice.recipient, bob.recipient, mallory.recipient]
    )
    with pytest.raises(CertificateNotIssuedByServerError):
        read(obj, sign(obj, alice))


def test_user_certificate_cn_differs_from_user_id(read, alice, bob, server):
    impostor = server.issue("mallory")
    obj = crypto.build_root_document(
        folder(),
        KEY,
        [alice.recipient, bob.recipient, crypto.Recipient("eve", impostor.certificate_pem)],
    )
    with pytest.raises(CertificateUserMismatchError):
        read(obj, sign(obj, alice))


def test_own_entry_missing(read, alice, carol):
    obj = crypto.build_root_document(folder(), KEY, [alice.recipient, carol.recipient])
    with pytest.raises(OwnEntryMissingError):
        read(obj, sign(obj, alice))
    read(obj, sign(obj, alice), user=carol)  # twin: carol is listed and reads it


def test_own_entry_with_someone_elses_certificate(read, alice, bob, carol):
    obj = crypto.build_root_document(folder(), KEY, [alice.recipient, bob.recipient])
    obj["users"][1]["certificate"] = carol.certificate_pem
    obj["users"][1]["userId"] = "bob"
    # CN says carol: caught as a CN mismatch before anything is unwrapped.
    with pytest.raises(CertificateUserMismatchError):
        read(obj, sign(obj, alice))


def test_own_certificate_for_another_key(read, alice, bob, server, carol):
    swapped = server.issue("bob", private_key=carol.private_key)
    obj = crypto.build_root_document(
        folder(), KEY, [alice.recipient, crypto.Recipient("bob", swapped.certificate_pem)]
    )
    with pytest.raises(CertificateKeyMismatchError):
        read(obj, sign(obj, alice))


def test_own_wrapped_key_does_not_unwrap(read, honest, alice):
    obj, _ = honest
    obj = json.loads(json.dumps(obj))
    obj["users"][1]["encryptedMetadataKey"] = obj["users"][0]["encryptedMetadataKey"]
    with pytest.raises(KeyUnwrapError):
        read(obj, sign(obj, alice))


def test_metadata_ciphertext_tampered(read, honest, alice):
    obj, _ = honest
    obj = json.loads(json.dumps(obj))
    ct = bytearray(base64.b64decode(obj["metadata"]["ciphertext"]))
    ct[0] ^= 1
    obj["metadata"]["ciphertext"] = base64.b64encode(bytes(ct)).decode()
    with pytest.raises(DecryptionError):
        read(obj, sign(obj, alice))


def test_current_key_not_in_key_checksums(read, alice, bob):
    obj = crypto.build_root_document(
        folder(checksums=(crypto.key_checksum(KEY),)), KEY, [alice.recipient, bob.recipient]
    )
    # Swap in inner metadata whose checksums omit the current key (a writer with the key).
    blob = crypto.encrypt_folder_metadata(
        folder(checksums=(crypto.key_checksum(OLD_KEY),)), KEY, root=True
    )
    obj["metadata"] = blob.to_json()
    with pytest.raises(KeyChecksumMissingError):
        read(obj, sign(obj, alice))


def test_previously_seen_checksum_removed(read, alice, bob):
    history = crypto.FolderHistory(5, frozenset(CHECKSUMS), "2.0", True)
    shrunk = crypto.build_root_document(
        folder(checksums=CHECKSUMS[1:]), KEY, [alice.recipient, bob.recipient]
    )
    with pytest.raises(KeyChecksumRemovedError):
        read(shrunk, sign(shrunk, alice), history=history)
    read(shrunk, sign(shrunk, alice))  # twin: without that history it is fine


def test_counter_below_highest_seen(read, alice, bob):
    history = crypto.FolderHistory(6, frozenset(CHECKSUMS), "2.0", True)
    old = crypto.build_root_document(folder(counter=5), KEY, [alice.recipient, bob.recipient])
    with pytest.raises(CounterRollbackError):
        read(old, sign(old, alice), history=history)
    same = crypto.build_root_document(folder(counter=6), KEY, [alice.recipient, bob.recipient])
    read(same, sign(same, alice), history=history)  # twin: equal counter passes


def test_known_encrypted_folder_reported_plain(read, honest):
    obj, signature = honest
    history = crypto.FolderHistory(5, frozenset(CHECKSUMS), "2.0", True)
    with pytest.raises(PlaintextInEncryptedFolderError):
        read(obj, signature, history=history, reported_encrypted=False)
    read(obj, signature, history=history, reported_encrypted=True)


def test_v2_folder_served_as_v1(vectors, server, bob, honest, read):
    history = crypto.FolderHistory(5, frozenset(CHECKSUMS), "2.0", True)
    v1 = protocol.parse_metadata_document(
        vectors.text("v1-testdata-version12", "metadata/134.meta.data.json")
    )
    with pytest.raises(DowngradeError):
        crypto.verify_root_metadata(
            v1,
            signature="",
            user_id="bob",
            private_key=bob.private_key,
            server_public_key=server.public_key,
            now=NOW,
            history=history,
        )
    read(*honest, history=history)


# --- sub-folders ------------------------------------------------------------------------------


@pytest.fixture
def root(read, honest):
    return read(*honest)


def test_subfolder_twin_passes(root, alice):
    obj = crypto.build_subfolder_document(folder(counter=2, checksums=()), KEY)
    assert "users" not in obj
    verified = crypto.verify_subfolder_metadata(wire(obj), signature=sign(obj, alice), root=root)
    assert verified.folder.counter == 2
    assert verified.folder.key_checksums == ()


def test_subfolder_signed_by_outsider(root, carol):
    obj = crypto.build_subfolder_document(folder(counter=2, checksums=()), KEY)
    with pytest.raises(SignerNotRootUserError):
        crypto.verify_subfolder_metadata(wire(obj), signature=sign(obj, carol), root=root)


def test_subfolder_counter_rollback(root, alice):
    obj = crypto.build_subfolder_document(folder(counter=2, checksums=()), KEY)
    with pytest.raises(CounterRollbackError):
        crypto.verify_subfolder_metadata(
            wire(obj),
            signature=sign(obj, alice),
            root=root,
            history=crypto.FolderHistory(highest_counter=3),
        )


def test_subfolder_under_another_key(root, alice):
    obj = crypto.build_subfolder_document(folder(counter=2, checksums=()), OLD_KEY)
    with pytest.raises(DecryptionError):
        crypto.verify_subfolder_metadata(wire(obj), signature=sign(obj, alice), root=root)


def test_history_never_regresses(root):
    bigger = crypto.FolderHistory(9, frozenset({"a" * 64}), "2.1", True)
    merged = root.history(bigger)
    assert merged.highest_counter == 9
    assert merged.key_checksums == frozenset(CHECKSUMS) | {"a" * 64}
    assert merged.version == "2.1"
    assert replace(merged, highest_counter=5) != merged
