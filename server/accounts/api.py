"""status.php and the OCS cloud endpoints a sync client reads first."""

from django.conf import settings
from django.http import JsonResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from server.ocs import OCSView
from server.openapi import FORMAT, ocs

from .capabilities import capabilities_for, version_info


def status_php(request) -> JsonResponse:
    info = version_info()
    return JsonResponse(
        {
            "installed": True,
            "maintenance": False,
            "needsDbUpgrade": False,
            "version": ".".join(str(n) for n in settings.E2EE_NEXTCLOUD_VERSION),
            "versionstring": info["string"],
            "edition": "",
            "productname": settings.E2EE_PRODUCT_NAME,
            "extendedSupport": False,
        }
    )


class CapabilitiesView(OCSView):
    # Anonymous clients may read the version; the sections need a user.
    permission_classes = [AllowAny]

    @extend_schema(
        summary="capabilities (version for everyone, sections for users)",
        tags=["core"],
        parameters=[FORMAT],
        responses={
            200: ocs(
                "Capabilities",
                {"version": serializers.DictField(), "capabilities": serializers.DictField()},
            )
        },
    )
    def get(self, request: Request) -> Response:
        data: dict = {"version": version_info()}
        if request.user.is_authenticated:
            data["capabilities"] = capabilities_for(request.user)
        else:
            data["capabilities"] = {}
        return Response(data)


class CurrentUserView(OCSView):
    @extend_schema(
        summary="the signed-in user",
        tags=["core"],
        parameters=[FORMAT],
        responses={
            200: ocs(
                "CurrentUser",
                {"id": serializers.CharField(), "display-name": serializers.CharField()},
            )
        },
    )
    def get(self, request: Request) -> Response:
        user = request.user
        return Response(
            {
                "enabled": user.is_active,
                "id": user.username,
                "display-name": user.display_name,
                "displayname": user.display_name,
                "email": user.email or None,
                "groups": [],
                "language": "en",
                "locale": "",
                "quota": {"free": -3, "used": 0, "total": -3, "relative": 0, "quota": -3},
            }
        )
