"""Admin revocation, the revoked-serials endpoint, re-key approval in admin, `ca` commands."""

import re

import pytest
from django.core.management import CommandError, call_command

from server.certificates.models import Certificate, CertificateRevocation, RekeyRequest
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


def test_admin_revokes_and_the_serial_is_published(admin_client, alice, inline_ca):
    issue(admin_client, alice)
    certificate = Certificate.objects.get(key_owner="alice")
    assert admin_client.get(REVOKED, headers=alice).json()["ocs"]["data"] == {"revoked": []}
    add = "/admin/certificates/certificaterevocation/add/"
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
    listed = admin_client.get(REVOKED, headers=alice).json()["ocs"]["data"]["revoked"]
    assert [entry["serial"] for entry in listed] == [certificate.serial]
    # no longer served as alice's key; she may get a new certificate
    assert admin_client.get(f"{API}/public-key?format=json", headers=alice).status_code == 404
    issue(admin_client, alice)


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
