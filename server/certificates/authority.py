"""CA lifecycle: create the key (software file or inside a PKCS#11 token), record its public
half for the web process, report status."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from hsm.signer import Signer, SignerError, key_fingerprint, public_key_pem
from hsm.software import SoftwareSigner
from server.errors import ServiceUnavailable

from .models import Certificate, CertificateAuthority
from .revocation import revocation_list_publish
from .signing import BACKENDS, ca_key_path, pkcs11_config, signer_open


def _location(backend: str) -> str:
    if backend == "software":
        return str(ca_key_path())
    config = pkcs11_config()
    return f"token {config.token_label!r}, key {config.key_label!r}"


def _record(*, backend: str, signer: Signer) -> CertificateAuthority:
    with transaction.atomic():
        if CertificateAuthority.objects.exists():
            raise SignerError("a CA is already recorded for this server; refusing to replace it")
        return CertificateAuthority.objects.create(
            backend=backend,
            public_key_pem=public_key_pem(signer),
            fingerprint=key_fingerprint(signer.public_key()),
            location=_location(backend),
        )


def ca_init(*, backend: str) -> CertificateAuthority:
    """Generate the CA key and record it. Refuses when a CA is recorded or the key exists."""
    if backend not in BACKENDS:
        raise SignerError(f"unknown signer backend {backend!r}; expected one of {BACKENDS}")
    if CertificateAuthority.objects.exists():
        raise SignerError("a CA is already recorded for this server; refusing to replace it")
    signer: Signer
    if backend == "software":
        signer = SoftwareSigner.create(ca_key_path())
    else:
        from hsm.pkcs11 import Pkcs11Signer

        signer = Pkcs11Signer.create(pkcs11_config())
    try:
        recorded = _record(backend=backend, signer=signer)
        revocation_list_publish(signer=signer)  # edition 1: clients can tell "none" from "hidden"
        return recorded
    finally:
        close = getattr(signer, "close", None)
        if close is not None:
            close()


def ca_ensure_software() -> CertificateAuthority:
    """Embedded default: the software CA, created on first start and recorded once."""
    found = CertificateAuthority.objects.first()
    if found is not None:
        return found
    signer = SoftwareSigner.load_or_create(ca_key_path())
    try:
        recorded = _record(backend="software", signer=signer)
    except SignerError:  # recorded meanwhile by another process
        return CertificateAuthority.objects.get()
    revocation_list_publish(signer=signer)
    return recorded


def ca_verify(*, signer: Signer) -> None:
    """The worker signs only with the key the server publishes."""
    recorded = CertificateAuthority.objects.first()
    if recorded is None:
        raise SignerError("no CA is recorded; run `manage.py ca init`")
    if key_fingerprint(signer.public_key()) != recorded.fingerprint:
        raise SignerError(
            "the signing key is not the CA this server publishes "
            f"(recorded {recorded.fingerprint[:16]}…); refusing to sign"
        )


def ca_public_key_pem() -> str:
    """What `GET server-key` serves: the public key recorded from the CA key at init."""
    recorded = CertificateAuthority.objects.first()
    if (
        recorded is None
        and settings.E2EE_SIGNING == "inline"
        and settings.E2EE_SIGNER == "software"
    ):
        recorded = ca_ensure_software()  # this process is its own signer
    if recorded is None:
        raise ServiceUnavailable("The server has no CA key yet (run `manage.py ca init`)")
    return recorded.public_key_pem


@dataclass(frozen=True)
class CAStatus:
    backend: str
    fingerprint: str
    location: str
    issued: int
    revoked: int
    key_reachable: bool | None  # None: not checked
    problem: str = ""


def ca_status(*, check_key: bool) -> CAStatus | None:
    recorded = CertificateAuthority.objects.first()
    if recorded is None:
        return None
    reachable: bool | None = None
    problem = ""
    if check_key:
        try:
            signer = signer_open(recorded.backend)
            ca_verify(signer=signer)
            close = getattr(signer, "close", None)
            if close is not None:
                close()
            reachable = True
        except SignerError as error:
            reachable, problem = False, str(error)
    return CAStatus(
        backend=recorded.backend,
        fingerprint=recorded.fingerprint,
        location=recorded.location,
        issued=Certificate.objects.filter(issued_by_server=True).count(),
        revoked=Certificate.objects.filter(revocation__isnull=False).count(),
        key_reachable=reachable,
        problem=problem,
    )
