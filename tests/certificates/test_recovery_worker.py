"""The recovery certificate through the real path: web → Redis → signing worker → SoftHSM."""

from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding

from client.cli import main
from tests.certificates.workers import signing_stack
from tests.e2ee.helpers import API, E2EE_HEADERS


@pytest.mark.e2e
@pytest.mark.redis
@pytest.mark.softhsm
@pytest.mark.worker
def test_recovery_certificate_is_signed_by_the_hsm_worker(softhsm, tmp_path, monkeypatch):
    monkeypatch.setenv("E2EE_CONFIG_DIR", str(tmp_path / "admin-config"))
    created = CliRunner().invoke(
        main, ["--json", "recovery", "create", "--out", str(tmp_path / "rk")]
    )
    assert created.exit_code == 0, created.output
    csr = str(tmp_path / "rk" / "recovery.csr.pem")
    with signing_stack(softhsm, timeout=2.0) as signing:
        # without a worker: a clear failure, nothing enabled
        refused = signing.manage_as_web("recovery", "enable", "--csr", csr, "--actor", "tests")
        assert refused.returncode != 0 and "No signing worker answered" in refused.stderr
        signing.worker.start()
        done = signing.manage_as_web("recovery", "enable", "--csr", csr, "--actor", "tests")
        assert done.returncode == 0, done.stderr
        password = signing.create_users(["bob"])["bob"]
        with httpx.Client(
            base_url=signing.stack.base_url, auth=("bob", password), headers=E2EE_HEADERS
        ) as client:
            offer = client.get("/ocs/v2.php/cloud/capabilities?format=json").json()["ocs"]["data"][
                "capabilities"
            ]["e2ee-stack"]["recovery"]
            server_key = serialization.load_pem_public_key(
                client.get(f"{API}/server-key?format=json")
                .json()["ocs"]["data"]["public-key"]
                .encode()
            )
        assert offer["enabled"] is True
        assert offer["id"] == json.loads(created.stdout)["id"]
        cert = x509.load_pem_x509_certificate(offer["certificate"].encode())
        server_key.verify(
            cert.signature,
            cert.tbs_certificate_bytes,
            padding.PKCS1v15(),
            cert.signature_hash_algorithm,
        )  # signed by the key in the token
