"""What the API, the admin and failed logins write to the audit log, and what they never write."""

import json

import pytest
from django.test import Client

from server.audit.models import AuditEvent
from server.audit.services import audit_verify
from tests.conftest import basic_auth
from tests.e2ee.helpers import API, headers, wrapped_private_key

PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice(make_user, app_password):
    clear = app_password(make_user("alice", PASSWORD))
    return headers("alice", clear), clear


def events(action=None):
    qs = AuditEvent.objects.order_by("seq")
    return list(qs.filter(action=action) if action else qs)


def test_key_events_are_recorded_without_secrets(wsgi_client, alice):
    who, clear = alice
    wrapped = wrapped_private_key()
    store = f"{API}/private-key?format=json"
    assert wsgi_client.post(store, headers=who, data={"privateKey": wrapped}).status_code == 200
    assert wsgi_client.get(store, headers=who).status_code == 200
    assert (
        wsgi_client.post(store, headers=who, data={"privateKey": wrapped_private_key()}).status_code
        == 409
    )
    assert wsgi_client.delete(store, headers=headers("alice", PASSWORD)).status_code == 200

    stored = events("private_key.store")
    assert [e.outcome for e in stored] == ["success", "failure"]
    assert stored[0].actor == "alice" and stored[0].target == "identity:alice"
    assert stored[0].details["status"] == 200 and stored[1].details["status"] == 409
    assert [e.action for e in events()] == [
        "private_key.store",
        "private_key.read",
        "private_key.store",
        "private_key.delete",
    ]
    dump = json.dumps([e.__dict__ for e in events()], default=str)
    for secret in (wrapped, wrapped.split("|")[0], wrapped.split("|")[2], clear, PASSWORD):
        assert secret not in dump
    assert audit_verify() == (len(events()), None)


def test_folder_lock_and_metadata_events_name_ids_only(wsgi_client, alice):
    who, _ = alice
    response = wsgi_client.request(
        "MKCOL", "/remote.php/dav/files/alice/Very%20Secret%20Plans", headers=who
    )
    folder = int(response.headers["OC-FileId"][:8])
    wsgi_client.put(f"{API}/encrypted/{folder}?format=json", headers=who)
    token = wsgi_client.post(
        f"{API}/lock/{folder}?format=json", headers={**who, "X-NC-E2EE-COUNTER": "1"}
    ).json()["ocs"]["data"]["e2e-token"]
    document = '{"metadata":{"ciphertext":"SECRETCIPHERTEXT"},"version":"2.0"}'
    wsgi_client.post(
        f"{API}/meta-data/{folder}?format=json",
        data={"metaData": document},
        headers={**who, "e2e-token": token, "X-NC-E2EE-SIGNATURE": "U0lH"},
    )
    wsgi_client.delete(
        f"{API}/lock/{folder}?format=json&abort=true", headers={**who, "e2e-token": token}
    )
    recorded = [(e.action, e.target, e.outcome) for e in events()]
    assert recorded == [
        ("folder.encrypt", f"folder:{folder}", "success"),
        ("lock.acquire", f"folder:{folder}", "success"),
        ("metadata.create", f"folder:{folder}", "success"),
        ("lock.release", f"folder:{folder}", "success"),
    ]
    assert events("lock.release")[0].details["abort"] is True
    dump = json.dumps([e.__dict__ for e in events()], default=str)
    for secret in ("Secret Plans", "SECRETCIPHERTEXT", token, "U0lH"):
        assert secret not in dump


def test_refused_calls_are_recorded_as_denied(wsgi_client, alice):
    who, _ = alice
    browser = {k: v for k, v in who.items() if k != "X-E2EE-SUPPORTED"}
    assert wsgi_client.get(f"{API}/private-key?format=json", headers=browser).status_code == 403
    assert events("private_key.read")[0].outcome == "denied"


