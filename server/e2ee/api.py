"""OCS endpoints of the E2EE app (PROTOCOL.md §3.2): parse, call one service, render."""

import json

from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from hsm.signer import public_key_pem
from server.certificates import selectors as certificate_selectors
from server.certificates import services as certificate_services
from server.certificates.signing import signer_get
from server.errors import BadRequest, Forbidden, NotFound
from server.ocs import OCSView

from . import keys
from .gates import E2EEClient, OCSAPIRequest


class E2EEView(OCSView):
    permission_classes = [IsAuthenticated, OCSAPIRequest, E2EEClient]
    parser_classes = [FormParser, MultiPartParser, JSONParser]


def field(request: Request, name: str) -> str:
    """A required body (or query) field as a string; 400 when absent."""
    value = request.data.get(name, request.query_params.get(name))
    if not isinstance(value, str) or not value:
        raise BadRequest(f"Missing parameter: {name}")
    return value


def key_owner(request: Request) -> str:
    """The E2EE identity a key request is about: the caller, or a link share it owns."""
    share_token = request.data.get("shareToken") or request.query_params.get("shareToken")
    if share_token:
        # Link shares (v2.1 "s:<token>" identities) arrive with the sharing API.
        raise NotFound("Share not found")
    return request.user.username


def require_account_password(request: Request) -> None:
    """Deleting a key is destructive: the request must carry the account password itself."""
    if getattr(request.auth, "via", None) != "account-password":
        raise Forbidden("Password confirmation required: authenticate with the account password")


class PublicKeyView(E2EEView):
    def get(self, request: Request) -> Response:
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

    def post(self, request: Request) -> Response:
        certificate = certificate_services.certificate_issue(
            user=request.user, key_owner=key_owner(request), csr_pem=field(request, "csr")
        )
        return Response({"public-key": certificate.pem})

    def put(self, request: Request) -> Response:
        certificate = certificate_services.certificate_store_external(
            user=request.user, key_owner=key_owner(request), pem=field(request, "publicKey")
        )
        return Response({"public-key": certificate.pem})

    def delete(self, request: Request) -> Response:
        require_account_password(request)
        certificate_services.certificate_delete(key_owner=key_owner(request))
        return Response([])


class PrivateKeyView(E2EEView):
    def get(self, request: Request) -> Response:
        return Response({"private-key": keys.private_key_get(key_owner=key_owner(request))})

    def post(self, request: Request) -> Response:
        record = keys.private_key_store(
            user=request.user, key_owner=key_owner(request), wrapped=field(request, "privateKey")
        )
        return Response({"private-key": record.wrapped})

    def delete(self, request: Request) -> Response:
        require_account_password(request)
        keys.private_key_delete(key_owner=key_owner(request))
        return Response([])


class ServerKeyView(OCSView):
    """Public: clients pin this key before they have an account on the server."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    def get(self, request: Request) -> Response:
        return Response({"public-key": public_key_pem(signer_get())})
