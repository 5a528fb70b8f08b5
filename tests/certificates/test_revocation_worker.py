"""The revoked list through the real parts: an admin revokes in the web process (which cannot
sign), the signing worker signs the new edition with the SoftHSM CA key, the web serves it."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.certificates.test_worker_e2e import certificate_of, post_csr, server_key
from tests.certificates.workers import SigningStack, signing_stack
from tests.e2ee.helpers import E2EE_HEADERS, make_csr, make_key

pytestmark = [pytest.mark.softhsm, pytest.mark.redis, pytest.mark.worker, pytest.mark.e2e]

REVOKED = "/ocs/v2.php/apps/e2ee_stack/api/v1/revoked?format=json"


@pytest.fixture(scope="module")
def signing(softhsm) -> SigningStack:
    with signing_stack(softhsm, timeout=5.0) as stack:
        stack.create_users(["rw-alice"])
        yield stack


def edition(stack: SigningStack) -> dict:
    response = httpx.get(
        stack.stack.url(REVOKED),
        headers=E2EE_HEADERS,
        auth=("rw-alice", stack.passwords["rw-alice"]),
    )
    assert response.status_code == 200, response.text
    data = response.json()["ocs"]["data"]
    server_key(stack).verify(
        base64.b64decode(data["signature"]),
        data["list"].encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    return json.loads(data["list"])


def test_the_worker_signs_each_new_edition(signing):
    assert edition(signing) == {  # made by `ca init` inside the token
        "format": "e2ee-stack revocation list v1",
        "issuedAt": edition(signing)["issuedAt"],
        "revoked": [],
        "sequence": 1,
    }
    signing.worker.start()
    serial = format(
        certificate_of(
            post_csr(signing, "rw-alice", make_csr("rw-alice", make_key()))
        ).serial_number,
        "x",
    )
    script = (
        "from server.accounts.models import User\n"
        "from server.certificates.models import Certificate\n"
        "from server.certificates.services import certificate_revoke\n"
        "admin = User.objects.create_superuser('rw-root', '', None)\n"
        "cert = Certificate.objects.get(key_owner='rw-alice')\n"
        "certificate_revoke(certificate_id=cert.pk, admin=admin, reason='stolen laptop')\n"
    )
    done = signing.manage_as_web("shell", "-c", script)  # the web side: no module, no PIN
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 20
    while (current := edition(signing))["sequence"] == 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert current["sequence"] == 2
    assert [entry["serial"] for entry in current["revoked"]] == [serial]
    # a restarted worker finds nothing new to sign
    signing.worker.stop()
    signing.worker.start()
    time.sleep(1)
    assert edition(signing)["sequence"] == 2
