"""The fault-injection endpoint in-process: admin-only, validated, audited; 404 outside
ephemeral mode. The faults themselves, against a live ephemeral stack: test_recovery.py."""

import pytest

from server.audit.models import AuditEvent
from server.testkit.faults import Fault, FaultStore, basic_user, fault_parse
from tests.conftest import basic_auth

FAULTS = "/ocs/v2.php/apps/e2ee_stack/api/v1/testkit/faults?format=json"
USERS = "/ocs/v2.php/apps/e2ee_stack/api/v1/testkit/users?format=json"
EXPIRE = "/ocs/v2.php/apps/e2ee_stack/api/v1/testkit/expire-lock?format=json"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def testkit_on(settings, tmp_path):
    settings.E2EE_TESTKIT = True
    settings.DATA_DIR = tmp_path


@pytest.fixture
def admin(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser(username="root", password=PASSWORD)


def test_admin_arms_lists_and_clears_faults(wsgi_client, testkit_on, admin):
    armed = wsgi_client.post(
        FAULTS, json={"fault": "lock-423", "count": 2}, headers=basic_auth("root", PASSWORD)
    )
    assert armed.status_code == 201, armed.text
    assert armed.json()["ocs"]["data"]["remaining"] == 2
    listed = wsgi_client.get(FAULTS, headers=basic_auth("root", PASSWORD))
    assert [f["fault"] for f in listed.json()["ocs"]["data"]["faults"]] == ["lock-423"]
    cleared = wsgi_client.delete(FAULTS, headers=basic_auth("root", PASSWORD))
    assert cleared.json()["ocs"]["data"] == {"cleared": 1}
    actions = list(AuditEvent.objects.order_by("seq").values_list("action", "actor", "target"))
    fault_id = armed.json()["ocs"]["data"]["id"]
    assert ("testkit.fault_arm", "root", f"fault:{fault_id}") in actions
    assert ("testkit.fault_clear", "root", "") in actions


def test_every_path_is_404_outside_ephemeral_mode_and_nothing_is_audited(
    wsgi_client, settings, admin
):
    settings.E2EE_TESTKIT = False
    for method, url in (("GET", FAULTS), ("POST", FAULTS), ("POST", USERS), ("POST", EXPIRE)):
        answer = wsgi_client.request(
            method, url, json={"fault": "delay", "seconds": 1}, headers=basic_auth("root", PASSWORD)
        )
        assert answer.status_code == 404, (method, url)
        anonymous = wsgi_client.request(method, url)
        assert anonymous.status_code == 404  # before authentication: no 401 either
    assert not AuditEvent.objects.filter(action__startswith="testkit.").exists()


def test_only_administrators(wsgi_client, testkit_on, admin, make_user):
    make_user("alice", PASSWORD)
    assert wsgi_client.get(FAULTS).status_code == 401
    refused = wsgi_client.post(
        FAULTS, json={"fault": "delay", "seconds": 1}, headers=basic_auth("alice", PASSWORD)
    )
    assert refused.status_code == 403
    assert "administrators" in refused.json()["ocs"]["meta"]["message"]
    assert (
        wsgi_client.post(USERS, json={}, headers=basic_auth("alice", PASSWORD)).status_code == 403
    )
    event = AuditEvent.objects.get(action="testkit.fault_arm")
    assert (event.actor, event.outcome) == ("alice", "denied")
    assert FaultStore(settings_data_dir()).armed() == []


def settings_data_dir():
    from django.conf import settings

    return settings.DATA_DIR / "testkit"


@pytest.mark.parametrize(
    "body, message",
    [
        ({"fault": "explode"}, "fault must be one of"),
        ({"fault": "lock-423", "count": 0}, "count must be between"),
        ({"fault": "lock-423", "count": "2"}, "count must be a number"),
        ({"fault": "delay"}, "seconds must be a number"),
        ({"fault": "delay", "seconds": 600}, "seconds must be between"),
        ({"fault": "drop-upload", "after_bytes": -1}, "after_bytes must be between"),
    ],
)
def test_malformed_faults_are_400(wsgi_client, testkit_on, admin, body, message):
    answer = wsgi_client.post(FAULTS, json=body, headers=basic_auth("root", PASSWORD))
    assert answer.status_code == 400
    assert message in answer.json()["ocs"]["meta"]["message"]


def test_fresh_users_get_an_app_password_that_signs_in(wsgi_client, testkit_on, admin):
    made = wsgi_client.post(USERS, json={"id": "carol"}, headers=basic_auth("root", PASSWORD))
    assert made.status_code == 201
    carol = made.json()["ocs"]["data"]
    me = wsgi_client.get(
        "/ocs/v2.php/cloud/user?format=json", headers=basic_auth("carol", carol["app_password"])
    )
    assert me.json()["ocs"]["data"]["id"] == "carol"
    again = wsgi_client.post(USERS, json={"id": "carol"}, headers=basic_auth("root", PASSWORD))
    assert again.status_code == 409
    event = AuditEvent.objects.filter(action="testkit.user_create").order_by("seq").first()
    assert event.target == "user:carol"
    assert carol["app_password"] not in str(event.details) + event.target


def test_expire_lock_without_a_lock_is_404(wsgi_client, testkit_on, admin):
    answer = wsgi_client.post(EXPIRE, json={"folder": 999999}, headers=basic_auth("root", PASSWORD))
    assert answer.status_code == 404
    everything = wsgi_client.post(EXPIRE, json={}, headers=basic_auth("root", PASSWORD))
    assert everything.json()["ocs"]["data"] == {"rolled_back": []}


def test_store_counts_down_per_match_and_user(tmp_path):
    store = FaultStore(tmp_path)
    store.arm(fault_parse({"fault": "lock-423", "count": 2, "user": "alice"}))
    lock = "/ocs/v2.php/apps/end_to_end_encryption/api/v2/lock/12"
    assert store.take("POST", lock, "bob") is None
    assert store.take("DELETE", lock, "alice") is None  # unlock is not a lock request
    fired = [store.take("POST", lock, "alice") for _ in range(3)]
    assert [isinstance(f, Fault) for f in fired] == [True, True, False]
    assert store.armed() == []


def test_basic_user_reads_the_claimed_id_only():
    import base64

    token = base64.b64encode(b"alice:secret").decode()
    assert basic_user({"HTTP_AUTHORIZATION": f"Basic {token}"}) == "alice"
    assert basic_user({"HTTP_AUTHORIZATION": "Basic %%%"}) is None
    assert basic_user({}) is None


@pytest.mark.parametrize(
    "option", [["--port", "8001"], ["--inline-signing"], ["--seed", "seed.yaml"]]
)
def test_ephemeral_options_need_ephemeral(option):
    """Their positive twin: test_ephemeral.py starts `manage.py serve --ephemeral`."""
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="go with --ephemeral"):
        call_command("serve", *option)


def test_seed_parsing():
    from server.testkit.seed import SeedError, seed_parse

    default = seed_parse(None)
    assert [u["id"] for u in default.database_users()] == ["admin", "alice", "bob"]
    own_admin = seed_parse({"users": [{"id": "root", "admin": True}, {"id": "admin"}]})
    assert [u["id"] for u in own_admin.database_users()] == ["root", "admin"]
    for doc, message in (
        ({"users": [{"id": "admin"}]}, "'admin' is the administrator"),
        ({"users": [{"id": "a"}, {"id": "a"}]}, "an id appears twice"),
        ({"folders": [{"owner": "zed", "path": "X"}]}, "unknown owner 'zed'"),
        ({"shares": [{"owner": "alice", "path": "X", "with": "zed"}]}, "unknown user"),
        ({"users": [{"id": "a", "keys": "yes"}]}, "'keys' must be true or false"),
        ({"groups": []}, "unknown keys: groups"),
    ):
        with pytest.raises(SeedError, match=message):
            seed_parse(doc)
