"""Our own capabilities namespace (Nextcloud clients ignore unknown sections)."""

from __future__ import annotations

from typing import Any

from server.accounts.models import User

from .selectors import recovery_key_enabled

NAMESPACE = "e2ee-stack"


def recovery_capabilities(user: User) -> dict[str, Any]:
    key = recovery_key_enabled()
    if key is None:
        return {NAMESPACE: {"recovery": {"enabled": False}}}
    return {
        NAMESPACE: {
            "recovery": {
                "enabled": True,
                "id": key.key_id,
                "certificate": key.certificate_pem,
                "fingerprint": key.fingerprint,
            }
        }
    }
