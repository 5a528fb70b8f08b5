"""docker-compose.yml is valid (checked with Debian's docker-compose: no Docker engine runs
here) and keeps the HSM token and PIN in the worker alone."""

from pathlib import Path

import pytest

from tests.compose import compose_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose(tmp_path_factory) -> dict:
    return compose_config(tmp_path_factory.mktemp("compose"))


def secrets_of(service: dict) -> set[str]:
    return {s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])}


def test_services_volumes_and_healthchecks(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "web", "worker", "beat"}
    assert all("healthcheck" in service for service in services.values())
    assert set(compose["volumes"]) == {"db", "blobs", "token"}


def test_only_the_worker_holds_the_token_and_pin(compose):
    services = compose["services"]
    for name, service in services.items():
        env = service.get("environment", {})
        mounts = [
            str(v.get("source") if isinstance(v, dict) else v) for v in service.get("volumes", [])
        ]
        holds_token = any(m.startswith("token") for m in mounts)
        holds_pin = "hsm_pin" in secrets_of(service) or any(k.startswith("PKCS11_PIN") for k in env)
        if name == "worker":
            assert holds_token and holds_pin
            assert "-Q hsm -c 1" in " ".join(service["command"])
        else:
            assert not holds_token and not holds_pin, name
            assert not any(k.startswith("PKCS11_MODULE") for k in env), name


def test_web_serves_the_one_wsgi_callable_after_bootstrap(compose):
    command = " ".join(compose["services"]["web"]["command"])
    assert "manage.py bootstrap" in command and "server.wsgi:application" in command
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "manage.py bootstrap" in dockerfile and "server.wsgi:application" in dockerfile
