"""The fault-injection endpoint of ephemeral stacks, in our own OCS namespace.

    /ocs/v2.php/apps/e2ee_stack/api/v1/testkit/faults        GET list, POST arm, DELETE clear
    /ocs/v2.php/apps/e2ee_stack/api/v1/testkit/expire-lock   POST {"folder": id}: 24 h rollback now
    /ocs/v2.php/apps/e2ee_stack/api/v1/testkit/users         POST: a fresh user with an app password

Not in the OpenAPI description (it exists in ephemeral stacks only; the README documents it).
Administrators (superusers) only: 401 without credentials, 403 for other users. Outside
ephemeral mode (E2EE_TESTKIT unset) every path answers 404 before authentication, and nothing
is audited. Every call in ephemeral mode is audited; so is every fault that fires (wsgi.py).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from server.audit.api import AuditedView
from server.errors import BadRequest, NotFound
from server.ocs import OCSView
from server.recovery.api import IsSuperuser

from .faults import FaultError, fault_parse, fault_store, testkit_enabled
from .services import kit_user_create, lock_expire_now


class IsTestkitAdmin(IsSuperuser):
    message = "Only administrators may inject faults"


class TestkitView(AuditedView, OCSView):
    permission_classes = [IsAuthenticated, IsTestkitAdmin]
    parser_classes = [JSONParser]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if not testkit_enabled():
            raise NotFound("Not found")
        super().initial(request, *args, **kwargs)

    def finalize_response(self, request, response, *args, **kwargs):
        if not testkit_enabled():  # production: this path does not exist, nothing to record
            return OCSView.finalize_response(self, request, response, *args, **kwargs)
        return super().finalize_response(request, response, *args, **kwargs)

    def body(self, request: Request) -> dict[str, Any]:
        if not isinstance(request.data, dict):
            raise BadRequest("The body must be a JSON object")
        return request.data


class FaultsView(TestkitView):
    audit_actions = {"post": "testkit.fault_arm", "delete": "testkit.fault_clear"}

    def audit_target(self, request: Request, kwargs: dict) -> str:
        armed = getattr(request, "testkit_fault", None)
        return f"fault:{armed}" if armed is not None else ""

    def audit_details(self, request: Request, kwargs: dict) -> dict:
        data = request.data if isinstance(request.data, dict) else {}
        return {"fault": str(data.get("fault", ""))[:40]} if request.method == "POST" else {}

    @extend_schema(exclude=True, summary="ephemeral stacks: the armed faults", tags=["testkit"])
    def get(self, request: Request) -> Response:
        return Response({"faults": [asdict(f) for f in fault_store().armed()]})

    @extend_schema(
        exclude=True,
        summary="ephemeral stacks: arm a fault for the next matching requests",
        tags=["testkit"],
    )
    def post(self, request: Request) -> Response:
        try:
            fields = fault_parse(self.body(request))
        except FaultError as exc:
            raise BadRequest(str(exc)) from None
        fault = fault_store().arm(fields)
        request.testkit_fault = fault.id
        return Response(asdict(fault), status=201)

    @extend_schema(exclude=True, summary="ephemeral stacks: disarm every fault", tags=["testkit"])
    def delete(self, request: Request) -> Response:
        return Response({"cleared": fault_store().clear()})


class ExpireLockView(TestkitView):
    audit_actions = {"post": "testkit.lock_expire"}

    def audit_target(self, request: Request, kwargs: dict) -> str:
        folder = request.data.get("folder") if isinstance(request.data, dict) else None
        return f"folder:{folder}" if isinstance(folder, int) else "folder:(all)"

    @extend_schema(
        exclude=True,
        summary="ephemeral stacks: expire a lock now, as the 24 h rollback would",
        tags=["testkit"],
    )
    def post(self, request: Request) -> Response:
        folder = self.body(request).get("folder")
        if folder is not None and (isinstance(folder, bool) or not isinstance(folder, int)):
            raise BadRequest("folder must be a file id")
        return Response({"rolled_back": lock_expire_now(folder_id=folder)})


class UsersView(TestkitView):
    audit_actions = {"post": "testkit.user_create"}

    def audit_target(self, request: Request, kwargs: dict) -> str:
        created = getattr(request, "testkit_user", None)
        return f"user:{created}" if created else ""

    @extend_schema(
        exclude=True,
        summary="ephemeral stacks: a fresh user with a password and app password",
        tags=["testkit"],
    )
    def post(self, request: Request) -> Response:
        data = self.body(request)
        uid, admin = data.get("id"), data.get("admin", False)
        if uid is not None and not isinstance(uid, str):
            raise BadRequest("id must be a string")
        if not isinstance(admin, bool):
            raise BadRequest("admin must be true or false")
        user = kit_user_create(uid=uid, admin=admin)
        request.testkit_user = user.id
        return Response(user.as_dict(), status=201)
