"""Issue 7 item 3, end to end on a live stack: the offline recovery key.

The tests of this module share one server, in order: enabled → a user writes → the user loses
everything → the admin recovers; then disabled; then a swapped key.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from datetime import UTC, datetime

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from client.crypto.keys import build_csr, generate_private_key, load_certificate, load_public_key
from client.crypto.keywrap import wordlist
from client.crypto.recovery import verify_recovery_certificate
from tests.recovery.conftest import disable, enable, root_users

RECOVERY_API = "/ocs/v2.php/apps/e2ee-stack/api/v1/recovery"
OCS = {"OCS-APIRequest": "true"}

STATE: dict = {}


def _capabilities(stack, device) -> dict:
    with httpx.Client(base_url=stack.base_url, auth=(device.user, device.password)) as http:
        response = http.get("/ocs/v2.php/cloud/capabilities?format=json", headers=OCS)
    response.raise_for_status()
    return response.json()["ocs"]["data"]["capabilities"]


def _audit(stack, action: str) -> list[tuple]:
    return stack.query(
        "SELECT actor, target, outcome FROM audit_auditevent WHERE action = %s ORDER BY seq",
        [action],
    )


def test_create_is_offline_and_keeps_only_the_wrapped_key(new_recovery_key):
    key = new_recovery_key()
    STATE["key"] = key
    words = key.phrase.split()
    assert len(words) == 24 and set(words) <= set(wordlist())
    files = sorted(p.name for p in key.path.iterdir())
    assert files == ["recovery-key.wrapped", "recovery.csr.pem", "recovery.json"]
    wrapped = key.path / "recovery-key.wrapped"
    assert stat.S_IMODE(wrapped.stat().st_mode) == 0o600
    assert len(wrapped.read_text().split("|")) == 3  # ct|iv|salt, as the Nextcloud key
    for path in key.path.iterdir():  # no plaintext private key, no words anywhere
        text = path.read_text()
        assert "PRIVATE KEY" not in text and words[0] + " " + words[1] not in text
    csr = x509.load_pem_x509_csr(key.csr.read_bytes())
    cn = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == key.user_id and key.user_id.startswith("recovery:")


def test_refused_twice_then_enabled_through_the_ca(stack, admin, new_recovery_key, tmp_path):
    key = STATE["key"]
    # Refusal: a CSR whose CN is not bound to its key (a user's CSR) is not a recovery key.
    user_csr = tmp_path / "user.csr.pem"
    user_csr.write_text(build_csr(generate_private_key(), "alice"))
    try:
        stack.manage("recovery", "enable", "--csr", str(user_csr))
        raise AssertionError("a user CSR was accepted as the recovery key")
    except RuntimeError as error:
        assert "common name" in str(error)
    assert _capabilities(stack, admin)["e2ee-stack"]["recovery"] == {"enabled": False}
    # The honest twin: the CSR from `e2ee recovery create`.
    out = enable(stack, key)
    assert key.user_id in out
    # A second key while one is enabled is refused.
    try:
        enable(stack, new_recovery_key())
        raise AssertionError("a second recovery key was enabled")
    except RuntimeError as error:
        assert "disable it first" in str(error)
    offer = _capabilities(stack, admin)["e2ee-stack"]["recovery"]
    assert offer["enabled"] is True and offer["id"] == key.user_id
    cert = x509.load_pem_x509_certificate(offer["certificate"].encode())
    assert offer["fingerprint"] == hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_encipherment and not usage.digital_signature
    # Signed by the server's CA key, the key every client pinned at login.
    pinned = load_public_key((admin.config / "server-key.pem").read_text())
    assert (
        verify_recovery_certificate(
            load_certificate(offer["certificate"]), server_public_key=pinned, now=datetime.now(UTC)
        )
        == key.user_id
    )
    assert [row[2] for row in _audit(stack, "recovery.enable")] == ["denied", "success", "denied"]


def test_user_writes_loses_everything_and_the_admin_recovers(stack, admin, make_device, tmp_path):
    key = STATE["key"]
    alice = make_device("alice")
    alice.ok("init", "--mnemonic-out", tmp_path / "alice-words")
    first = alice.ok("encrypt", "Vault")
    assert "WARNING: recovery is enabled" in first.stderr and "'Vault'" in first.stderr
    alice.ok("mkdir", "-p", "Vault/docs/deep")
    contents = {
        "readme.txt": b"top level\n",
        "docs/report.bin": os.urandom(300_000),
        "docs/deep/empty.txt": b"",
        "docs/deep/notes.md": "ünïcode ✓\n".encode(),
    }
    for rel, data in contents.items():
        local = tmp_path / rel.replace("/", "_")
        local.write_bytes(data)
        again = alice.ok("put", local, f"Vault/{rel}")
        assert "WARNING" not in again.stderr  # once per folder
    assert "ENABLED" in alice.ok("status").stdout
    status = json.loads(alice.ok("--json", "status").stdout)
    assert status["recovery"]["enabled"] and status["recovery"]["id"] == key.user_id
    assert sorted(root_users(stack, "Vault", "alice")) == sorted(["alice", key.user_id])
    # The user loses every device and the mnemonic.
    shutil.rmtree(alice.config)
    (tmp_path / "alice-words").unlink()
    # Refusal twin first: the wrong words open nothing and write nothing.
    wrong = tmp_path / "wrong.txt"
    wrong.write_text(" ".join(reversed(key.phrase.split())))
    out = tmp_path / "recovered"
    failed = admin.fails(
        3,
        "recovery",
        "decrypt",
        "--key",
        key.path,
        "--user",
        "alice",
        "--folder",
        "Vault",
        "--out",
        out,
        "--phrase-file",
        wrong,
    )
    assert "WrongMnemonic" in failed.stderr and not out.exists()
    # Honest: the recovery key and admin access recover every file byte for byte.
    done = json.loads(
        admin.ok(
            "--json",
            "recovery",
            "decrypt",
            "--key",
            key.path,
            "--user",
            "alice",
            "--folder",
            "Vault",
            "--out",
            out,
            "--phrase-file",
            key.phrase_file(tmp_path),
        ).stdout
    )
    assert done["files"] == len(contents) and done["folders"] == 3
    found = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert found == contents
    exports = _audit(stack, "recovery.export")
    assert exports and exports[-1][0] == "admin" and exports[-1][2] == "success"
    assert len([r for r in _audit(stack, "recovery.blob") if r[2] == "success"]) == len(contents)
    STATE["vault_out"] = out


def test_only_administrators_read_ciphertext(stack, admin, make_device):
    bob = make_device("bob")
    params = {"user": "alice", "path": "Vault", "format": "json"}
    with httpx.Client(base_url=stack.base_url, auth=(bob.user, bob.password)) as http:
        assert http.get(f"{RECOVERY_API}/export", params=params, headers=OCS).status_code == 403
    with httpx.Client(base_url=stack.base_url, auth=(admin.user, admin.password)) as http:
        response = http.get(f"{RECOVERY_API}/export", params=params, headers=OCS)
        assert response.status_code == 200  # twin: the administrator
        nodes = response.json()["ocs"]["data"]["nodes"]
        names = {n["name"] for n in nodes}
        # Ciphertext and structure only: below the root, names are uuids.
        assert "docs" not in names and "readme.txt" not in names
        plain = http.get(
            f"{RECOVERY_API}/export", params={**params, "path": "Vault/x"}, headers=OCS
        )
        assert plain.status_code == 404
    denied = [r for r in _audit(stack, "recovery.export") if r[0] == "bob"]
    assert denied and denied[-1][2] == "denied"


def test_disabling_stops_new_writes_and_users_are_told(stack, make_device, tmp_path):
    carol = make_device("carol")
    carol.ok("init", "--mnemonic-out", tmp_path / "carol-words")
    carol.ok("encrypt", "Diary")
    key = STATE["key"]
    assert key.user_id in root_users(stack, "Diary", "carol")
    disable(stack)
    note = tmp_path / "note.txt"
    note.write_text("after disabling\n")
    result = carol.ok("put", note, "Diary/note.txt")
    assert "disabled the recovery key" in result.stderr
    assert root_users(stack, "Diary", "carol") == ["carol"]
    again = carol.ok("put", note, "Diary/note2.txt")
    assert "disabled" not in again.stderr  # told once
    assert "disabled by the administrator" in carol.ok("status").stdout
    # The metadata key is still the one the recovery key saw: `drop` replaces it.
    carol.ok("recovery", "drop", "Diary")
    assert disable_refused(stack)
    STATE["carol"] = carol


def disable_refused(stack) -> bool:
    try:
        disable(stack)
    except RuntimeError as error:
        return "No recovery key is enabled" in str(error)
    return False


def test_a_swapped_recovery_key_is_refused_like_a_changed_pinned_key(
    stack, new_recovery_key, make_device, tmp_path
):
    carol = STATE["carol"]  # pinned the first recovery key
    enable(stack, new_recovery_key())
    before = root_users(stack, "Diary", "carol")
    note = tmp_path / "n.txt"
    note.write_text("x")
    failed = carol.fails(3, "put", note, "Diary/n.txt")
    assert "RecoveryKeyChangedError" in failed.stderr
    assert root_users(stack, "Diary", "carol") == before  # nothing written for the new key
    assert "REFUSED" in carol.ok("status").stdout
    # Twin: a client that never pinned one accepts the CA-certified key, and is warned.
    dave = make_device("dave")
    dave.ok("init", "--mnemonic-out", tmp_path / "dave-words")
    assert "WARNING: recovery is enabled" in dave.ok("encrypt", "Dave").stderr
