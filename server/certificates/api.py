"""Our own OCS namespace (`apps/e2ee_stack`): what Nextcloud has no endpoint for."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from server.e2ee.gates import OCSAPIRequest
from server.ocs import OCSView

from . import selectors


class RevokedView(OCSView):
    """Revoked certificate serials. `list` is the newest edition signed by the CA key (the
    JSON text the signature covers) and `signature` its base64 RSASSA-PKCS1-v1_5/SHA-256
    signature; clients trust only those. `revoked` repeats the database's current entries
    (unsigned; it may be ahead of the signed edition for a moment)."""

    permission_classes = [IsAuthenticated, OCSAPIRequest]

    @extend_schema(
        summary="Revoked certificate serials, signed by the CA",
        responses={
            200: inline_serializer(
                "Revoked",
                {
                    "revoked": serializers.ListField(
                        child=inline_serializer(
                            "RevokedSerial",
                            {
                                "serial": serializers.CharField(),
                                "revokedAt": serializers.CharField(),
                            },
                        )
                    ),
                    "list": serializers.CharField(allow_null=True),
                    "signature": serializers.CharField(allow_null=True),
                },
            )
        },
    )
    def get(self, request: Request, api: str) -> Response:
        edition = selectors.revocation_list_signed()
        return Response(
            {
                "revoked": selectors.revoked_serials(),
                "list": edition.document if edition else None,
                "signature": edition.signature if edition else None,
            }
        )
