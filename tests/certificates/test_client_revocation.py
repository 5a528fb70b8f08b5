"""The client and the CA-signed revoked list, against a live stack (gunicorn, inline software
CA): an admin revokes a certificate; the owner's device, and everyone who would wrap a folder
key for it or trust metadata it signed, refuse it (exit 3). Each refusal has its honest twin."""

from __future__ import annotations

import json

import pytest

from client import crypto
from client.api import ServerApi
from client.errors import CertificateRevokedError
from client.keystore import Keystore
from client.ops import revocation
from client.ops.session import now
from client.protocol import parse_metadata_document
from tests.certificates.revoking import revoke
from tests.cli.conftest import make_device  # noqa: F401 - fixture
from tests.live import LiveStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack():
    """A stack of this module's own: revocations need `manage.py` on it (inline software CA)."""
    with LiveStack.start(env={"E2EE_SIGNING": "inline", "E2EE_SIGNER": "software"}) as live:
        live.manage("ca", "init", "--backend", "software")
        yield live


@pytest.fixture(scope="module")
def people(make_device, tmp_path_factory):  # noqa: F811
    words = tmp_path_factory.mktemp("revocation-words")
    devices = {uid: make_device(uid) for uid in ("rv-ann", "rv-ben", "rv-cid")}
    for uid, device in devices.items():
        device.ok("init", "--mnemonic-out", words / uid)
    return devices


def status(device) -> dict:
    return json.loads(device.ok("--json", "status").stdout)


def test_revoked_member_gets_no_key_and_the_owner_sees_it(people, stack, tmp_path):  # noqa: F811
    ann, ben, cid = people["rv-ann"], people["rv-ben"], people["rv-cid"]
    note = tmp_path / "note.txt"
    note.write_text("for the team")
    ann.ok("encrypt", "Crew")
    ann.ok("share", "Crew", ben.user)
    ann.ok("share", "Crew", cid.user)
    ann.ok("put", note, "Crew/before.txt")  # twin: everyone's certificate is good
    assert status(ben)["certificate"].startswith("valid")
    assert status(ben)["certificate_revoked"] is False

    serial = revoke(stack, ben.user)

    # the owner's device: status shows it, writing is refused
    shown = status(ben)
    assert shown["certificate_revoked"] is True and serial in shown["certificate"]
    assert "REVOKED" in ben.ok("status").stdout
    refused = ben.fails(3, "put", note, "Crew/from-ben.txt")
    assert "CertificateRevokedError" in refused.stderr and "your own certificate" in refused.stderr
    # a member would wrap the folder key for the revoked certificate: refused, nothing written
    refused = ann.fails(3, "put", note, "Crew/after.txt")
    assert "CertificateRevokedError" in refused.stderr and ben.user in refused.stderr
    assert "after.txt" not in ann.ok("ls", "Crew").stdout
    # removing the revoked member rotates the key for the others; writing works again
    ann.ok("unshare", "Crew", ben.user)
    ann.ok("put", note, "Crew/after.txt")
    cid.ok("get", "Crew/after.txt", tmp_path / "got.txt")
    assert (tmp_path / "got.txt").read_text() == "for the team"


def test_metadata_signed_by_a_revoked_key_is_refused(people, stack, tmp_path):  # noqa: F811
    ann, cid = people["rv-ann"], people["rv-cid"]
    ann.ok("encrypt", "Signed")
    ann.ok("share", "Signed", cid.user)
    note = tmp_path / "n.txt"
    note.write_text("by cid")
    cid.ok("put", note, "Signed/by-cid.txt")  # cid signs the root metadata last
    file_id = json.loads((ann.config / "folders.json").read_text())["roots"]["Signed"]

    def verify(revoked):
        keystore = Keystore(ann.config)
        account = keystore.account()
        with ServerApi(account.url, account.user, account.password) as api:
            text, signature = api.metadata(int(file_id))
        return crypto.verify_root_metadata(
            parse_metadata_document(text),
            signature=signature,
            user_id=ann.user,
            private_key=keystore.identity(ann.user).private_key,
            server_public_key=keystore.pinned_server_key(),
            now=now(),
            revoked=revoked,
        )

    keystore = Keystore(ann.config)
    assert verify(revocation.known_revoked(keystore)).signer.common_name == cid.user  # twin
    revoke(stack, cid.user)
    account = keystore.account()
    with ServerApi(account.url, account.user, account.password) as api:
        revocation.refresh(keystore, api, keystore.pinned_server_key())
    with pytest.raises(CertificateRevokedError, match="metadata signer"):
        verify(revocation.known_revoked(keystore))


