"""What a client accepts as the server's recovery key (no stack: the checks themselves)."""

from __future__ import annotations

import datetime
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from client.crypto.keys import generate_private_key
from client.crypto.recovery import recovery_id
from client.errors import (
    CertificateNotIssuedByServerError,
    CertificateUserMismatchError,
    RecoveryKeyChangedError,
    RecoveryKeyPolicyError,
)
from client.keystore import Keystore
from client.ops.recovery import check_offer

SERVER = generate_private_key()


def _cert(
    *, signer: rsa.RSAPrivateKey = SERVER, cn: str | None = None, sign_usage: bool = False
) -> x509.Certificate:
    key = generate_private_key().public_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or recovery_id(key))])
    now = datetime.datetime.now(datetime.UTC)
    usage = x509.KeyUsage(sign_usage, False, True, False, False, False, False, False, False)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(usage, critical=True)
        .sign(signer, hashes.SHA256())
    )


def _caps(cert: x509.Certificate, fingerprint: str | None = None) -> dict:
    der = cert.public_bytes(Encoding.DER)
    return {
        "e2ee-stack": {
            "recovery": {
                "enabled": True,
                "certificate": cert.public_bytes(Encoding.PEM).decode(),
                "fingerprint": fingerprint or hashlib.sha256(der).hexdigest(),
            }
        }
    }


def test_the_honest_offer_is_accepted_and_pinned_then_a_swap_is_refused(tmp_path):
    store = Keystore(tmp_path)
    cert = _cert()
    offer = check_offer(store, _caps(cert), SERVER.public_key())
    assert offer.enabled and offer.user_id == recovery_id(cert.public_key())
    assert check_offer(store, _caps(cert), SERVER.public_key()).enabled  # same pin: fine
    with pytest.raises(RecoveryKeyChangedError):
        check_offer(store, _caps(_cert()), SERVER.public_key())


@pytest.mark.parametrize(
    ("offered", "error"),
    [
        (lambda: _caps(_cert(signer=generate_private_key())), CertificateNotIssuedByServerError),
        (lambda: _caps(_cert(cn="recovery:0000000000000000")), CertificateUserMismatchError),
        (lambda: _caps(_cert(cn="alice")), CertificateUserMismatchError),
        (lambda: _caps(_cert(sign_usage=True)), RecoveryKeyPolicyError),
        (lambda: _caps(_cert(), fingerprint="00" * 32), RecoveryKeyPolicyError),
    ],
    ids=["not the CA", "id not bound to key", "a user id", "may sign", "wrong fingerprint"],
)
def test_bad_offers_are_refused_and_not_pinned(tmp_path, offered, error):
    store = Keystore(tmp_path)
    with pytest.raises(error):
        check_offer(store, offered(), SERVER.public_key())
    assert "certificate" not in store.recovery_record()


def test_nothing_advertised_means_disabled(tmp_path):
    store = Keystore(tmp_path)
    for caps in ({}, {"e2ee-stack": {"recovery": {"enabled": False}}}, {"e2ee-stack": 1}):
        assert not check_offer(store, caps, SERVER.public_key()).enabled
