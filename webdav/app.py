"""The WsgiDAV application for the Nextcloud WebDAV endpoints."""

from __future__ import annotations

from django.conf import settings
from wsgidav.error_printer import ErrorPrinter
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from .auth import BasicAuthenticator, NextcloudDomainController
from .provider import NodeProvider
from .public import PublicShareProvider

# Mount points (the path prefixes server.wsgi routes here).
FILES_PREFIX = "/remote.php/dav/files"
LEGACY_PREFIX = "/remote.php/webdav"
PUBLIC_PREFIX = "/public.php/dav/files"
PREFIXES = (FILES_PREFIX, LEGACY_PREFIX, PUBLIC_PREFIX)


def build_webdav_app() -> WsgiDAVApp:
    """Call once per process, after django.setup()."""
    config = {
        "provider_mapping": {
            FILES_PREFIX: NodeProvider(uid_in_path=True),
            LEGACY_PREFIX: NodeProvider(uid_in_path=False),
            PUBLIC_PREFIX: PublicShareProvider(),
        },
        "middleware_stack": [ErrorPrinter, BasicAuthenticator, RequestResolver],
        "http_authenticator": {
            "domain_controller": NextcloudDomainController,
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
        },
        # 1 MiB reads and writes: WsgiDAV's 8 KiB default costs half the throughput.
        "block_size": settings.WEBDAV_BLOCK_SIZE,
        # WebDAV LOCKs would live in one process's memory; Nextcloud clients do not use them.
        "lock_storage": False,
        # No dead properties: every property we answer is computed from the node row.
        "property_manager": None,
        # X-OC-MTime is applied by the provider inside the upload's own transaction.
        "honor_mtime_header": False,
        "dir_browser": {"enable": False},
        "suppress_version_info": True,
        "add_header_MS_Author_Via": False,
        "verbose": 2,
        # Django's LOGGING configures the "wsgidav" logger; WsgiDAV must not add handlers.
        "logging": {"enable": False},
    }
    return WsgiDAVApp(config)
