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
    """Serials (lower-case hex) of certificates an admin revoked; clients refuse those."""

    permission_classes = [IsAuthenticated, OCSAPIRequest]

    @extend_schema(
        summary="Revoked certificate serials",
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
                    )
                },
            )
        },
    )
    def get(self, request: Request, api: str) -> Response:
        return Response({"revoked": selectors.revoked_serials()})