def test_failed_logins_are_recorded_and_unknown_ids_are_not(wsgi_client, alice):
    wsgi_client.get("/ocs/v2.php/cloud/user?format=json", headers=basic_auth("alice", "wrong"))
    wsgi_client.get("/ocs/v2.php/cloud/user?format=json", headers=basic_auth("MyPassw0rd!", "x"))
    failed = events("auth.login_failed")
    assert [e.target for e in failed] == ["user:alice", "user:(unknown)"]
    assert all(e.outcome == "denied" and e.actor == "anonymous" for e in failed)
    assert "MyPassw0rd!" not in json.dumps([e.__dict__ for e in events()], default=str)
    ok = wsgi_client.get(
        "/ocs/v2.php/cloud/user?format=json", headers=basic_auth("alice", PASSWORD)
    )
    assert ok.status_code == 200 and len(events("auth.login_failed")) == 2


def test_admin_changes_and_logins_are_recorded(db, django_user_model, make_user):
    django_user_model.objects.create_superuser("root", "", "admin password 123")
    client = Client()
    assert not client.login(username="root", password="wrong")
    assert client.login(username="root", password="admin password 123")
    bob = make_user("bob")
    response = client.post(
        f"/admin/accounts/user/{bob.pk}/change/",
        {
            "username": "bob",
            "first_name": "Bob",
            "last_name": "",
            "email": "",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00",
            "app_passwords-TOTAL_FORMS": "0",
            "app_passwords-INITIAL_FORMS": "0",
            "app_passwords-MIN_NUM_FORMS": "0",
            "app_passwords-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    actions = [(e.action, e.actor, e.target) for e in events()]
    assert ("auth.login_failed", "anonymous", "user:root") in actions
    assert ("auth.login", "root", "user:root") in actions
    assert ("admin.change", "root", f"accounts.user:{bob.pk}") in actions


def test_admin_log_is_read_only(db, django_user_model, wsgi_client, alice):
    who, _ = alice
    wsgi_client.get(f"{API}/private-key?format=json", headers=who)
    django_user_model.objects.create_superuser("root", "", "admin password 123")
    client = Client()
    client.force_login(django_user_model.objects.get(username="root"))
    event = events()[0]
    assert client.get("/admin/audit/auditevent/").status_code == 200
    assert client.get(f"/admin/audit/auditevent/{event.pk}/change/").status_code == 200
    assert (
        client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    exported = client.post(
        "/admin/audit/auditevent/", {"action": "export_json_lines", "_selected_action": [event.pk]}
    )
    assert exported["Content-Type"] == "application/x-ndjson"
    assert json.loads(exported.content.splitlines()[0])["seq"] == event.seq


def test_share_events_name_ids_not_paths_or_tokens(wsgi_client, make_user, app_password):
    from tests.e2ee.test_folders_locks_metadata import mkcol
    from tests.sharing.conftest import SHARES, data, share

    owner = headers("alice", app_password(make_user("alice", PASSWORD)))
    make_user("bob", PASSWORD)
    mkcol(wsgi_client, owner, "Quarterly Numbers")
    share_id = data(share(wsgi_client, owner, "/Quarterly Numbers"))["id"]
    token = data(
        share(
            wsgi_client, owner, "/Quarterly Numbers", share_with=None, permissions=4, share_type=3
        )
    )["token"]
    assert wsgi_client.delete(f"{SHARES}/{share_id}?format=json", headers=owner).status_code == 200
    created = events("share.create")
    assert [e.details.get("share_with") for e in created] == ["bob", None]
    assert [e.outcome for e in created] == ["success", "success"]
    assert events("share.delete")[0].target == f"share:{share_id}"
    dump = json.dumps([e.__dict__ for e in events()], default=str)
    assert "Quarterly" not in dump and token not in dump


def test_failed_webdav_login_is_recorded(wsgi_client, alice):
    response = wsgi_client.request(
        "PROPFIND",
        "/remote.php/dav/files/alice/",
        headers={**basic_auth("alice", "wrong"), "Depth": "0"},
    )
    assert response.status_code == 401
    failed = events("auth.login_failed")
    assert [(e.target, e.details["channel"]) for e in failed] == [("user:alice", "webdav")]
    who, _ = alice
    assert (
        wsgi_client.request(
            "PROPFIND", "/remote.php/dav/files/alice/", headers={**who, "Depth": "0"}
        ).status_code
        == 207
    )
    assert len(events("auth.login_failed")) == 1
