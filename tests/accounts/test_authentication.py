import base64
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from server.accounts.models import AppPassword
from tests.conftest import basic_auth

PASSWORD = "correct horse battery staple"
USER_URL = "/ocs/v2.php/cloud/user?format=json"


def test_account_password_authenticates(wsgi_client, make_user):
    make_user("alice", PASSWORD)
    assert wsgi_client.get(USER_URL, headers=basic_auth("alice", PASSWORD)).status_code == 200


def test_wrong_account_password_is_401(wsgi_client, make_user):
    make_user("alice", PASSWORD)
    response = wsgi_client.get(USER_URL, headers=basic_auth("alice", PASSWORD + "x"))
    assert response.status_code == 401
    assert "www-authenticate" in response.headers


def test_unknown_user_is_401(wsgi_client, db):
    assert wsgi_client.get(USER_URL, headers=basic_auth("nobody", PASSWORD)).status_code == 401


def test_malformed_basic_header_is_401(wsgi_client, db):
    response = wsgi_client.get(USER_URL, headers={"Authorization": "Basic !!!not-base64"})
    assert response.status_code == 401
    no_colon = base64.b64encode(b"alice").decode()
    assert (
        wsgi_client.get(USER_URL, headers={"Authorization": f"Basic {no_colon}"}).status_code == 401
    )


def test_app_password_authenticates_and_is_stored_only_as_digest(
    wsgi_client, make_user, app_password
):
    user = make_user("alice", PASSWORD)
    clear = app_password(user)
    assert len(clear) == 29 and clear.count("-") == 4
    record = AppPassword.objects.get(user=user)
    assert clear not in (record.digest, record.hint, str(record), repr(record))
    assert record.last_used_at is None
    assert wsgi_client.get(USER_URL, headers=basic_auth("alice", clear)).status_code == 200
    record.refresh_from_db()
    assert record.last_used_at is not None


def test_app_password_of_another_user_is_refused(wsgi_client, make_user, app_password):
    alice = make_user("alice", PASSWORD)
    make_user("bob", PASSWORD + "b")
    clear = app_password(alice)
    assert wsgi_client.get(USER_URL, headers=basic_auth("bob", clear)).status_code == 401
    assert wsgi_client.get(USER_URL, headers=basic_auth("alice", clear)).status_code == 200


def test_inactive_user_is_refused_even_with_app_password(wsgi_client, make_user, app_password):
    user = make_user("alice", PASSWORD)
    clear = app_password(user)
    user.is_active = False
    user.save()
    assert wsgi_client.get(USER_URL, headers=basic_auth("alice", clear)).status_code == 401


def test_changed_account_password_stops_working_at_once(wsgi_client, make_user):
    user = make_user("alice", PASSWORD)
    assert wsgi_client.get(USER_URL, headers=basic_auth("alice", PASSWORD)).status_code == 200
    user.set_password("a different long password")
    user.save()
    # The short success cache is bound to the stored hash, so the old password fails right away.
    assert wsgi_client.get(USER_URL, headers=basic_auth("alice", PASSWORD)).status_code == 401


def test_apppassword_command_create_list_revoke(wsgi_client, make_user):
    make_user("alice", PASSWORD)
    out, err = io.StringIO(), io.StringIO()
    call_command("apppassword", "create", "alice", "--name", "laptop", stdout=out, stderr=err)
    clear = out.getvalue().strip()
    assert wsgi_client.get(USER_URL, headers=basic_auth("alice", clear)).status_code == 200

    listing = io.StringIO()
    call_command("apppassword", "list", "alice", stdout=listing)
    assert "laptop" in listing.getvalue() and clear not in listing.getvalue()

    record = AppPassword.objects.get(name="laptop")
    call_command("apppassword", "revoke", "alice", str(record.pk), stderr=io.StringIO())
    assert wsgi_client.get(USER_URL, headers=basic_auth("alice", clear)).status_code == 401


def test_apppassword_command_unknown_user(db):
    with pytest.raises(CommandError, match="no user"):
        call_command("apppassword", "create", "ghost")


def test_useradd_command(wsgi_client, db, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("a long enough password\n")
    call_command("useradd", "carol", "--password-file", str(secret), stderr=io.StringIO())
    assert (
        wsgi_client.get(USER_URL, headers=basic_auth("carol", "a long enough password")).status_code
        == 200
    )
    out = io.StringIO()
    call_command("useradd", "dave", stdout=out, stderr=io.StringIO())
    assert (
        wsgi_client.get(USER_URL, headers=basic_auth("dave", out.getvalue().strip())).status_code
        == 200
    )
    with pytest.raises(CommandError, match="already exists"):
        call_command("useradd", "dave", stderr=io.StringIO())
    with pytest.raises(CommandError, match="cannot contain"):
        call_command("useradd", "s:token", stderr=io.StringIO())
