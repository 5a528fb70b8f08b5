"""The part of Nextcloud's OCS share API an E2EE client needs, in Nextcloud's shapes:
/ocs/v{1,2}.php/apps/files_sharing/api/v1/shares[/<id>]."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from server.accounts.models import User
from server.audit.api import AuditedView
from server.e2ee.gates import OCSAPIRequest
from server.errors import BadRequest
from server.files import selectors as file_selectors
from server.ocs import OCSView
from server.openapi import FORMAT, ocs

from . import selectors, services
from .models import Share


def _int_or_none(value: Any, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid {name}") from None


def _param(request: Request, name: str) -> Any:
    """A body field (form or JSON), else a query parameter, as Nextcloud reads them."""
    value = request.data.get(name)
    return request.query_params.get(name) if value is None else value


def share_data(share: Share, *, viewer: User, request: Request) -> dict[str, Any]:
    """One share as Nextcloud's ShareAPIController formats it."""
    node, owner = share.node, share.owner
    is_dir = node.is_dir
    seen_by_owner = viewer.pk == owner.pk
    target = "/" + share.target_name
    data: dict[str, Any] = {
        "id": str(share.id),
        "share_type": share.share_type,
        "uid_owner": owner.username,
        "displayname_owner": owner.display_name,
        "permissions": share.permissions,
        "can_edit": seen_by_owner,
        "can_delete": True,
        "stime": int(share.created_at.timestamp()),
        "parent": None,
        "expiration": None,
        "token": share.token,
        "uid_file_owner": owner.username,
        "note": "",
        "label": "" if share.is_link else None,
        "displayname_file_owner": owner.display_name,
        "path": file_selectors.node_path(node=node) if seen_by_owner else target,
        "item_type": "folder" if is_dir else "file",
        "item_permissions": share.permissions,
        "mimetype": "httpd/unix-directory" if is_dir else "application/octet-stream",
        "has_preview": False,
        "storage_id": f"home::{owner.username}",
        "storage": owner.pk,
        "item_source": node.id,
        "file_source": node.id,
        "file_parent": node.parent_id,
        "file_target": target,
        "item_size": node.size,
        "item_mtime": node.mtime,
        "share_with": None,
        "share_with_displayname": None,
        "mail_send": 0,
        "hide_download": 0,
        "attributes": None,
    }
    if share.is_link:
        data["share_with"] = None
        data["share_with_displayname"] = "(Shared link)"
        data["password"] = None
        data["send_password_by_talk"] = False
        data["url"] = request.build_absolute_uri(f"/s/{share.token}")
    else:
        assert share.share_with is not None
        data["share_with"] = share.share_with.username
        data["share_with_displayname"] = share.share_with.display_name
        data["share_with_displayname_unique"] = share.share_with.username
    return data


class SharingView(AuditedView, OCSView):
    permission_classes = [IsAuthenticated, OCSAPIRequest]
    parser_classes = [FormParser, MultiPartParser, JSONParser]

    def audit_target(self, request: Request, kwargs: dict) -> str:
        return f"share:{kwargs['share_id']}" if "share_id" in kwargs else ""

    def audit_details(self, request: Request, kwargs: dict) -> dict:
        # Who with and what kind; never the path (a clear folder name) or a link token.
        details = {
            "share_type": _param(request, "shareType"),
            "share_with": _param(request, "shareWith"),
        }
        return {key: value for key, value in details.items() if value not in (None, "")}


_SHARES = ocs("Shares", {"shares": serializers.ListField(child=serializers.DictField())})
_SHARE = ocs("Share", {"share": serializers.DictField()})
_EMPTY = ocs("ShareDeleted")


class SharesView(SharingView):
    audit_actions = {"post": "share.create"}

    @extend_schema(
        summary="own shares, or shares with me (shared_with_me=true)",
        tags=["sharing"],
        parameters=[FORMAT],
        responses={200: _SHARES},
        operation_id="shares_list",
    )
    def get(self, request: Request) -> Response:
        user = request.user
        if request.query_params.get("shared_with_me", "").lower() == "true":
            shares = selectors.shares_received(user=user)
        else:
            shares = selectors.shares_owned(user=user)
        return Response([share_data(s, viewer=user, request=request) for s in shares])

    @extend_schema(
        summary="create a user share (shareType 0) or a link share (shareType 3)",
        tags=["sharing"],
        parameters=[FORMAT],
        request=None,
        responses={200: _SHARE},
    )
    def post(self, request: Request) -> Response:
        share_type = _int_or_none(_param(request, "shareType"), "shareType")
        if share_type is None:
            raise BadRequest("Missing shareType")
        share = services.share_create(
            user=request.user,
            path=str(_param(request, "path") or ""),
            share_type=share_type,
            share_with=_param(request, "shareWith"),
            permissions_requested=_int_or_none(_param(request, "permissions"), "permissions"),
        )
        return Response(share_data(share, viewer=request.user, request=request))


class ShareView(SharingView):
    audit_actions = {"delete": "share.delete"}

    @extend_schema(
        summary="one share (a list of one, as Nextcloud answers)",
        tags=["sharing"],
        parameters=[FORMAT],
        responses={200: _SHARES},
        operation_id="shares_get",
    )
    def get(self, request: Request, share_id: str) -> Response:
        share = selectors.share_get(user=request.user, share_id=int(share_id))
        return Response([share_data(share, viewer=request.user, request=request)])

    @extend_schema(
        summary="delete a share (owner) or leave it (sharee)",
        tags=["sharing"],
        parameters=[FORMAT],
        responses={200: _EMPTY},
    )
    def delete(self, request: Request, share_id: str) -> Response:
        services.share_delete(user=request.user, share_id=int(share_id))
        return Response([])
