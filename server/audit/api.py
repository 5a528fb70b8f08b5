"""Recording API calls: views name their actions, this mixin appends one event per call."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from .services import audit_record, client_address, outcome_for_status


class AuditedView:
    """Mix in before the DRF view class. `audit_actions` maps an HTTP method to an action name;
    `audit_target` names what was acted on (ids only: never names, keys or metadata)."""

    audit_actions: dict[str, str] = {}

    def audit_target(self, request: Request, kwargs: dict[str, Any]) -> str:
        return ""

    def audit_details(self, request: Request, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {}

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        status = response.status_code  # before the OCS v1 envelope turns failures into 200
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        action = self.audit_actions.get(request.method.lower())
        if action:
            user = getattr(request, "user", None)
            audit_record(
                actor=user.get_username()
                if user is not None and user.is_authenticated
                else "anonymous",
                action=action,
                target=self.audit_target(request, kwargs),
                outcome=outcome_for_status(status),
                source_address=client_address(request.META),
                details={"status": status, **self.audit_details(request, kwargs)},
            )
        return response
