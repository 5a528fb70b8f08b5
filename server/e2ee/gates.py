"""Request gates of the E2EE API: the OCS-APIRequest header and Nextcloud's user-agent rule."""

import re

from rest_framework.permissions import BasePermission

from server.errors import Forbidden, Unauthorized

# Official clients that speak E2EE, with the first version that does (PROTOCOL.md §3.1).
SUPPORTED_CLIENTS: list[tuple[re.Pattern[str], tuple[int, ...]]] = [
    (re.compile(r"^Mozilla/5\.0 \(Android\) Nextcloud-android/(\d+(?:\.\d+)*)"), (3, 13, 0)),
    (re.compile(r"^Mozilla/5\.0 \([^)]*\) (?:mirall|csyncoC)/(\d+(?:\.\d+)*)"), (3, 0, 0)),
    (re.compile(r"^Mozilla/5\.0 \(iOS\) Nextcloud-iOS/(\d+(?:\.\d+)*)"), (3, 0, 5)),
]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def user_agent_supported(user_agent: str, e2ee_supported_header: str | None) -> bool:
    """A recognised official client must be new enough; only an unrecognised agent may vouch
    for itself with `X-E2EE-SUPPORTED: true` (a too-old official client cannot)."""
    for pattern, minimum in SUPPORTED_CLIENTS:
        match = pattern.match(user_agent)
        if match:
            return _version(match.group(1)) >= minimum
    return (e2ee_supported_header or "").strip().lower() == "true"


class OCSAPIRequest(BasePermission):
    """Nextcloud refuses OCS calls without `OCS-APIRequest: true` (its CSRF guard)."""

    def has_permission(self, request, view) -> bool:
        if request.headers.get("OCS-APIRequest", "").lower() != "true":
            raise Unauthorized("CSRF check failed: send the header OCS-APIRequest: true")
        return True


class E2EEClient(BasePermission):
    def has_permission(self, request, view) -> bool:
        if not user_agent_supported(
            request.headers.get("User-Agent", ""), request.headers.get("X-E2EE-SUPPORTED")
        ):
            raise Forbidden(
                "This client does not support end-to-end encryption; "
                "send X-E2EE-SUPPORTED: true or update the client"
            )
        return True
