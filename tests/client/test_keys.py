"""RSA keys, CSRs, certificate checks, OAEP, mnemonic and private-key wrapping."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from client import crypto, protocol
from client.crypto.keywrap import _wrap_private_key_from_parts, mnemonic_from_indices, wordlist
from client.errors import (
    CertificateKeyMismatchError,
    CertificateNotIssuedByServerError,
    CertificateNotValidNowError,
    CertificateUserMismatchError,
    FormatError,
    KeyMismatchError,
    KeyUnwrapError,
    WrongMnemonic,
)
from tests.client.conftest import NOW

MNEMONIC = "deputy abandon betray oyster tomato party prevent obvious final erase farm toilet"


def test_generated_key_is_rsa_2048_e65537():
    key = crypto.generate_private_key()
    assert key.key_size == 2048
    assert key.public_key().public_numbers().e == 65537


def test_csr_has_user_id_as_cn_and_verifies(alice):
    csr = x509.load_pem_x509_csr(crypto.build_csr(alice.private_key, "alice").encode())
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=alice"
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA256)
    assert csr.public_key().public_numbers() == alice.private_key.public_key().public_numbers()


def test_csr_for_link_share_user():
    key = crypto.generate_private_key()
    csr = x509.load_pem_x509_csr(crypto.build_csr(key, "s:Abc123").encode())
    assert csr.subject.rfc4514_string() == "CN=s:Abc123"


def test_pem_round_trips_and_lenient_loading(alice):
    pem = crypto.private_key_to_pem(alice.private_key)
    assert crypto.load_private_key(pem).private_numbers() == alice.private_key.private_numbers()
    # Android: 65-column lines, no trailing newline; and bare base64 DER.
    body = "".join(pem.splitlines()[1:-1])
    android = (
        "-----BEGIN PRIVATE KEY-----\n"
        + "\n".join(body[i : i + 65] for i in range(0, len(body), 65))
        + "\n-----END PRIVATE KEY-----"
    )
    assert crypto.load_private_key(android).private_numbers() == alice.private_key.private_numbers()
    assert crypto.load_private_key(body).private_numbers() == alice.private_key.private_numbers()
    public_pem = crypto.public_key_to_pem(alice.private_key.public_key())
    assert crypto.load_public_key(public_pem).public_numbers() == (
        alice.private_key.public_key().public_numbers()
    )


@pytest.mark.parametrize(
    "bad", ["", "nonsense", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"]
)
def test_load_private_key_rejects_garbage(bad):
    with pytest.raises(FormatError):
        crypto.load_private_key(bad)


def test_load_private_key_rejects_a_certificate(alice):
    with pytest.raises(FormatError):
        crypto.load_private_key(alice.certificate_pem)


def test_oaep_round_trip_and_wrong_key(alice, bob):
    wrapped = crypto.rsa_wrap(alice.private_key.public_key(), b"\x01" * 16)
    assert crypto.rsa_unwrap(alice.private_key, wrapped) == b"\x01" * 16
    with pytest.raises(KeyUnwrapError):
        crypto.rsa_unwrap(bob.private_key, wrapped)
    tampered = bytearray(wrapped)
    tampered[-1] ^= 1
    with pytest.raises(KeyUnwrapError):
        crypto.rsa_unwrap(alice.private_key, bytes(tampered))


def test_check_key_pair(alice, bob):
    crypto.check_key_pair(alice.private_key, alice.private_key.public_key())
    with pytest.raises(KeyMismatchError):
        crypto.check_key_pair(alice.private_key, bob.private_key.public_key())


# --- certificates ---------------------------------------------------------------------------


def test_serial_zero_certificate_passes_every_check(server, alice):
    cert = alice.certificate
    assert cert.serial_number == 0
    crypto.verify_certificate(
        cert,
        server_public_key=server.public_key,
        user_id="alice",
        now=NOW,
        expected_public_key=alice.private_key.public_key(),
    )
    assert crypto.load_certificate(cert.pem) == cert
    assert "der" not in repr(cert)


def test_sha1_signed_certificate_verifies(server):
    ident = server.issue("carol", hash_name="sha1")
    assert ident.certificate.signature_hash == "sha1"
    crypto.verify_certificate(
        ident.certificate, server_public_key=server.public_key, user_id="carol", now=NOW
    )


def test_certificate_from_another_server_is_refused(rogue_server, server):
    forged = rogue_server.issue("alice")
    with pytest.raises(CertificateNotIssuedByServerError):
        crypto.verify_certificate(
            forged.certificate, server_public_key=server.public_key, user_id="alice", now=NOW
        )


def test_certificate_cn_must_equal_user_id(server):
    mallory = server.issue("bob", cn="mallory")
    with pytest.raises(CertificateUserMismatchError):
        crypto.verify_certificate(
            mallory.certificate, server_public_key=server.public_key, user_id="bob", now=NOW
        )


@pytest.mark.parametrize("offset", [timedelta(days=-2), timedelta(days=7301)])
def test_certificate_outside_validity_is_refused(server, offset):
    ident = server.issue("dave", not_before=NOW - timedelta(days=1))
    with pytest.raises(CertificateNotValidNowError):
        crypto.verify_certificate(
            ident.certificate, server_public_key=server.public_key, user_id="dave", now=NOW + offset
        )
    # Inside the 60 s skew allowance it still passes.
    crypto.verify_certificate(
        ident.certificate,
        server_public_key=server.public_key,
        user_id="dave",
        now=NOW - timedelta(days=1, seconds=30),
    )


def test_certificate_for_a_different_key_is_refused(server, alice, bob):
    with pytest.raises(CertificateKeyMismatchError):
        crypto.verify_certificate(
            alice.certificate,
            server_public_key=server.public_key,
            user_id="alice",
            now=NOW,
            expected_public_key=bob.private_key.public_key(),
        )


def test_verify_certificate_needs_an_aware_clock(server, alice):
    with pytest.raises(ValueError):
        crypto.verify_certificate(
            alice.certificate,
            server_public_key=server.public_key,
            user_id="alice",
            now=NOW.replace(tzinfo=None),
        )


# --- mnemonic -------------------------------------------------------------------------------


def test_wordlist_is_bip39_english():
    words = wordlist()
    assert len(words) == 2048
    assert words[0] == "abandon" and words[-1] == "zoo"


def test_generated_mnemonic_is_12_list_words():
    phrases = {crypto.generate_mnemonic() for _ in range(20)}
    assert len(phrases) == 20
    for phrase in phrases:
        words = phrase.split(" ")
        assert len(words) == 12
        assert set(words) <= set(wordlist())


def test_mnemonic_from_indices_is_deterministic():
    assert mnemonic_from_indices([0, 1, 2047]) == "abandon ability zoo"


def test_password_strips_all_whitespace_and_lowercases():
    assert crypto.mnemonic_password(" Deputy\tabandon\n BETRAY ") == b"deputyabandonbetray"


# --- private-key wrapping --------------------------------------------------------------------


def test_wrap_round_trip_uses_current_parameters(alice):
    wrapped = crypto.wrap_private_key(alice.private_key, MNEMONIC)
    assert len(wrapped.iv) == 12 and len(wrapped.salt) == 40
    text = wrapped.serialize()
    parts = text.split("|")
    assert len(parts) == 3
    assert [len(base64.b64decode(p)) for p in parts[1:]] == [12, 40]
    unwrapped = crypto.unwrap_private_key(text, MNEMONIC.upper().replace(" ", "  "))
    assert unwrapped.kdf is crypto.Kdf.SHA256_600000
    assert not unwrapped.needs_rewrap
    assert unwrapped.private_key.private_numbers() == alice.private_key.private_numbers()
    assert "private_key" not in repr(unwrapped)


def test_every_wrap_uses_fresh_salt_and_iv(alice):
    a = crypto.wrap_private_key(alice.private_key, MNEMONIC)
    b = crypto.wrap_private_key(alice.private_key, MNEMONIC)
    assert a.salt != b.salt and a.iv != b.iv and a.ciphertext != b.ciphertext


def test_pinned_wrap_is_deterministic_and_plaintext_is_base64_pem(alice):
    salt, iv = b"s" * 40, b"i" * 12
    a = _wrap_private_key_from_parts(alice.private_key, MNEMONIC, salt=salt, iv=iv)
    b = _wrap_private_key_from_parts(alice.private_key, MNEMONIC, salt=salt, iv=iv)
    assert a == b
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = crypto.keywrap.derive_wrapping_key(MNEMONIC, salt)
    plaintext = AESGCM(key).decrypt(iv, a.ciphertext, None)
    assert base64.b64decode(plaintext).decode() == crypto.private_key_to_pem(alice.private_key)


@pytest.mark.parametrize("kdf", list(crypto.Kdf))
def test_every_legacy_kdf_unwraps(alice, kdf):
    wrapped = _wrap_private_key_from_parts(
        alice.private_key, MNEMONIC, salt=b"x" * 40, iv=b"y" * 12, kdf=kdf
    )
    assert crypto.unwrap_private_key(wrapped, MNEMONIC).kdf is kdf


def test_legacy_fa_separator_and_16_byte_iv(alice):
    wrapped = _wrap_private_key_from_parts(
        alice.private_key, MNEMONIC, salt=b"z" * 40, iv=b"w" * 16, kdf=crypto.Kdf.SHA1_1024
    )
    text = "fA==".join(
        protocol.b64encode(p) for p in (wrapped.ciphertext, wrapped.iv, wrapped.salt)
    )
    parsed = protocol.parse_wrapped_private_key(text)
    assert parsed.legacy_separator
    assert crypto.unwrap_private_key(parsed, MNEMONIC).kdf is crypto.Kdf.SHA1_1024


def test_two_part_form_uses_the_fixed_salt(alice):
    wrapped = _wrap_private_key_from_parts(
        alice.private_key,
        MNEMONIC,
        salt=protocol.LEGACY_FIXED_SALT,
        iv=b"v" * 16,
        kdf=crypto.Kdf.SHA1_1024,
    )
    text = protocol.b64encode(wrapped.ciphertext) + "fA==" + protocol.b64encode(wrapped.iv)
    parsed = protocol.parse_wrapped_private_key(text)
    assert parsed.two_part and parsed.salt == protocol.LEGACY_FIXED_SALT
    unwrapped = crypto.unwrap_private_key(parsed, MNEMONIC)
    assert unwrapped.private_key.private_numbers() == alice.private_key.private_numbers()


def test_wrong_mnemonic_raises_wrong_mnemonic(alice):
    text = crypto.wrap_private_key(alice.private_key, MNEMONIC).serialize()
    with pytest.raises(WrongMnemonic):
        crypto.unwrap_private_key(text, MNEMONIC.replace("deputy", "zoo"))


@pytest.mark.parametrize("part", [0, 1, 2])
def test_tampered_wrapped_key_raises_wrong_mnemonic(alice, part):
    wrapped = _wrap_private_key_from_parts(
        alice.private_key, MNEMONIC, salt=b"a" * 40, iv=b"b" * 12, kdf=crypto.Kdf.SHA1_1024
    )
    parts = [bytearray(p) for p in (wrapped.ciphertext, wrapped.iv, wrapped.salt)]
    parts[part][0] ^= 1
    text = "|".join(protocol.b64encode(bytes(p)) for p in parts)
    with pytest.raises(WrongMnemonic):
        crypto.unwrap_private_key(text, MNEMONIC)


@pytest.mark.parametrize(
    "text", ["", "abc", "a|b", "QUJD|QUJD|QUJD|QUJD", "!!|QUJD|QUJD", "QQ==|QUJD|QUJD"]
)
def test_malformed_wrapped_key_is_a_format_error(text):
    with pytest.raises(FormatError):
        protocol.parse_wrapped_private_key(text)
