import xml.etree.ElementTree as ET

import pytest

from tests.conftest import basic_auth

PASSWORD = "correct horse battery staple"


def test_status_php_has_the_fields_a_nextcloud_client_checks(wsgi_client):
    body = wsgi_client.get("/status.php").json()
    assert body["installed"] is True
    assert body["maintenance"] is False
    assert body["needsDbUpgrade"] is False
    assert body["version"].count(".") == 3
    assert body["versionstring"] == body["version"].rsplit(".", 1)[0]
    assert {"edition", "productname"} <= body.keys()


@pytest.mark.parametrize("ocs", ["v1", "v2"])
def test_capabilities_json_for_a_user(wsgi_client, make_user, ocs):
    make_user("alice", PASSWORD)
    response = wsgi_client.get(
        f"/ocs/{ocs}.php/cloud/capabilities?format=json",
        headers={**basic_auth("alice", PASSWORD), "OCS-APIRequest": "true"},
    )
    assert response.status_code == 200
    meta = response.json()["ocs"]["meta"]
    assert meta["status"] == "ok"
    assert meta["statuscode"] == (100 if ocs == "v1" else 200)
    capabilities = response.json()["ocs"]["data"]["capabilities"]
    assert {"core", "dav", "files"} <= capabilities.keys()
    assert capabilities["core"]["webdav-root"] == "remote.php/webdav"
    # We offer no chunked-upload endpoints, so the capability must not claim them.
    assert "chunking" not in capabilities["dav"]


def test_capabilities_json_chosen_by_accept_header(wsgi_client, make_user):
    make_user("alice", PASSWORD)
    response = wsgi_client.get(
        "/ocs/v2.php/cloud/capabilities",
        headers={**basic_auth("alice", PASSWORD), "Accept": "application/json"},
    )
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["ocs"]["data"]["capabilities"]["core"]["pollinterval"] == 60


def test_capabilities_xml_by_default(wsgi_client, make_user):
    make_user("alice", PASSWORD)
    response = wsgi_client.get(
        "/ocs/v1.php/cloud/capabilities", headers=basic_auth("alice", PASSWORD)
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    assert root.findtext("meta/statuscode") == "100"
    assert root.findtext("data/capabilities/core/webdav-root") == "remote.php/webdav"
    assert root.findtext("data/version/string")


def test_capabilities_anonymous_shows_version_only(wsgi_client):
    data = wsgi_client.get("/ocs/v2.php/cloud/capabilities?format=json").json()["ocs"]["data"]
    assert data["version"]["major"] >= 28
    assert data["capabilities"] == {}


@pytest.mark.parametrize("ocs", ["v1", "v2"])
def test_cloud_user(wsgi_client, make_user, ocs):
    user = make_user("alice", PASSWORD)
    user.first_name = "Alice Liddell"
    user.save()
    response = wsgi_client.get(
        f"/ocs/{ocs}.php/cloud/user?format=json", headers=basic_auth("alice", PASSWORD)
    )
    assert response.status_code == 200
    data = response.json()["ocs"]["data"]
    assert data["id"] == "alice"
    assert data["display-name"] == "Alice Liddell"


@pytest.mark.parametrize("ocs", ["v1", "v2"])
def test_cloud_user_without_credentials_is_401_with_challenge(wsgi_client, ocs):
    response = wsgi_client.get(f"/ocs/{ocs}.php/cloud/user?format=json")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].lower().startswith("basic")
    assert response.json()["ocs"]["meta"]["status"] == "failure"
    assert response.json()["ocs"]["meta"]["statuscode"] == 401


def test_ocs_v1_failure_keeps_http_200_but_reports_the_code(wsgi_client, make_user):
    make_user("alice", PASSWORD)
    response = wsgi_client.get(
        "/ocs/v1.php/cloud/user?format=json",
        headers={**basic_auth("alice", PASSWORD)},
        params={"x": "1"},
    )
    assert response.status_code == 200  # positive twin of the failure envelope below
    response = wsgi_client.post(
        "/ocs/v1.php/cloud/user?format=json", headers=basic_auth("alice", PASSWORD)
    )
    assert response.status_code == 200
    assert response.json()["ocs"]["meta"]["statuscode"] == 405
    assert response.json()["ocs"]["meta"]["status"] == "failure"
    assert response.json()["ocs"]["meta"]["message"]


def test_xml_envelope_escapes_and_renders_lists():
    from server.ocs import OCSXMLRenderer, envelope

    body, status = envelope(
        data={"names": ["a<b", "c&d"], "1bad": True, "ok": None},
        http_status=200,
        message="OK",
        v1=False,
    )
    root = ET.fromstring(OCSXMLRenderer().render(body))
    assert [e.text for e in root.findall("data/names/element")] == ["a<b", "c&d"]
    assert root.find("data/element").text == "1"
    assert status == 200
