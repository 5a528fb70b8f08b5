import datetime
import json
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from tests.e2ee.helpers import (
    API,
    headers,
    make_csr,
    make_ec_csr,
    make_key,
    wrapped_private_key,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice(make_user, app_password):
    user = make_user("alice", PASSWORD)
    return headers("alice", app_password(user))


@pytest.fixture
def alice_account_password(alice):
    return headers("alice", PASSWORD)


@pytest.fixture
def bob(make_user, app_password):
    return headers("bob", app_password(make_user("bob", PASSWORD + "b")))


@pytest.fixture
def ca_key_file(settings, tmp_path):
    """A software CA signing inline (explicit test mode): these tests are about the API. The
    worker path (queue hsm, SoftHSM, a real Celery worker) is tested in tests/certificates."""
    from server.certificates.signing import signer_reset

    settings.E2EE_CA_KEY_FILE = str(tmp_path / "keys" / "ca.key.pem")
    settings.E2EE_SIGNER = "software"
    settings.E2EE_SIGNING = "inline"
    signer_reset()
    yield Path(settings.E2EE_CA_KEY_FILE)
    signer_reset()


def ocs_data(response):
    return response.json()["ocs"]["data"]


def server_key(client):
    pem = ocs_data(client.get(f"{API}/server-key?format=json"))["public-key"]
    return serialization.load_pem_public_key(pem.encode())


def issue(client, who, cn="alice", **kwargs):
    return client.post(
        f"{API}/public-key?format=json", headers=who, data={"csr": make_csr(cn, **kwargs)}
    )


# server key


def test_server_key_is_public_bare_spki_and_created_0600(wsgi_client, ca_key_file):
    response = wsgi_client.get(f"{API}/server-key?format=json")
    assert response.status_code == 200
    pem = ocs_data(response)["public-key"]
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert stat.S_IMODE(ca_key_file.stat().st_mode) == 0o600
    assert ocs_data(wsgi_client.get(f"{API}/server-key?format=json"))["public-key"] == pem


# certificate issuance


def test_issued_certificate_profile(wsgi_client, alice, ca_key_file):
    key = make_key()
    response = wsgi_client.post(
        f"{API}/public-key?format=json", headers=alice, data={"csr": make_csr("alice", key)}
    )
    assert response.status_code == 200, response.text
    cert = x509.load_pem_x509_certificate(ocs_data(response)["public-key"].encode())
    server_key(wsgi_client).verify(
        cert.signature,
        cert.tbs_certificate_bytes,
        padding.PKCS1v15(),
        cert.signature_hash_algorithm,
    )
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert cert.issuer == cert.subject
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "alice"
    assert cert.serial_number > 0
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=7300) <= lifetime <= datetime.timedelta(days=7300, minutes=10)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()


def test_serials_are_random(wsgi_client, make_user, app_password, ca_key_file):
    serials = set()
    for uid in ("u1", "u2", "u3"):
        who = headers(uid, app_password(make_user(uid, PASSWORD)))
        pem = ocs_data(issue(wsgi_client, who, uid))["public-key"]
        serials.add(x509.load_pem_x509_certificate(pem.encode()).serial_number)
    assert len(serials) == 3


def sha1_csr(tmp_path, cn: str) -> str:
    """cryptography refuses to make SHA-1 CSRs; early desktop builds did, so use openssl."""
    out = tmp_path / "sha1.csr"
    subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(tmp_path / "k.pem"),
            "-subj",
            f"/CN={cn}",
            "-sha1",
            "-out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out.read_text()


def test_sha1_signed_csr_of_early_desktop_is_accepted(wsgi_client, alice, ca_key_file, tmp_path):
    response = wsgi_client.post(
        f"{API}/public-key?format=json", headers=alice, data={"csr": sha1_csr(tmp_path, "alice")}
    )
    assert response.status_code == 200
    cert = x509.load_pem_x509_certificate(ocs_data(response)["public-key"].encode())
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)  # we always sign SHA-256


def test_sha1_csr_with_broken_signature_is_400(wsgi_client, alice, ca_key_file, tmp_path):
    der = bytearray(
        x509.load_pem_x509_csr(sha1_csr(tmp_path, "alice").encode()).public_bytes(
            serialization.Encoding.DER
        )
    )
    der[-5] ^= 0x01
    broken = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    response = wsgi_client.post(
        f"{API}/public-key?format=json", headers=alice, data={"csr": broken}
    )
    assert response.status_code == 400


