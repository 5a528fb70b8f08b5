from typing import Any

from server.accounts.models import User
from server.certificates.selectors import certificate_exists

from .models import WrappedPrivateKey

API_VERSION = "2.1"


def e2ee_capabilities(user: User) -> dict[str, Any]:
    keys_exist = (
        certificate_exists(key_owner=user.username)
        and WrappedPrivateKey.objects.filter(key_owner=user.username).exists()
    )
    return {
        "end-to-end-encryption": {
            "enabled": True,
            "api-version": API_VERSION,
            "keys-exist": keys_exist,
        }
    }
