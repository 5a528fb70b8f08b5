"""The Django admin in a real browser (Debian's chromium via playwright; no browser download):
sign in, open every admin page, force-release a lock, and keep screenshots for the README.

Screenshots go to $E2EE_SCREENSHOTS when set (the README's come from
`E2EE_SCREENSHOTS=tests/browser/screenshots pytest -m browser`), else to a temp dir."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest

from tests.conftest import require
from tests.e2ee.helpers import API, E2EE_HEADERS, make_csr
from tests.live import LiveStack

CHROMIUM = "/usr/bin/chromium"
ADMIN_PASSWORD = "a browser-tested admin password"


@pytest.fixture(scope="module")
def stack():
    with LiveStack.start(env={"E2EE_SIGNING": "inline", "E2EE_SIGNER": "software"}) as live:
        live.manage("ca", "init", "--backend", "software")
        live.create_user("root", ADMIN_PASSWORD)
        live.manage(
            "shell",
            "-c",
            "from server.accounts.models import User; "
            "User.objects.filter(username='root').update(is_staff=True, is_superuser=True)",
        )
        live.create_user("alice", "alice's long password")
        auth = ("alice", live.create_app_password("alice"))
        with httpx.Client(base_url=live.base_url, auth=auth, headers=E2EE_HEADERS) as client:
            folder = int(
                client.request("MKCOL", "/remote.php/dav/files/alice/Projects").headers[
                    "OC-FileId"
                ][:8]
            )
            client.put(f"{API}/encrypted/{folder}?format=json")
            client.post(f"{API}/lock/{folder}?format=json", headers={"X-NC-E2EE-COUNTER": "1"})
            issued = client.post(f"{API}/public-key?format=json", data={"csr": make_csr("alice")})
            assert issued.status_code == 200, issued.text
        yield live


@pytest.fixture(scope="module")
def page(stack, tmp_path_factory):
    require(Path(CHROMIUM).exists(), "Debian's chromium (/usr/bin/chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        yield page
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    target = os.environ.get("E2EE_SCREENSHOTS")
    folder = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def login(page, stack) -> None:
    page.goto(stack.url("/admin/login/"))
    if page.locator("#id_username").count() == 0:
        return  # this browser is signed in already (the session cookie of an earlier test)
    page.fill("#id_username", "root")
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


@pytest.mark.browser
@pytest.mark.e2e
def test_every_admin_page_opens(page, stack, shots):
    login(page, stack)
    page.screenshot(path=str(shots / "admin-index.png"), full_page=True)
    links = sorted(set(re.findall(r'href="(/admin/[a-z_]+/[a-z_]+/)"', page.content())))
    assert len(links) >= 6, links
    for link in links:
        response = page.goto(stack.url(link))
        assert response is not None and response.status == 200, link
        assert "Server Error" not in page.content(), link
        name = link.strip("/").replace("/", "-")
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


@pytest.mark.browser
@pytest.mark.e2e
def test_force_release_from_the_browser(page, stack, shots):
    login(page, stack)
    page.goto(stack.url("/admin/e2ee/lock/"))
    page.check("input.action-select")
    page.select_option("select[name=action]", "force_release")
    page.click("button[name=index]")
    page.wait_for_selector("textarea[name=reason]")
    page.fill("textarea[name=reason]", "client crashed; user asked on the phone")
    page.screenshot(path=str(shots / "force-release.png"), full_page=True)
    page.click("input[type=submit][value=Force-release]")
    page.wait_for_selector("ul.messagelist")
    assert "Released 1 lock" in page.inner_text("ul.messagelist")
    assert stack.query("select count(*) from e2ee_lock") == [(0,)]
    events = stack.query(
        "select actor, details from audit_auditevent where action = %s", ["lock.force_release"]
    )
    assert len(events) == 1 and events[0][0] == "root"
    page.goto(stack.url("/admin/audit/auditevent/"))
    page.screenshot(path=str(shots / "audit-log.png"), full_page=True)


@pytest.mark.browser
@pytest.mark.e2e
def test_rekey_request_and_approval_from_the_browser(page, stack, shots):
    login(page, stack)
    page.goto(stack.url("/admin/certificates/rekeyrequest/add/"))
    page.fill("input[name=key_owner]", "alice")
    page.fill("textarea[name=reason]", "laptop stolen, user has a new key pair")
    page.click("input[name=_save]")
    page.wait_for_selector("#result_list")
    page.check("input.action-select")
    page.select_option("select[name=action]", "approve")
    page.click("button[name=index]")
    page.wait_for_selector("ul.messagelist")
    assert "Approved 1 re-key request" in page.inner_text("ul.messagelist")
    page.screenshot(path=str(shots / "rekey-approved.png"), full_page=True)
    rows = stack.query(
        "select r.key_owner, u.username from certificates_rekeyrequest r "
        "join accounts_user u on u.id = r.approved_by_id"
    )
    assert rows == [("alice", "root")]
