"""The capabilities document; other apps add their sections through `register`."""

from collections.abc import Callable
from typing import Any

from django.conf import settings

from .models import User

CapabilityProvider = Callable[[User], dict[str, Any]]
_providers: list[CapabilityProvider] = []


def register(provider: CapabilityProvider) -> CapabilityProvider:
    if provider not in _providers:
        _providers.append(provider)
    return provider


def version_info() -> dict[str, Any]:
    major, minor, micro, _ = settings.E2EE_NEXTCLOUD_VERSION
    return {
        "major": major,
        "minor": minor,
        "micro": micro,
        "string": f"{major}.{minor}.{micro}",
        "edition": "",
        "extendedSupport": False,
    }


@register
def _core_sections(user: User) -> dict[str, Any]:
    return {
        "core": {
            "pollinterval": 60,
            "webdav-root": "remote.php/webdav",
            "reference-api": False,
            "mod-rewrite-working": True,
        },
        # No "chunking": we do not offer Nextcloud's chunked-upload endpoints, so clients send
        # each file in one streamed PUT.
        "dav": {"bulkupload": "", "public_shares_chunking": False},
        "files": {
            "bigfilechunking": False,
            "undelete": False,
            "versioning": False,
            "comments": False,
            "blacklisted_files": [".htaccess"],
            "forbidden_filenames": [".htaccess"],
            "forbidden_filename_characters": ["/", "\\"],
        },
        # The server verifies an OC-Checksum it is sent and returns it on reads.
        "checksums": {"supportedTypes": ["SHA1", "SHA256"], "preferredUploadType": "SHA1"},
    }


def capabilities_for(user: User) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for provider in _providers:
        merged.update(provider(user))
    return merged
