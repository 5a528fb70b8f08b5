"""HTTP Basic for WebDAV through the accounts app (app password or account password)."""

from __future__ import annotations

from typing import Any

from wsgidav import util
from wsgidav.dc.base_dc import BaseDomainController
from wsgidav.http_authenticator import HTTPAuthenticator

from server.accounts.authentication import REALM, parse_basic_header
from server.accounts.services import authenticate_basic
from server.audit.services import client_address, record_failed_login

# Anonymous, by share token (webdav.app mounts it; the same value, kept here to avoid a cycle).
PUBLIC_PREFIX = "/public.php/dav/files"
# Where the authenticated Django user travels through the WSGI environ.
USER_KEY = "e2ee.user"
REALM_NAME = "e2ee-stack"


class NextcloudDomainController(BaseDomainController):
    """Every share needs a login; the user object is put into the environ for the provider."""

    def __str__(self) -> str:
        return self.__class__.__name__

    def get_domain_realm(self, path_info: str, environ: dict[str, Any]) -> str:
        return REALM_NAME

    def require_authentication(self, realm: str, environ: dict[str, Any]) -> bool:
        # Public link shares authenticate by their token alone (webdav.public).
        # WsgiDAV has moved the mount point into SCRIPT_NAME by now.
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        return not (path == PUBLIC_PREFIX or path.startswith(PUBLIC_PREFIX + "/"))

    def is_share_anonymous(self, path_info: str) -> bool:
        return False

    def basic_auth_user(self, realm: str, user_name: str, password: str,
                        environ: dict[str, Any]) -> bool:
        user = authenticate_basic(username=user_name, password=password)
        if user is None:
            record_failed_login(username=user_name, source_address=client_address(environ),
                                channel="webdav")
            return False
        environ[USER_KEY] = user
        return True

    def supports_http_digest_auth(self) -> bool:
        return False


class BasicAuthenticator(HTTPAuthenticator):
    """WsgiDAV's authenticator with a strict Basic parser: malformed credentials are a 401, not
    a crash, and the challenge matches the one the OCS API sends."""

    def handle_basic_auth_request(self, environ, start_response):
        try:
            credentials = parse_basic_header(environ.get("HTTP_AUTHORIZATION", ""))
        except ValueError:
            credentials = None
        if credentials is not None and self.domain_controller.basic_auth_user(
            REALM_NAME, credentials[0], credentials[1], environ
        ):
            environ["wsgidav.auth.realm"] = REALM_NAME
            environ["wsgidav.auth.user_name"] = credentials[0]
            return self.next_app(environ, start_response)
        return self.send_basic_auth_response(environ, start_response)

    def send_basic_auth_response(self, environ, start_response):
        body = b"401 Unauthorized: a user id and app password are required\n"
        start_response("401 Unauthorized", [
            ("WWW-Authenticate", REALM),
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Date", util.get_rfc1123_time()),
        ])
        return [body]
