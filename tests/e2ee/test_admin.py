"""The E2EE admin pages: lock state, force-release with a reason (audited), and no key material."""

import pytest
from django.test import Client

from server.audit.models import AuditEvent
from server.e2ee.models import Lock
from tests.e2ee.helpers import v2_document, wrapped_private_key
from tests.e2ee.test_folders_locks_metadata import (
    API,
    committed_folder,
    lock,
    names_in,
    put_blob,
    put_metadata,
    token_of,
    unlock,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice(make_user, app_password):
    from tests.e2ee.helpers import headers

    return headers("alice", app_password(make_user("alice", PASSWORD)))


@pytest.fixture
def admin(db, django_user_model):
    user = django_user_model.objects.create_superuser("root", "", "admin password 123")
    client = Client()
    client.force_login(user)
    return client


def held_lock(wsgi_client, alice):
    folder = committed_folder(wsgi_client, alice)
    token = token_of(lock(wsgi_client, alice, folder, counter=2))
    put_blob(wsgi_client, alice, "Secret/0a1b", b"staged", token=token)
    return folder, token


def test_force_release_asks_for_a_reason_then_reverts_and_audits(wsgi_client, alice, admin):
    folder, token = held_lock(wsgi_client, alice)
    held = Lock.objects.get()
    page = admin.post(
        "/admin/e2ee/lock/", {"action": "force_release", "_selected_action": [held.pk]}
    )
    assert page.status_code == 200 and b"reason" in page.content
    assert Lock.objects.exists()  # nothing happens without a reason

    done = admin.post(
        "/admin/e2ee/lock/",
        {
            "action": "force_release",
            "_selected_action": [held.pk],
            "confirm": "yes",
            "reason": "laptop died, user asked",
        },
    )
    assert done.status_code == 302
    assert not Lock.objects.exists()
    assert names_in(folder) == []  # the staged upload is gone, committed state untouched
    event = AuditEvent.objects.get(action="lock.force_release")
    assert (event.actor, event.target) == ("root", f"folder:{folder}")
    assert event.details == {"reason": "laptop died, user asked", "holder": "alice"}
    # the old token is dead; a fresh lock works
    assert unlock(wsgi_client, alice, folder, token).status_code == 404
    assert token_of(lock(wsgi_client, alice, folder, counter=2))


def test_released_lock_twin_commit_still_works_without_admin(wsgi_client, alice):
    folder, token = held_lock(wsgi_client, alice)
    put_metadata(wsgi_client, alice, folder, token, v2_document(2))
    assert unlock(wsgi_client, alice, folder, token).status_code == 200
    assert names_in(folder) == ["0a1b"]


def test_admin_pages_show_state_but_no_key_material(wsgi_client, alice, admin):
    folder, token = held_lock(wsgi_client, alice)
    wrapped = wrapped_private_key()
    wsgi_client.post(f"{API}/private-key?format=json", headers=alice, data={"privateKey": wrapped})
    pages = {
        url: admin.get(url)
        for url in (
            "/admin/e2ee/lock/",
            f"/admin/e2ee/lock/{Lock.objects.get().pk}/change/",
            "/admin/e2ee/encryptedfolder/",
            f"/admin/e2ee/encryptedfolder/{folder}/change/",
            "/admin/e2ee/foldermetadata/",
            f"/admin/e2ee/foldermetadata/{folder}/change/",
            "/admin/e2ee/wrappedprivatekey/",
        )
    }
    for url, response in pages.items():
        assert response.status_code == 200, url
        body = response.content.decode()
        assert token not in body and wrapped.split("|")[0] not in body, url
        assert "ciphertext" not in body, url
    assert "alice" in pages["/admin/e2ee/encryptedfolder/"].content.decode()  # locked by
