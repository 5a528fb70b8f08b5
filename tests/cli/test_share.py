"""share / unshare with key rotation over the whole tree, safety numbers, pinned certificates."""

from __future__ import annotations

import json

import pytest

from client import crypto
from client.api import ServerApi
from client.protocol import parse_metadata_document

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def people(make_device, tmp_path_factory):
    words = tmp_path_factory.mktemp("share-words")
    alice, bob = make_device("sam"), make_device("bea")
    alice.ok("init", "--mnemonic-out", words / "a")
    bob.ok("init", "--mnemonic-out", words / "b")
    return alice, bob


def names(device, path):
    return {item["name"] for item in json.loads(device.ok("--json", "ls", path).stdout)}


def test_share_then_unshare(people, tmp_path):
    alice, bob = people
    alice.ok("encrypt", "Team")
    alice.ok("mkdir", "-p", "Team/Plans/Q1")
    note = tmp_path / "note.txt"
    note.write_text("before sharing")
    alice.ok("put", note, "Team/Plans/Q1/note.txt")
    bob.fails(2, "ls", "Team")  # not shared yet

    result = json.loads(alice.ok("--json", "share", "Team", bob.user).stdout)
    assert result["members"] == sorted([alice.user, bob.user])
    assert result["folders_rekeyed"] == 3
    assert names(bob, "Team/Plans/Q1") == {"note.txt"}
    out = tmp_path / "got.txt"
    bob.ok("get", "Team/Plans/Q1/note.txt", out)
    assert out.read_text() == "before sharing"
    # bob writes too; alice reads it
    reply = tmp_path / "reply.txt"
    reply.write_text("from bob")
    bob.ok("put", reply, "Team/Plans/reply.txt")
    alice.ok("get", "Team/Plans/reply.txt", out)
    assert out.read_text() == "from bob"
    alice.fails(2, "share", "Team", bob.user)  # already a member
    alice.fails(2, "share", "Team/Plans", bob.user)  # only the topmost folder

    # remember bob's key, as a removed member colluding with the server would
    bob_key = crypto.load_private_key((bob.config / "private-key.pem").read_bytes())
    alice.ok("unshare", "Team", bob.user)
    secret = tmp_path / "secret.txt"
    secret.write_text("after removal")
    alice.ok("put", secret, "Team/Plans/Q1/secret.txt")
    bob.fails(2, "ls", "Team")  # the server share is gone

    # the server's copy: bob's key opens no metadata written after his removal
    with ServerApi(alice.stack.base_url, alice.user, alice.password) as api:
        root_id = json.loads((alice.config / "folders.json").read_text())["roots"]["Team"]
        document = parse_metadata_document(api.metadata(root_id)[0])
        assert document.user(bob.user) is None
        assert {u.user_id for u in document.users} == {alice.user}
        from client.errors import OwnEntryMissingError

        with pytest.raises(OwnEntryMissingError):
            crypto.unwrap_metadata_key(document, bob.user, bob_key)
    assert names(alice, "Team/Plans/Q1") == {"note.txt", "secret.txt"}


def test_fingerprints_and_verify(people):
    alice, bob = people
    own = json.loads(bob.ok("--json", "keys", "fingerprint").stdout)["fingerprint"]
    seen = json.loads(alice.ok("--json", "keys", "fingerprint", bob.user).stdout)["fingerprint"]
    assert own == seen
    alice.ok("keys", "verify", bob.user, own.replace(" ", ""))
    wrong = ("0000 " * 16).strip()
    assert "FingerprintMismatchError" in alice.fails(3, "keys", "verify", bob.user, wrong).stderr


def test_changed_certificate_of_a_pinned_user_is_refused(people, make_device, tmp_path):
    alice, bob = people
    alice.ok("keys", "fingerprint", bob.user)  # pinned
    pins = json.loads((alice.config / "pins.json").read_text())
    pins[bob.user] = pins[alice.user]  # as if the server now served another certificate
    (alice.config / "pins.json").write_text(json.dumps(pins))
    result = alice.fails(3, "keys", "fingerprint", bob.user)
    assert "CertificateChangedError" in result.stderr
    alice.ok("encrypt", "Pinned")
    assert "CertificateChangedError" in alice.fails(3, "share", "Pinned", bob.user).stderr
    del pins[bob.user]
    (alice.config / "pins.json").write_text(json.dumps(pins))
    alice.ok("share", "Pinned", bob.user)  # twin: with the real pin
