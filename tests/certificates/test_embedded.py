"""The embedded default (`manage.py serve`: SQLite, filesystem broker, software CA): the web
process queues the CSR and the signing worker that `serve` started signs it."""

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from tests.core.test_serve import start, stop, wait_ready
from tests.e2ee.helpers import API, E2EE_HEADERS, make_csr, make_key
from tests.live import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.worker]


def test_serve_issues_through_its_own_signing_worker(tmp_path):
    port = free_port()
    process = start(tmp_path, port, E2EE_ADMIN_PASSWORD="admin password 1", E2EE_SIGNING="worker")
    try:
        wait_ready(port, process)
        base = f"http://127.0.0.1:{port}"
        pem = httpx.get(f"{base}{API}/server-key?format=json").json()["ocs"]["data"]["public-key"]
        server_key = serialization.load_pem_public_key(pem.encode())
        key = make_key()
        response = httpx.post(
            f"{base}{API}/public-key?format=json",
            headers=E2EE_HEADERS,
            auth=("admin", "admin password 1"),
            data={"csr": make_csr("admin", key)},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        cert = x509.load_pem_x509_certificate(response.json()["ocs"]["data"]["public-key"].encode())
        server_key.verify(
            cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256()
        )
        assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    finally:
        stop(process)
    assert (tmp_path / "keys" / "ca.key.pem").stat().st_mode & 0o777 == 0o600
