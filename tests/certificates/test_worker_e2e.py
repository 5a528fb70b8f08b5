"""Issuance through the real parts: gunicorn -> Redis -> a Celery worker process -> SoftHSM.

The web process has no PKCS#11 module and no PIN; the worker alone signs. 50 users at once;
then the worker is killed with SIGKILL in the middle of a batch and restarted: every order ends
issued exactly once."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from tests.certificates.workers import SigningStack, signing_stack
from tests.e2ee.helpers import API, E2EE_HEADERS, make_csr, make_key

pytestmark = [pytest.mark.softhsm, pytest.mark.redis, pytest.mark.worker, pytest.mark.e2e]

BATCH = 50


@pytest.fixture(scope="module")
def signing(softhsm) -> SigningStack:
    with signing_stack(softhsm, timeout=3.0) as stack:
        yield stack


def post_csr(stack: SigningStack, uid: str, csr: str) -> httpx.Response:
    with httpx.Client(base_url=stack.stack.base_url, timeout=60) as client:
        return client.post(
            f"{API}/public-key?format=json",
            headers=E2EE_HEADERS,
            auth=(uid, stack.passwords[uid]),
            data={"csr": csr},
        )


def server_key(stack: SigningStack):
    response = httpx.get(stack.stack.url(f"{API}/server-key?format=json"))
    pem = response.json()["ocs"]["data"]["public-key"]
    return serialization.load_pem_public_key(pem.encode())


def certificate_of(response: httpx.Response) -> x509.Certificate:
    assert response.status_code == 200, response.text
    pem = response.json()["ocs"]["data"]["public-key"]
    return x509.load_pem_x509_certificate(pem.encode())


def check_issued(stack: SigningStack, uid: str, key, response: httpx.Response) -> int:
    cert = certificate_of(response)
    server_key(stack).verify(
        cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256()
    )
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == uid
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    return cert.serial_number


def orders_of(stack: SigningStack, uids: list[str]) -> list[tuple]:
    marks = ",".join(["%s"] * len(uids))
    return stack.stack.query(
        "SELECT o.key_owner, o.status, o.certificate_id FROM certificates_certificateorder o "
        f"WHERE o.key_owner IN ({marks})",
        uids,
    )


def certificates_of(stack: SigningStack, uids: list[str]) -> list[tuple]:
    marks = ",".join(["%s"] * len(uids))
    return stack.stack.query(
        f"SELECT id, key_owner, serial FROM certificates_certificate WHERE key_owner IN ({marks})",
        uids,
    )


def test_no_worker_is_503_and_the_same_csr_is_issued_once_a_worker_runs(signing):
    signing.create_users(["early"])
    key = make_key()
    csr = make_csr("early", key)
    started = time.monotonic()
    response = post_csr(signing, "early", csr)
    assert response.status_code == 503
    assert "No certificate signing worker answered" in response.json()["ocs"]["meta"]["message"]
    assert time.monotonic() - started < 15  # bounded wait (3 s configured)
    assert orders_of(signing, ["early"]) == [("early", "pending", None)]  # the order is kept

    signing.worker.start()
    again = post_csr(signing, "early", csr)
    check_issued(signing, "early", key, again)
    assert post_csr(signing, "early", csr).json() == again.json()  # idempotent repeat
    assert len(certificates_of(signing, ["early"])) == 1
    assert len(orders_of(signing, ["early"])) == 1


def test_web_process_holds_no_pin_and_no_module_and_cannot_sign(signing):
    if signing.worker.process is None:
        signing.worker.start()
    pin = signing.hsm.pin
    web_pids = [signing.stack.process.pid]
    web_pids += [
        int(p) for p in Path(f"/proc/{web_pids[0]}/task/{web_pids[0]}/children").read_text().split()
    ]
    assert len(web_pids) >= 2  # the arbiter and its workers
    for pid in web_pids:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        values = dict(item.split(b"=", 1) for item in environ if b"=" in item)
        assert values.get(b"PKCS11_MODULE", b"") == b""
        assert values.get(b"PKCS11_PIN_FILE", b"") == b""
        assert not any(pin.encode() in value for value in values.values())

    web = signing.manage_as_web("diffsettings", "--all")
    assert web.returncode == 0
    assert "PKCS11_MODULE = ''" in web.stdout and "PKCS11_PIN_FILE = ''" in web.stdout
    assert pin not in web.stdout and signing.hsm.module not in web.stdout

    # The web's configuration cannot open the CA key; the worker's can (the positive twin).
    refused = signing.manage_as_web("ca", "status", "--check-key")
    assert refused.returncode != 0
    assert "key reachable: NO (PKCS11_MODULE is not set" in refused.stdout
    assert pin not in refused.stdout + refused.stderr
    allowed = signing.manage_as_worker("ca", "status", "--check-key")
    assert allowed.returncode == 0, allowed.stderr
    assert "key reachable: yes" in allowed.stdout and "backend: pkcs11" in allowed.stdout
    assert pin not in allowed.stdout + allowed.stderr
    assert pin not in signing.worker.log_text()


def batch(prefix: str) -> tuple[list[str], dict[str, object], dict[str, str]]:
    uids = [f"{prefix}{i:02d}" for i in range(BATCH)]
    keys = {uid: make_key() for uid in uids}
    return uids, keys, {uid: make_csr(uid, keys[uid]) for uid in uids}


def test_fifty_users_concurrently(signing):
    if signing.worker.process is None:
        signing.worker.start()
    uids, keys, csrs = batch("con")
    signing.create_users(uids)
    with ThreadPoolExecutor(BATCH) as pool:
        responses = {uid: pool.submit(post_csr, signing, uid, csrs[uid]) for uid in uids}
        responses = {uid: future.result() for uid, future in responses.items()}
    serials = {check_issued(signing, uid, keys[uid], responses[uid]) for uid in uids}
    assert len(serials) == BATCH
    orders = orders_of(signing, uids)
    assert len(orders) == BATCH and {status for _, status, _ in orders} == {"issued"}
    assert len(certificates_of(signing, uids)) == BATCH


def test_kill_9_mid_batch_then_restart_issues_every_order_exactly_once(signing):
    if signing.worker.process is None:
        signing.worker.start()
    uids, keys, csrs = batch("kil")
    signing.create_users(uids)
    with ThreadPoolExecutor(BATCH) as pool:
        futures = {uid: pool.submit(post_csr, signing, uid, csrs[uid]) for uid in uids}
        deadline = time.monotonic() + 30
        issued_at_kill = 0
        while time.monotonic() < deadline:
            issued_at_kill = sum(1 for _, s, _ in orders_of(signing, uids) if s == "issued")
            if issued_at_kill >= 1:
                break
            time.sleep(0.002)
        signing.worker.kill9()
        first = {uid: future.result() for uid, future in futures.items()}
    issued_at_kill = sum(1 for _, s, _ in orders_of(signing, uids) if s == "issued")
    assert 1 <= issued_at_kill < BATCH, "the kill must land in the middle of the batch"
    unanswered = [uid for uid in uids if first[uid].status_code == 503]
    assert unanswered, "some requests must have been left waiting by the kill"
    assert all(first[uid].status_code in (200, 503) for uid in uids)

    signing.worker.start()
    assert signing.worker.starts >= 2
    # Clients repeat the same CSR after a 503; the restarted worker has re-queued the orders.
    with ThreadPoolExecutor(len(unanswered)) as pool:
        pending = {uid: pool.submit(post_csr, signing, uid, csrs[uid]) for uid in unanswered}
        second = {uid: future.result() for uid, future in pending.items()}
    final = {uid: second.get(uid, first[uid]) for uid in uids}
    serials = {check_issued(signing, uid, keys[uid], final[uid]) for uid in uids}
    assert len(serials) == BATCH

    orders = orders_of(signing, uids)
    certificates = certificates_of(signing, uids)
    assert len(orders) == BATCH  # none lost, no second order for a repeated CSR
    assert {status for _, status, _ in orders} == {"issued"}
    assert len(certificates) == BATCH  # none signed and stored twice
    assert sorted(c[1] for c in certificates) == sorted(uids)
    assert {o[2] for o in orders} == {c[0] for c in certificates}  # each order -> its one cert


def test_worker_survives_sigterm_like_a_service(signing):
    """Positive twin of the kill: a polite stop and start keeps issuing."""
    if signing.worker.process is None:
        signing.worker.start()
    signing.worker.process.send_signal(signal.SIGTERM)
    signing.worker.process.wait(timeout=30)
    signing.worker.process = None
    signing.worker.start()
    signing.create_users(["after"])
    key = make_key()
    check_issued(signing, "after", key, post_csr(signing, "after", make_csr("after", key)))
    assert os.environ.get("PKCS11_PIN_FILE") is None  # the test process never configured one
