"""OpenAPI description of the OCS endpoints (drf-spectacular), for client developers.

Every path is served under /ocs/v1.php and /ocs/v2.php, and the E2EE ones under api/v1 and
api/v2; the description shows the v2.php form with `api` as a path parameter."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers


class BasicAuthScheme(OpenApiAuthenticationExtension):
    target_class = "server.accounts.authentication.BasicAppPasswordAuthentication"
    name = "basicAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "basic",
            "description": "User id with an app password or the account password",
        }


def normalise_paths(endpoints: list, **kwargs: Any) -> list:
    """Preprocessing hook: show `/ocs/v2.php/...` without the regex, each path once."""
    seen, result = set(), []
    for path, path_regex, method, callback in endpoints:
        path = path.replace("v[12].php", "v2.php").rstrip("/") or "/"
        if (path, method) not in seen:
            seen.add((path, method))
            result.append((path, path_regex, method, callback))
    return result


_META = inline_serializer(
    "OCSMeta",
    {
        "status": serializers.ChoiceField(choices=["ok", "failure"]),
        "statuscode": serializers.IntegerField(
            help_text="v2.php: the HTTP status; v1.php: 100 on success"
        ),
        "message": serializers.CharField(),
    },
)


def ocs(
    name: str, data: dict[str, serializers.Field] | None = None, description: str = ""
) -> OpenApiResponse:
    """The OCS envelope around `data` (an empty list when None)."""
    data_field: serializers.Field = (
        inline_serializer(f"{name}Data", data)
        if data is not None
        else serializers.ListField(default=list)
    )
    body = inline_serializer(
        f"{name}Envelope",
        {"ocs": inline_serializer(f"{name}OCS", {"meta": _META, "data": data_field})},
    )
    return OpenApiResponse(body, description=description)


def errors(prefix: str, **codes: str) -> dict[int, OpenApiResponse]:
    """Error responses {status: meaning} (keys like e404); bodies carry data.message."""
    return {
        int(code.lstrip("e")): ocs(
            f"{prefix}Error{code.lstrip('e')}", {"message": serializers.CharField()}, text
        )
        for code, text in codes.items()
    }


def form(name: str, **fields: str) -> Any:
    """A form-encoded (or JSON) request body with these required string fields."""
    return inline_serializer(
        name, {key: serializers.CharField(help_text=text) for key, text in fields.items()}
    )


def header(name: str, description: str, required: bool = False) -> OpenApiParameter:
    return OpenApiParameter(
        name, str, OpenApiParameter.HEADER, required=required, description=description
    )


OCS_HEADERS = [
    header("OCS-APIRequest", "must be `true`", required=True),
    header("X-E2EE-SUPPORTED", "`true` for clients whose User-Agent is not an official one"),
]
API_VERSION = OpenApiParameter(
    "api", str, OpenApiParameter.PATH, enum=["1", "2"], description="E2EE API version"
)
FILE_ID = OpenApiParameter(
    "file_id", int, OpenApiParameter.PATH, description="oc:fileid of the folder"
)
TOKEN = header("e2e-token", "the lock token", required=True)
SIGNATURE = header(
    "X-NC-E2EE-SIGNATURE", "detached CMS signature of the metadata, base64", required=True
)
COUNTER = header("X-NC-E2EE-COUNTER", "the folder's new metadata counter (v2)", required=True)
FORMAT = OpenApiParameter(
    "format",
    str,
    OpenApiParameter.QUERY,
    enum=["json", "xml"],
    description="JSON with `json` (or Accept: application/json), else XML",
)
