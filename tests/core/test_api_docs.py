"""The OpenAPI description client developers read: complete, valid, browsable offline."""

import io
import re

import yaml
from django.core.management import call_command

E2EE = "/ocs/v2.php/apps/end_to_end_encryption/api/v{api}"
EXPECTED = {
    f"{E2EE}/public-key": {"get", "post", "put", "delete"},
    f"{E2EE}/private-key": {"get", "post", "delete"},
    f"{E2EE}/server-key": {"get"},
    f"{E2EE}/encrypted/{{file_id}}": {"put", "delete"},
    f"{E2EE}/encrypted-files": {"delete"},
    f"{E2EE}/lock/{{file_id}}": {"post", "delete"},
    f"{E2EE}/meta-data/{{file_id}}": {"get", "post", "put", "delete"},
    "/ocs/v2.php/cloud/capabilities": {"get"},
    "/ocs/v2.php/cloud/user": {"get"},
}


def test_schema_is_valid_without_warnings(db):
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = yaml.safe_load(out.getvalue())
    for path, methods in EXPECTED.items():
        assert methods <= set(schema["paths"].get(path, {})), path
    lock = schema["paths"][f"{E2EE}/lock/{{file_id}}"]["post"]
    assert {"400", "403", "404", "412", "423"} <= set(lock["responses"])
    assert {p["name"] for p in lock["parameters"]} >= {"X-NC-E2EE-COUNTER", "OCS-APIRequest", "api"}


def test_docs_page_and_its_assets_are_served_locally(wsgi_client):
    schema = wsgi_client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    assert f"{E2EE}/meta-data/{{file_id}}" in schema.json()["paths"]
    page = wsgi_client.get("/api/docs/")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert assets, "the docs page must use bundled assets, not a CDN"
    assert "://" not in "".join(re.findall(r'src="([^"]+)"', page.text))
    for asset in assets:
        assert wsgi_client.get(asset).status_code == 200, asset