def test_reading_metadata_signed_by_a_revoked_key_exits_3(people):
    ann = people["rv-ann"]
    refused = ann.fails(3, "ls", "Signed")  # cid, revoked, signed it last
    assert "CertificateRevokedError" in refused.stderr
    ann.ok("ls", "Crew")  # twin: a folder ann signed last still reads


# --- the pure checks, with a key of the test's own (each refusal next to what passes) ---------


def _signed(key, body) -> tuple[str, str]:
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    text = body if isinstance(body, str) else json.dumps(body, sort_keys=True)
    signature = key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
    return text, base64.b64encode(signature).decode()


def _edition(sequence, serials=("1f",)):
    return {
        "format": "e2ee-stack revocation list v1",
        "sequence": sequence,
        "issuedAt": "2026-12-01T10:00:00Z",
        "revoked": [{"serial": s, "revokedAt": "2026-12-01T09:00:00Z"} for s in serials],
    }


def test_list_shape_and_succession_rules():
    from client.crypto.revocation import check_succession, verify_revocation_list
    from client.errors import (
        FormatError,
        RevocationListRollbackError,
        RevocationListSignatureError,
    )
    from tests.e2ee.helpers import make_key

    key, other = make_key(), make_key()
    good = verify_revocation_list(*_signed(key, _edition(3)), key.public_key())
    assert good.sequence == 3 and set(good.revoked) == {0x1F}
    with pytest.raises(RevocationListSignatureError):
        verify_revocation_list(*_signed(other, _edition(3)), key.public_key())
    with pytest.raises(RevocationListSignatureError):
        verify_revocation_list(_signed(key, _edition(3))[0], "not base64!", key.public_key())
    for bad in (
        {**_edition(3), "format": "something else"},
        {**_edition(0)},
        {**_edition(3), "revoked": [{"serial": "1F", "revokedAt": "2026-12-01T09:00:00Z"}]},
        {**_edition(3), "issuedAt": "yesterday"},
        "[]",
    ):
        with pytest.raises(FormatError):  # signed, but not a list (exit 3 online, too)
            verify_revocation_list(*_signed(key, bad), key.public_key())
    # succession: first sight, the same edition again, a newer one keeping every serial
    check_succession(good, sequence=None, digest=None, sticky=frozenset())
    check_succession(good, sequence=3, digest=good.digest, sticky={0x1F})
    newer = verify_revocation_list(*_signed(key, _edition(4, ("1f", "2a"))), key.public_key())
    check_succession(newer, sequence=3, digest=good.digest, sticky={0x1F})
    with pytest.raises(RevocationListRollbackError, match="#3; this device saw #4"):
        check_succession(good, sequence=4, digest=newer.digest, sticky={0x1F})
    forked = verify_revocation_list(*_signed(key, _edition(3, ("1f", "3b"))), key.public_key())
    with pytest.raises(RevocationListRollbackError, match="different revoked list #3"):
        check_succession(forked, sequence=3, digest=good.digest, sticky={0x1F})
    dropped = verify_revocation_list(*_signed(key, _edition(5, ())), key.public_key())
    with pytest.raises(RevocationListRollbackError, match="leaves out 1 serial"):
        check_succession(dropped, sequence=4, digest=newer.digest, sticky={0x1F})
