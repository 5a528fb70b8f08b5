"""Which Signer this process uses. Opened lazily, never at import."""

from functools import cache
from pathlib import Path

from django.conf import settings

from hsm.signer import Signer
from hsm.software import SoftwareSigner


def ca_key_path() -> Path:
    return Path(settings.E2EE_CA_KEY_FILE)


@cache
def signer_get() -> Signer:
    """The software CA key, created on first use with 0600 permissions in the data dir."""
    return SoftwareSigner.load_or_create(ca_key_path())
