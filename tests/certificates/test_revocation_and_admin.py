"""Admin revocation, the revoked-serials endpoint, re-key approval in admin, `ca` commands."""

import base64
import json
import re

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from django.core.management import CommandError, call_command

from server.certificates import services
from server.certificates.issuance import signer_checked
from server.certificates.models import (
    Certificate,
    CertificateAuthority,
    CertificateRevocation,
    RekeyRequest,
    RevocationList,
)
from server.certificates.revocation import revocation_list_publish
from server.certificates.signing import signer_reset
from tests.conftest import basic_auth
from tests.e2ee.helpers import API, headers, make_csr

REVOKED = "/ocs/v2.php/apps/e2ee_stack/api/v1/revoked?format=json"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def inline_ca(settings, tmp_path):
    settings.E2EE_CA_KEY_FILE = str(tmp_path / "ca.key.pem")
    settings.E2EE_SIGNER = "software"
    settings.E2EE_SIGNING = "inline"
    signer_reset()
    yield
    signer_reset()


@pytest.fixture
def alice(make_user, app_password):
    return headers("alice", app_password(make_user("alice", PASSWORD)))


@pytest.fixture
def admin_client(wsgi_client, django_user_model):
    django_user_model.objects.create_superuser("root", "", PASSWORD)
    page = wsgi_client.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    done = wsgi_client.post(
        "/admin/login/?next=/admin/",
        data={"csrfmiddlewaretoken": token, "username": "root", "password": PASSWORD},
    )
    assert done.status_code == 302
    return wsgi_client


def csrf(client, path):
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(path).text).group(1)


def issue(client, who, cn="alice"):
    response = client.post(f"{API}/public-key?format=json", headers=who, data={"csr": make_csr(cn)})
    assert response.status_code == 200, response.text
    return response


