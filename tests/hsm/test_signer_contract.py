"""One contract for every Signer backend; `cryptography` is the independent verifier."""

import datetime
import secrets

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from hsm.pkcs11 import Pkcs11Config, Pkcs11Signer
from hsm.signer import Signer, SignerError, key_fingerprint, public_key_pem, sign_bytes
from hsm.software import SoftwareSigner


@pytest.fixture(params=["software", pytest.param("pkcs11", marks=pytest.mark.softhsm)])
def signer(request, tmp_path):
    if request.param == "software":
        yield SoftwareSigner.create(tmp_path / "ca.key.pem")
        return
    hsm = request.getfixturevalue("softhsm")
    config = Pkcs11Config(
        module=hsm.module,
        token_label=hsm.token_label,
        pin_file=hsm.pin_file,
        key_label="contract-" + secrets.token_hex(4),
    )
    created = Pkcs11Signer.create(config)
    yield created
    created.close()


def test_is_a_signer_with_a_named_backend(signer):
    assert isinstance(signer, Signer)
    assert signer.backend in {"software", "pkcs11"}


def test_key_is_rsa_2048_and_private_matches_public(signer):
    key = signer.private_key()
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    assert key.public_key().public_numbers() == signer.public_key().public_numbers()
    assert signer.public_key().public_numbers().e == 65537


def test_sign_bytes_verifies_with_cryptography(signer):
    data = b"audit checkpoint " + secrets.token_bytes(16)
    signature = sign_bytes(signer, data)
    signer.public_key().verify(signature, data, padding.PKCS1v15(), hashes.SHA256())


def test_signature_over_other_data_does_not_verify(signer):
    from cryptography.exceptions import InvalidSignature

    signature = sign_bytes(signer, b"one")
    with pytest.raises(InvalidSignature):
        signer.public_key().verify(signature, b"two", padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize("algorithm", [hashes.SHA256(), hashes.SHA1(), hashes.SHA512()])
def test_pkcs1v15_with_each_supported_hash(signer, algorithm):
    signature = signer.private_key().sign(b"data", padding.PKCS1v15(), algorithm)
    signer.public_key().verify(signature, b"data", padding.PKCS1v15(), algorithm)


def test_certificate_builder_signs_unchanged(signer):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
    user_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(user_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(signer.private_key(), hashes.SHA256())
    )
    reparsed = x509.load_der_x509_certificate(cert.public_bytes(serialization.Encoding.DER))
    signer.public_key().verify(
        reparsed.signature, reparsed.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256()
    )
    assert reparsed.public_key().public_numbers() == user_key.public_key().public_numbers()


def test_public_key_pem_and_fingerprint_are_stable(signer):
    pem = public_key_pem(signer)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert public_key_pem(signer) == pem
    assert len(key_fingerprint(signer.public_key())) == 64


def test_repr_names_no_secret(signer, request):
    text = repr(signer) + repr(signer.private_key())
    if signer.backend == "pkcs11":
        assert request.getfixturevalue("softhsm").pin not in text
    assert "PRIVATE KEY" not in text


def test_refuses_to_overwrite_an_existing_key(signer, tmp_path):
    if signer.backend == "software":
        with pytest.raises(SignerError, match="refusing to overwrite"):
            SoftwareSigner.create(signer.path)
    else:
        with pytest.raises(SignerError, match="refusing to overwrite"):
            Pkcs11Signer.create(signer.config)
