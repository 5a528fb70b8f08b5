"""The OCS envelope Nextcloud clients expect, in JSON or XML, for /ocs/v1.php and /ocs/v2.php.

v2: the HTTP status mirrors `statuscode`. v1: HTTP 200 and `statuscode` 100 on success; failures
keep their code in `statuscode` (HTTP 200 as well, except 401 so clients still see the challenge).
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

OCS_V1_OK = 100


def is_ocs_v1(request: Request) -> bool:
    return request.path.startswith("/ocs/v1.php")


class OCSJSONRenderer(JSONRenderer):
    format = "json"


class OCSXMLRenderer(BaseRenderer):
    media_type = "application/xml"
    format = "xml"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict | None = None,
    ) -> bytes:
        return ('<?xml version="1.0"?>\n' + _xml_element("ocs", data["ocs"])).encode()


def _xml_name(key: str) -> str:
    """Nextcloud uses the key as the tag; keys that are not XML names become <element>."""
    if key and (key[0].isalpha() or key[0] == "_") and all(c.isalnum() or c in "-_." for c in key):
        return key
    return "element"


def _xml_element(tag: str, value: Any) -> str:
    if isinstance(value, dict):
        inner = "".join(_xml_element(_xml_name(str(k)), v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        inner = "".join(_xml_element("element", v) for v in value)
    elif isinstance(value, bool):
        inner = "1" if value else ""
    elif value is None:
        inner = ""
    else:
        inner = escape(str(value))
    return f"<{tag}>{inner}</{tag}>"


def envelope(*, data: Any, http_status: int, message: str, v1: bool) -> tuple[dict, int]:
    """Wrap `data` in the OCS envelope; returns the body and the HTTP status to send."""
    ok = 200 <= http_status < 300
    if v1:
        statuscode = OCS_V1_OK if ok else http_status
        sent_status = http_status if http_status == 401 else 200
    else:
        statuscode, sent_status = http_status, http_status
    meta = {
        "status": "ok" if ok else "failure",
        "statuscode": statuscode,
        "message": message,
        "totalitems": "",
        "itemsperpage": "",
    }
    return {"ocs": {"meta": meta, "data": data}}, sent_status


class OCSView(APIView):
    """Base for every OCS endpoint: views return the bare `data`; this wraps it."""

    renderer_classes = [OCSXMLRenderer, OCSJSONRenderer]

    def finalize_response(self, request, response, *args, **kwargs):
        if isinstance(response, Response) and not getattr(response, "ocs_wrapped", False):
            message = getattr(response, "ocs_message", None)
            data = response.data
            if response.status_code >= 400:
                message = message or _error_message(data)
                data = {"message": message}
            body, sent = envelope(
                data=data if data is not None else [],
                http_status=response.status_code,
                message=message or "OK",
                v1=is_ocs_v1(request),
            )
            response.data, response.status_code = body, sent
            response.ocs_wrapped = True
        return super().finalize_response(request, response, *args, **kwargs)


def _error_message(data: Any) -> str:
    if isinstance(data, dict):
        detail = data.get("detail") or data.get("message")
        if detail:
            return str(detail)
    return "Request failed"
