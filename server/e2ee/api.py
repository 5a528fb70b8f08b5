"""OCS endpoints of the E2EE app (PROTOCOL.md §3.2): parse, call one service, render."""

import json

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from server.audit.api import AuditedView
from server.certificates import selectors as certificate_selectors
from server.certificates import services as certificate_services
from server.certificates.authority import ca_public_key_pem
from server.errors import BadRequest, Forbidden, Locked
from server.ocs import OCSView
from server.openapi import ocs
from server.sharing.selectors import link_share_get

from . import docs, filedrop, folders, keys, locks, metadata
from .gates import E2EEClient, OCSAPIRequest


class E2EEView(AuditedView, OCSView):
    permission_classes = [IsAuthenticated, OCSAPIRequest, E2EEClient]
    parser_classes = [FormParser, MultiPartParser, JSONParser]

    def audit_target(self, request: Request, kwargs: dict) -> str:
        if "file_id" in kwargs:
            return f"folder:{kwargs['file_id']}"
        user = request.user
        return f"identity:{user.get_username()}" if user.is_authenticated else ""

    def audit_details(self, request: Request, kwargs: dict) -> dict:
        details: dict = {"api": kwargs.get("api")}
        if request.query_params.get("shareToken") or request.data.get("shareToken"):
            details["link_share"] = True  # never the token itself: it grants access
        if request.query_params.get("abort"):
            details["abort"] = True
        return details


def field(request: Request, name: str) -> str:
    """A required body (or query) field as a string; 400 when absent."""
    value = request.data.get(name, request.query_params.get(name))
    if not isinstance(value, str) or not value:
        raise BadRequest(f"Missing parameter: {name}")
    return value


def share_token(request: Request) -> str:
    """A public-link share context: form/query field `shareToken` or X-NC-E2EE-SHARE-TOKEN."""
    return (
        request.data.get("shareToken")
        or request.query_params.get("shareToken")
        or request.headers.get("X-NC-E2EE-SHARE-TOKEN")
        or ""
    )


def key_owner(request: Request) -> str:
    """The E2EE identity a key request is about: the caller, or "s:<token>" for a link share
    the caller owns (404 unknown token, 403 someone else's share)."""
    token = share_token(request)
    if token:
        share = link_share_get(token=token)
        if share.owner_id != request.user.pk:
            raise Forbidden("Only the owner of the share can manage its keys")
        return share.identity
    return request.user.username


def require_account_password(request: Request) -> None:
    """Deleting a key is destructive: the request must carry the account password itself."""
    if getattr(request.auth, "via", None) != "account-password":
        raise Forbidden("Password confirmation required: authenticate with the account password")


@extend_schema_view(**docs.PUBLIC_KEY)
class PublicKeyView(E2EEView):
    audit_actions = {
        "get": "certificate.read",
        "post": "certificate.issue",
        "put": "certificate.store_external",
        "delete": "certificate.delete",
    }

    def get(self, request: Request, api: str) -> Response:
        requested = [request.user.username]
        if "users" in request.query_params:
            try:
                users = json.loads(request.query_params["users"])
            except json.JSONDecodeError:
                raise BadRequest("Cannot decode users: expected a JSON array of user ids") from None
            if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
                raise BadRequest("Cannot decode users: expected a JSON array of user ids")
            requested += [u for u in users if u not in requested]
        return Response(
            {"public-keys": certificate_selectors.certificates_pem(key_owners=requested)}
        )

    def post(self, request: Request, api: str) -> Response:
        certificate = certificate_services.certificate_issue(
            user=request.user, key_owner=key_owner(request), csr_pem=field(request, "csr")
        )
        return Response({"public-key": certificate.pem})

    def put(self, request: Request, api: str) -> Response:
        certificate = certificate_services.certificate_store_external(
            user=request.user, key_owner=key_owner(request), pem=field(request, "publicKey")
        )
        return Response({"public-key": certificate.pem})

    def delete(self, request: Request, api: str) -> Response:
        require_account_password(request)
        certificate_services.certificate_delete(key_owner=key_owner(request))
        return Response([])


@extend_schema_view(**docs.PRIVATE_KEY)
class PrivateKeyView(E2EEView):
    audit_actions = {
        "get": "private_key.read",
        "post": "private_key.store",
        "delete": "private_key.delete",
    }

    def get(self, request: Request, api: str) -> Response:
        return Response({"private-key": keys.private_key_get(key_owner=key_owner(request))})

    def post(self, request: Request, api: str) -> Response:
        record = keys.private_key_store(
            user=request.user, key_owner=key_owner(request), wrapped=field(request, "privateKey")
        )
        return Response({"private-key": record.wrapped})

    def delete(self, request: Request, api: str) -> Response:
        require_account_password(request)
        keys.private_key_delete(key_owner=key_owner(request))
        return Response([])


