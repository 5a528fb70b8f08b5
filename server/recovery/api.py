"""The admin's read of a user's encrypted tree for `e2ee recovery decrypt`: ciphertext only.

Superusers only (anyone else: 403), every call audited. The server holds no key, so this is
never a way around the end-to-end encryption: what it serves is what the recovery key (or a
folder user's key) still has to open. Audit targets are ids, never names."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from server.audit.api import AuditedView
from server.errors import BadRequest
from server.ocs import OCSView
from server.openapi import FORMAT, errors, ocs

from .selectors import encrypted_blob_open, encrypted_tree_export


class IsSuperuser(BasePermission):
    message = "Only administrators may read users' encrypted folders for recovery"

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_superuser)


class RecoveryView(AuditedView, OCSView):
    permission_classes = [IsAuthenticated, IsSuperuser]

    def audit_details(self, request: Request, kwargs: dict) -> dict:
        return {"user": request.query_params.get("user", "")[:150]}


def _username(request: Request) -> str:
    user = request.query_params.get("user")
    if not user:
        raise BadRequest("Missing parameter: user")
    return user


USER = OpenApiParameter("user", str, OpenApiParameter.QUERY, required=True, description="user id")
PATH = OpenApiParameter(
    "path", str, OpenApiParameter.QUERY, required=True, description="the topmost encrypted folder"
)
BLOB_ID = OpenApiParameter("file_id", int, OpenApiParameter.PATH, description="oc:fileid")
_ERRORS = errors("Recovery", e400="bad request", e403="not an administrator", e404="not found")


class ExportView(RecoveryView):
    audit_actions = {"get": "recovery.export"}

    def audit_target(self, request: Request, kwargs: dict) -> str:
        root = getattr(request, "recovery_root", None)
        return f"folder:{root}" if root is not None else ""

    @extend_schema(
        summary="admin: a user's encrypted tree as stored (metadata, signatures, ids)",
        tags=["recovery"],
        parameters=[USER, PATH, FORMAT],
        responses={
            200: ocs(
                "RecoveryExport",
                {"root": serializers.IntegerField(), "nodes": serializers.ListField()},
            ),
            **_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        path = request.query_params.get("path")
        if not path:
            raise BadRequest("Missing parameter: path")
        tree = encrypted_tree_export(username=_username(request), path=path)
        request.recovery_root = tree.root_id
        return Response({"root": tree.root_id, "nodes": tree.nodes})


class BlobView(RecoveryView):
    audit_actions = {"get": "recovery.blob"}

    def audit_target(self, request: Request, kwargs: dict) -> str:
        return f"file:{kwargs.get('file_id')}"

    @extend_schema(
        summary="admin: the stored bytes (ciphertext) of a file in an encrypted folder",
        tags=["recovery"],
        parameters=[USER, BLOB_ID],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
            **_ERRORS,
        },
    )
    def get(self, request: Request, file_id: str) -> FileResponse:
        node, handle = encrypted_blob_open(username=_username(request), node_id=int(file_id))
        response = FileResponse(handle, content_type="application/octet-stream")
        response["Content-Length"] = str(node.size)
        return response