def signed_edition(data):
    """The signed edition the endpoint serves, checked with the CA's public key."""
    ca = serialization.load_pem_public_key(
        CertificateAuthority.objects.get().public_key_pem.encode()
    )
    ca.verify(
        base64.b64decode(data["signature"]),
        data["list"].encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    return json.loads(data["list"])


def test_admin_revokes_and_the_serial_is_published(
    admin_client, alice, inline_ca, django_capture_on_commit_callbacks
):
    issue(admin_client, alice)
    certificate = Certificate.objects.get(key_owner="alice")
    first = admin_client.get(REVOKED, headers=alice).json()["ocs"]["data"]
    assert first["revoked"] == []
    edition = signed_edition(first)
    assert edition["format"] == "e2ee-stack revocation list v1"
    assert edition["revoked"] == [] and edition["sequence"] == 1
    add = "/admin/certificates/certificaterevocation/add/"
    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(
            add,
            data={
                "csrfmiddlewaretoken": csrf(admin_client, add),
                "certificate": certificate.pk,
                "reason": "key compromised",
            },
        )
    assert done.status_code == 302, done.text
    revocation = CertificateRevocation.objects.get()
    assert revocation.revoked_by.username == "root" and revocation.reason == "key compromised"
    data = admin_client.get(REVOKED, headers=alice).json()["ocs"]["data"]
    assert [entry["serial"] for entry in data["revoked"]] == [certificate.serial]
    edition = signed_edition(data)  # signed by the CA right after the commit
    assert edition["sequence"] == 2
    assert [entry["serial"] for entry in edition["revoked"]] == [certificate.serial]
    # no longer served as alice's key; a new certificate only with an approved re-key request
    assert admin_client.get(f"{API}/public-key?format=json", headers=alice).status_code == 404
    refused = admin_client.post(
        f"{API}/public-key?format=json", headers=alice, data={"csr": make_csr("alice")}
    )
    assert refused.status_code == 409 and "re-key" in refused.text
    request = services.rekey_request_create(
        key_owner="alice", requested_by=revocation.revoked_by, reason="new laptop"
    )
    services.rekey_request_approve(request_id=request.pk, admin=revocation.revoked_by)
    issue(admin_client, alice)


def test_revocation_list_editions_only_grow_and_cannot_be_edited(admin_client, alice, inline_ca):
    issue(admin_client, alice)
    data = admin_client.get(REVOKED, headers=alice).json()["ocs"]["data"]
    assert signed_edition(data)["sequence"] == 1
    # nothing changed: no new edition
    assert revocation_list_publish(signer=signer_checked()) is None
    assert RevocationList.objects.count() == 1
    # a server dropping an entry (or editing anything) breaks the CA signature
    certificate = Certificate.objects.get(key_owner="alice")
    CertificateRevocation.objects.create(
        certificate=certificate, revoked_by=certificate.user, reason="test"
    )
    published = revocation_list_publish(signer=signer_checked())
    assert published is not None and published.sequence == 2
    data = admin_client.get(REVOKED, headers=alice).json()["ocs"]["data"]
    edited = json.loads(data["list"])
    edited["revoked"] = []
    forged = {**data, "list": json.dumps(edited, sort_keys=True, separators=(",", ":"))}
    with pytest.raises(InvalidSignature):
        signed_edition(forged)
    assert signed_edition(data)["revoked"][0]["serial"] == certificate.serial


def test_revoked_list_needs_an_account(wsgi_client, alice, inline_ca):
    outsider = {"OCS-APIRequest": "true", **basic_auth("nobody", "wrong")}
    assert wsgi_client.get(REVOKED, headers=outsider).status_code == 401
    assert wsgi_client.get(REVOKED, headers={"OCS-APIRequest": "true"}).status_code == 401
    assert wsgi_client.get(REVOKED, headers=alice).status_code == 200


def test_rekey_approved_in_admin_allows_one_replacement(admin_client, alice, inline_ca):
    issue(admin_client, alice)
    second = admin_client.post(
        f"{API}/public-key?format=json", headers=alice, data={"csr": make_csr("alice")}
    )
    assert second.status_code == 409
    add = "/admin/certificates/rekeyrequest/add/"
    admin_client.post(
        add,
        data={
            "csrfmiddlewaretoken": csrf(admin_client, add),
            "key_owner": "alice",
            "reason": "lost device",
        },
    )
    request = RekeyRequest.objects.get()
    assert request.requested_by.username == "root" and request.approved_at is None
    changelist = "/admin/certificates/rekeyrequest/"
    admin_client.post(
        changelist,
        data={
            "csrfmiddlewaretoken": csrf(admin_client, changelist),
            "action": "approve",
            "_selected_action": [request.pk],
        },
    )
    request.refresh_from_db()
    assert request.approved_by.username == "root" and request.approved_at is not None
    issue(admin_client, alice)  # the replacement
    request.refresh_from_db()
    assert request.consumed_by is not None
    third = admin_client.post(
        f"{API}/public-key?format=json", headers=alice, data={"csr": make_csr("alice")}
    )
    assert third.status_code == 409


def test_ca_init_software_then_status_and_no_overwrite(db, settings, tmp_path, capsys):
    settings.E2EE_CA_KEY_FILE = str(tmp_path / "ca.pem")
    with pytest.raises(CommandError, match="no CA yet"):
        call_command("ca", "status")
    call_command("ca", "init", "--backend", "software")
    assert (tmp_path / "ca.pem").stat().st_mode & 0o777 == 0o600
    with pytest.raises(CommandError, match="refusing to replace"):
        call_command("ca", "init", "--backend", "software")
    capsys.readouterr()
    call_command("ca", "status", "--check-key")
    out = capsys.readouterr().out
    assert "backend: software" in out and "issued: 0" in out and "key reachable: yes" in out
    assert re.search(r"fingerprint: [0-9a-f]{64}", out)


@pytest.mark.softhsm
def test_ca_init_pkcs11_with_options(db, softhsm, settings, capsys):
    settings.E2EE_SIGNER = "pkcs11"
    call_command(
        "ca",
        "init",
        "--backend",
        "pkcs11",
        "--module",
        softhsm.module,
        "--token-label",
        softhsm.token_label,
        "--pin-file",
        str(softhsm.pin_file),
        "--key-label",
        "cmd-ca",
    )
    out = capsys.readouterr().out
    assert "created the pkcs11 CA" in out and softhsm.pin not in out
    call_command("ca", "status", "--check-key")
    assert "key reachable: yes" in capsys.readouterr().out
    signer_reset()
