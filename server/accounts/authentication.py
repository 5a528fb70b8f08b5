"""HTTP Basic with user id + app password or account password, for DRF views."""

import base64
import binascii
import logging

from rest_framework import authentication, exceptions

from server.audit.services import client_address, record_failed_login

from .services import credentials_check

log = logging.getLogger(__name__)
REALM = 'Basic realm="e2ee-stack", charset="UTF-8"'


def parse_basic_header(header: str) -> tuple[str, str] | None:
    """Return (user, password) from an Authorization header value, None if it is not Basic."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("malformed Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise ValueError("malformed Basic credentials")
    return username, password


class BasicAppPasswordAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        try:
            credentials = parse_basic_header(header)
        except ValueError as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        if credentials is None:
            return None
        checked = credentials_check(username=credentials[0], password=credentials[1])
        if checked is None:
            log.info("failed login for a user id from %s", request.META.get("REMOTE_ADDR"))
            record_failed_login(
                username=credentials[0], source_address=client_address(request.META), channel="ocs"
            )
            raise exceptions.AuthenticationFailed("Invalid user id or password")
        return checked.user, checked

    def authenticate_header(self, request) -> str:
        return REALM
