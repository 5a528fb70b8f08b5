import re

import pytest
from django.test import Client

from server.accounts.models import AppPassword
from server.accounts.services import authenticate_basic

APP_PASSWORD = re.compile(r"\b([A-Za-z0-9]{5}(?:-[A-Za-z0-9]{5}){4})\b")


@pytest.fixture
def admin_client_(db, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "", "admin password 123")
    client = Client()
    client.force_login(admin)
    return client


def test_admin_creates_app_password_and_shows_it_once(admin_client_, make_user):
    alice = make_user("alice")
    response = admin_client_.post(
        "/admin/accounts/apppassword/add/", {"user": alice.pk, "name": "phone"}, follow=True
    )
    assert response.status_code == 200
    shown = APP_PASSWORD.findall(response.content.decode())
    assert len(shown) == 1
    assert authenticate_basic(username="alice", password=shown[0]) == alice
    record = AppPassword.objects.get(user=alice)
    change_page = admin_client_.get(
        f"/admin/accounts/apppassword/{record.pk}/change/"
    ).content.decode()
    assert shown[0] not in change_page and record.digest not in change_page


def test_admin_action_creates_app_password_for_selected_users(admin_client_, make_user):
    alice = make_user("alice")
    response = admin_client_.post(
        "/admin/accounts/user/",
        {"action": "create_app_password", "_selected_action": [alice.pk]},
        follow=True,
    )
    shown = APP_PASSWORD.findall(response.content.decode())
    assert len(shown) == 1
    assert authenticate_basic(username="alice", password=shown[0]) == alice


def test_admin_requires_staff(db, make_user):
    make_user("alice")
    client = Client()
    client.login(username="alice", password="correct horse battery staple")
    assert client.get("/admin/accounts/apppassword/").status_code == 302
