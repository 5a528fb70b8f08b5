"""Which Signer this process uses. Opened lazily, once per process (never at import, never
inherited over fork); only a process configured as the signing worker gets one.

Backends (setting E2EE_SIGNER):
- `software`: the PEM key file E2EE_CA_KEY_FILE (embedded default);
- `pkcs11`: PKCS11_MODULE, PKCS11_TOKEN_LABEL, PKCS11_PIN_FILE, PKCS11_KEY_LABEL; these are set
  in the worker's environment only, so a web process has no module and no PIN.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from django.conf import settings

from hsm.signer import Signer, SignerError
from hsm.software import SoftwareSigner

BACKENDS = ("software", "pkcs11")

_lock = threading.Lock()
_signers: dict[int, Signer] = {}


def ca_key_path() -> Path:
    return Path(settings.E2EE_CA_KEY_FILE)


def pkcs11_config():  # -> hsm.pkcs11.Pkcs11Config (imported lazily: python-pkcs11 is optional)
    from hsm.pkcs11 import DEFAULT_KEY_LABEL, Pkcs11Config

    return Pkcs11Config(
        module=settings.PKCS11_MODULE,
        token_label=settings.PKCS11_TOKEN_LABEL,
        pin_file=Path(settings.PKCS11_PIN_FILE) if settings.PKCS11_PIN_FILE else Path(""),
        key_label=settings.PKCS11_KEY_LABEL or DEFAULT_KEY_LABEL,
    )


def signer_open(backend: str) -> Signer:
    """Open the existing CA key of `backend` (never creates one: that is `ca init`)."""
    if backend == "software":
        return SoftwareSigner.load(ca_key_path())
    if backend == "pkcs11":
        from hsm.pkcs11 import Pkcs11Signer

        return Pkcs11Signer.open(pkcs11_config())
    raise SignerError(f"unknown signer backend {backend!r}; expected one of {BACKENDS}")


def signer_get() -> Signer:
    """This process's signer, opened on first use in this process."""
    pid = os.getpid()
    with _lock:
        signer = _signers.get(pid)
        if signer is None:
            _signers.clear()  # anything here was inherited from a parent process
            signer = _signers[pid] = signer_open(settings.E2EE_SIGNER)
        return signer


def signer_reset() -> None:
    """Forget this process's signer (closing a token session); the next use reopens."""
    with _lock:
        signer = _signers.pop(os.getpid(), None)
        _signers.clear()
    close = getattr(signer, "close", None)
    if close is not None:
        close()