@extend_schema_view(**docs.SERVER_KEY)
class ServerKeyView(OCSView):
    """Public: clients pin this key before they have an account on the server."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    def get(self, request: Request, api: str) -> Response:
        return Response({"public-key": ca_public_key_pem()})


def e2e_token(request: Request) -> str:
    """The lock token: header `e2e-token`, or (v1 clients, retries) a body or query field."""
    return (
        request.headers.get("e2e-token")
        or request.data.get("e2e-token")
        or request.query_params.get("e2e-token")
        or ""
    )


@extend_schema_view(**docs.ENCRYPTED_FLAG)
class EncryptedFlagView(E2EEView):
    audit_actions = {"put": "folder.encrypt", "delete": "folder.unencrypt"}

    def put(self, request: Request, api: str, file_id: str) -> Response:
        folders.encrypted_flag_set(user=request.user, node_id=int(file_id))
        return Response([])

    def delete(self, request: Request, api: str, file_id: str) -> Response:
        folders.encrypted_flag_unset(user=request.user, node_id=int(file_id))
        return Response([])


@extend_schema_view(**docs.RESET)
class EncryptedFilesResetView(E2EEView):
    audit_actions = {"delete": "folder.reset_all"}

    def delete(self, request: Request, api: str) -> Response:
        require_account_password(request)
        return Response({"deletedIds": folders.encrypted_folders_reset(user=request.user)})


def _counter(request: Request) -> int:
    raw = request.headers.get("X-NC-E2EE-COUNTER", "")
    try:
        counter = int(raw)
    except ValueError:
        raise BadRequest("Missing or invalid header X-NC-E2EE-COUNTER") from None
    if counter < 1:
        raise BadRequest("X-NC-E2EE-COUNTER must be a positive integer")
    return counter


@extend_schema_view(**docs.LOCK)
class LockView(E2EEView):
    audit_actions = {"post": "lock.acquire", "delete": "lock.release"}

    def post(self, request: Request, api: str, file_id: str) -> Response:
        token = request.data.get("e2e-token") or request.query_params.get("e2e-token") or None
        if api == "1":
            try:
                issued = locks.lock_acquire(
                    user=request.user, node_id=int(file_id), counter=None, token=token
                )
            except Locked as exc:  # v1 answered 403 for a held lock
                raise Forbidden(str(exc.detail)) from None
        else:
            issued = locks.lock_acquire(
                user=request.user, node_id=int(file_id), counter=_counter(request), token=token
            )
        return Response({"e2e-token": issued})

    def delete(self, request: Request, api: str, file_id: str) -> Response:
        abort = request.query_params.get("abort", "").lower() in ("true", "1")
        locks.lock_release(
            user=request.user, node_id=int(file_id), token=e2e_token(request), abort=abort
        )
        return Response([])


@extend_schema_view(**docs.METADATA)
class MetadataView(E2EEView):
    audit_actions = {
        "post": "metadata.create",
        "put": "metadata.update",
        "delete": "metadata.delete",
    }

    def get(self, request: Request, api: str, file_id: str) -> Response:
        found = metadata.metadata_get(user=request.user, node_id=int(file_id), api_v1=api == "1")
        response = Response({"meta-data": found.document})
        if api == "2":
            response["X-NC-E2EE-SIGNATURE"] = found.signature
        return response

    def post(self, request: Request, api: str, file_id: str) -> Response:
        document = field(request, "metaData")
        if api == "1":
            stored = metadata.metadata_create_v1(
                user=request.user, node_id=int(file_id), document=document
            )
        else:
            stored = metadata.metadata_create(
                user=request.user,
                node_id=int(file_id),
                document=document,
                signature=request.headers.get("X-NC-E2EE-SIGNATURE", ""),
                token=e2e_token(request),
            )
        return Response({"meta-data": stored})

    def put(self, request: Request, api: str, file_id: str) -> Response:
        stored = metadata.metadata_update(
            user=request.user,
            node_id=int(file_id),
            document=field(request, "metaData"),
            signature=request.headers.get("X-NC-E2EE-SIGNATURE", ""),
            token=e2e_token(request),
            api_v1=api == "1",
        )
        return Response({"meta-data": stored})

    def delete(self, request: Request, api: str, file_id: str) -> Response:
        if api == "1":
            metadata.metadata_delete_v1(user=request.user, node_id=int(file_id))
        else:
            metadata.metadata_delete(
                user=request.user, node_id=int(file_id), token=e2e_token(request)
            )
        return Response([])


class FiledropView(E2EEView):
    """PUT meta-data/{id}/filedrop: signed-in users (owner, sharee) or anyone holding the share
    token of a file-drop link; the web client that drops files is no E2EE client."""

    permission_classes = [AllowAny, OCSAPIRequest]
    audit_actions = {"put": "metadata.filedrop"}

    @extend_schema(
        summary="add file drop entries to the committed metadata (v2.1 secure file drop)",
        tags=["e2ee"],
        request=None,
        responses={200: ocs("Filedrop", {"filedrop": serializers.DictField()})},
    )
    def put(self, request: Request, api: str, file_id: str) -> Response:
        entries = filedrop.filedrop_entries_parse(raw=field(request, "filedrop"))
        merged = filedrop.filedrop_merge(
            user=request.user if request.user.is_authenticated else None,
            share_token=share_token(request) or None,
            node_id=int(file_id),
            entries=entries,
        )
        return Response({"filedrop": merged})