def test_second_certificate_is_409(wsgi_client, alice, ca_key_file):
    assert issue(wsgi_client, alice).status_code == 200
    response = issue(wsgi_client, alice)
    assert response.status_code == 409
    assert ocs_data(response)["message"]


def test_csr_for_another_user_is_403(wsgi_client, alice, ca_key_file):
    assert issue(wsgi_client, alice, "bob").status_code == 403


@pytest.mark.parametrize(
    "csr, status",
    [
        ("not a csr", 400),
        ("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", 400),
    ],
)
def test_unparsable_csr_is_400(wsgi_client, alice, ca_key_file, csr, status):
    response = wsgi_client.post(f"{API}/public-key?format=json", headers=alice, data={"csr": csr})
    assert response.status_code == status


def test_csr_with_broken_self_signature_is_400(wsgi_client, alice, ca_key_file):
    der = bytearray(
        x509.load_pem_x509_csr(make_csr("alice").encode()).public_bytes(serialization.Encoding.DER)
    )
    der[-5] ^= 0x01  # inside the signature bits
    broken = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    response = wsgi_client.post(
        f"{API}/public-key?format=json", headers=alice, data={"csr": broken}
    )
    assert response.status_code == 400
    assert "signature" in ocs_data(response)["message"]


def test_small_rsa_and_non_rsa_keys_are_400(wsgi_client, alice, ca_key_file):
    assert issue(wsgi_client, alice, key=make_key(1024)).status_code == 400
    response = wsgi_client.post(
        f"{API}/public-key?format=json", headers=alice, data={"csr": make_ec_csr("alice")}
    )
    assert response.status_code == 400


def test_missing_csr_is_400(wsgi_client, alice, ca_key_file):
    assert wsgi_client.post(f"{API}/public-key?format=json", headers=alice).status_code == 400


def test_json_body_is_accepted(wsgi_client, alice, ca_key_file):
    response = wsgi_client.post(
        f"{API}/public-key?format=json",
        headers={**alice, "Content-Type": "application/json"},
        content=json.dumps({"csr": make_csr("alice")}),
    )
    assert response.status_code == 200


# reading certificates


def test_get_public_keys_of_self_and_others(wsgi_client, alice, bob, ca_key_file):
    issue(wsgi_client, alice, "alice")
    issue(wsgi_client, bob, "bob")
    own = ocs_data(wsgi_client.get(f"{API}/public-key?format=json", headers=alice))["public-keys"]
    assert list(own) == ["alice"]
    both = ocs_data(
        wsgi_client.get(
            f"{API}/public-key?format=json",
            headers=alice,
            params={"users": json.dumps(["bob"]), "format": "json"},
        )
    )["public-keys"]
    assert set(both) == {"alice", "bob"}


def test_get_public_key_of_user_without_key_is_404(wsgi_client, alice, ca_key_file):
    issue(wsgi_client, alice)
    response = wsgi_client.get(
        f"{API}/public-key?format=json",
        headers=alice,
        params={"users": json.dumps(["nobody"]), "format": "json"},
    )
    assert response.status_code == 404


def test_get_public_key_bad_json_is_400(wsgi_client, alice, ca_key_file):
    for bad in ("[not json", json.dumps({"a": 1}), json.dumps([1])):
        response = wsgi_client.get(
            f"{API}/public-key?format=json", headers=alice, params={"users": bad, "format": "json"}
        )
        assert response.status_code == 400


# externally issued certificates


def self_signed(cn: str) -> str:
    key = make_key()
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_put_external_certificate(wsgi_client, alice, ca_key_file):
    pem = self_signed("alice")
    response = wsgi_client.put(
        f"{API}/public-key?format=json", headers=alice, data={"publicKey": pem}
    )
    assert response.status_code == 200
    assert ocs_data(response)["public-key"] == pem
    again = wsgi_client.put(f"{API}/public-key?format=json", headers=alice, data={"publicKey": pem})
    assert again.status_code == 409


