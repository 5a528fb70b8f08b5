import pytest

from server.e2ee.gates import user_agent_supported
from tests.conftest import basic_auth

PASSWORD = "correct horse battery staple"
URL = "/ocs/v2.php/apps/end_to_end_encryption/api/v2/private-key?format=json"


@pytest.mark.parametrize(
    "agent, header, allowed",
    [
        ("Mozilla/5.0 (Android) Nextcloud-android/3.29.0", None, True),
        ("Mozilla/5.0 (Android) Nextcloud-android/3.12.9", "true", False),
        (
            "Mozilla/5.0 (Linux) mirall/3.7.3 (Nextcloud, debian-6.1.0 ClientArchitecture: x86_64)",
            None,
            True,
        ),
        ("Mozilla/5.0 (Windows) mirall/2.9.1", "true", False),
        ("Mozilla/5.0 (iOS) Nextcloud-iOS/4.9.0", None, True),
        ("Mozilla/5.0 (iOS) Nextcloud-iOS/3.0.4", "true", False),
        ("curl/8.0", None, False),
        ("curl/8.0", "true", True),
        ("curl/8.0", "TRUE", True),
        ("curl/8.0", "false", False),
        ("", None, False),
    ],
)
def test_user_agent_rule(agent, header, allowed):
    assert user_agent_supported(agent, header) is allowed


@pytest.fixture
def alice(make_user):
    make_user("alice", PASSWORD)
    return basic_auth("alice", PASSWORD)


def test_gated_endpoint_needs_ocs_api_request_header(wsgi_client, alice):
    response = wsgi_client.get(URL, headers={**alice, "X-E2EE-SUPPORTED": "true"})
    assert response.status_code == 401
    assert "OCS-APIRequest" in response.json()["ocs"]["meta"]["message"]


def test_gated_endpoint_refuses_unknown_agent_without_header(wsgi_client, alice):
    response = wsgi_client.get(
        URL, headers={**alice, "OCS-APIRequest": "true", "User-Agent": "curl/8"}
    )
    assert response.status_code == 403


def test_gated_endpoint_passes_with_both_headers(wsgi_client, alice):
    response = wsgi_client.get(
        URL,
        headers={
            **alice,
            "OCS-APIRequest": "true",
            "User-Agent": "curl/8",
            "X-E2EE-SUPPORTED": "true",
        },
    )
    assert response.status_code == 404  # through the gates: alice simply has no key yet


def test_gated_endpoint_v1_envelope(wsgi_client, alice):
    url = URL.replace("/ocs/v2.php/", "/ocs/v1.php/")
    response = wsgi_client.get(
        url, headers={**alice, "OCS-APIRequest": "true", "X-E2EE-SUPPORTED": "true"}
    )
    assert response.status_code == 200
    assert response.json()["ocs"]["meta"]["statuscode"] == 404
