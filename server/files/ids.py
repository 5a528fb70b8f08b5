"""Nextcloud's identifiers for nodes: oc:fileid is the integer, oc:id (and the OC-FileId header)
is the id zero-padded to 8 digits followed by the instance id."""

from __future__ import annotations

import functools
import hashlib
import hmac

from django.conf import settings


@functools.cache
def _instance_id(secret: str, configured: str) -> str:
    if configured:
        return configured
    # Nextcloud's instance ids are "oc" + 10 lower-case alphanumerics; derive one that stays
    # stable as long as the secret key does.
    digest = hmac.new(secret.encode(), b"e2ee-stack instance id", hashlib.sha256).hexdigest()
    return "oc" + digest[:10]


def instance_id() -> str:
    return _instance_id(settings.SECRET_KEY, getattr(settings, "E2EE_INSTANCE_ID", ""))


def oc_id(node_id: int) -> str:
    return f"{node_id:08d}{instance_id()}"