@pytest.mark.parametrize("pem", [self_signed("bob"), "-----BEGIN PUBLIC KEY-----\nAAAA\n", "x"])
def test_put_bad_certificate_is_400(wsgi_client, alice, ca_key_file, pem):
    response = wsgi_client.put(
        f"{API}/public-key?format=json", headers=alice, data={"publicKey": pem}
    )
    assert response.status_code == 400


# deleting certificates


def test_delete_public_key_needs_account_password(
    wsgi_client, alice, alice_account_password, ca_key_file
):
    issue(wsgi_client, alice)
    assert wsgi_client.delete(f"{API}/public-key?format=json", headers=alice).status_code == 403
    response = wsgi_client.delete(f"{API}/public-key?format=json", headers=alice_account_password)
    assert response.status_code == 200 and ocs_data(response) == []
    assert wsgi_client.get(f"{API}/public-key?format=json", headers=alice).status_code == 404
    assert (
        wsgi_client.delete(
            f"{API}/public-key?format=json", headers=alice_account_password
        ).status_code
        == 404
    )
    # a new key after the delete is a key change like any other: only with an approved re-key
    refused = issue(wsgi_client, alice)
    assert refused.status_code == 409 and "had a certificate before" in refused.text


# wrapped private keys


def test_private_key_round_trip_and_no_replacement(wsgi_client, alice, ca_key_file):
    wrapped = wrapped_private_key()
    response = wsgi_client.post(
        f"{API}/private-key?format=json", headers=alice, data={"privateKey": wrapped}
    )
    assert response.status_code == 200 and ocs_data(response)["private-key"] == wrapped
    assert (
        ocs_data(wsgi_client.get(f"{API}/private-key?format=json", headers=alice))["private-key"]
        == wrapped
    )
    again = wsgi_client.post(
        f"{API}/private-key?format=json", headers=alice, data={"privateKey": wrapped_private_key()}
    )
    assert again.status_code == 409
    assert (
        ocs_data(wsgi_client.get(f"{API}/private-key?format=json", headers=alice))["private-key"]
        == wrapped
    )


@pytest.mark.parametrize(
    "wrapped",
    [
        "abc",
        "YWJj|YWJj",
        wrapped_private_key(iv_len=16),
        wrapped_private_key(salt_len=32),
        "!!!|" + wrapped_private_key().split("|", 1)[1],
        "|" + wrapped_private_key().split("|", 1)[1],
    ],
)
def test_private_key_bad_format_is_400(wsgi_client, alice, wrapped):
    response = wsgi_client.post(
        f"{API}/private-key?format=json", headers=alice, data={"privateKey": wrapped}
    )
    assert response.status_code == 400
    assert ocs_data(response)["message"] == "Invalid private key format"
    assert wsgi_client.get(f"{API}/private-key?format=json", headers=alice).status_code == 404


def test_private_key_is_only_the_callers(wsgi_client, alice, bob):
    wsgi_client.post(
        f"{API}/private-key?format=json", headers=alice, data={"privateKey": wrapped_private_key()}
    )
    assert wsgi_client.get(f"{API}/private-key?format=json", headers=bob).status_code == 404


def test_delete_private_key_needs_account_password(wsgi_client, alice, alice_account_password):
    wsgi_client.post(
        f"{API}/private-key?format=json", headers=alice, data={"privateKey": wrapped_private_key()}
    )
    assert wsgi_client.delete(f"{API}/private-key?format=json", headers=alice).status_code == 403
    assert (
        wsgi_client.delete(
            f"{API}/private-key?format=json", headers=alice_account_password
        ).status_code
        == 200
    )
    assert wsgi_client.get(f"{API}/private-key?format=json", headers=alice).status_code == 404


# capabilities


def test_keys_exist_capability(wsgi_client, alice, ca_key_file):
    def keys_exist():
        caps = ocs_data(
            wsgi_client.get("/ocs/v2.php/cloud/capabilities?format=json", headers=alice)
        )
        section = caps["capabilities"]["end-to-end-encryption"]
        assert section["enabled"] is True and section["api-version"] == "2.1"
        return section["keys-exist"]

    assert keys_exist() is False
    issue(wsgi_client, alice)
    assert keys_exist() is False
    wsgi_client.post(
        f"{API}/private-key?format=json", headers=alice, data={"privateKey": wrapped_private_key()}
    )
    assert keys_exist() is True
