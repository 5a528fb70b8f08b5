"""What only the PKCS#11 backend does: refuse what the token cannot do, keep the key inside,
reconnect once, reopen after fork, keep the PIN out of errors."""

import dataclasses
import multiprocessing
import os
import secrets

import pkcs11
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo, Prehashed

from hsm.pkcs11 import Pkcs11Config, Pkcs11Signer, pin_read
from hsm.signer import SignerError

pytestmark = pytest.mark.softhsm


@pytest.fixture(scope="module")
def config(softhsm):
    config = Pkcs11Config(
        module=softhsm.module,
        token_label=softhsm.token_label,
        pin_file=softhsm.pin_file,
        key_label="pkcs11-" + secrets.token_hex(4),
    )
    Pkcs11Signer.create(config).close()
    return config


@pytest.fixture
def signer(config):
    opened = Pkcs11Signer.open(config)
    yield opened
    opened.close()


def verify(signer, signature, data=b"data", algorithm=None):
    algorithm = algorithm or hashes.SHA256()
    signer.public_key().verify(signature, data, padding.PKCS1v15(), algorithm)


def test_pss_is_refused_pkcs1v15_signs(signer):
    key = signer.private_key()
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    with pytest.raises(SignerError, match="PKCS#1 v1.5 padding only"):
        key.sign(b"data", pss, hashes.SHA256())
    verify(signer, key.sign(b"data", padding.PKCS1v15(), hashes.SHA256()))


def test_unsupported_hash_and_prehashed_are_refused(signer):
    key = signer.private_key()
    with pytest.raises(SignerError, match="cannot sign with md5"):
        key.sign(b"data", padding.PKCS1v15(), hashes.MD5())
    with pytest.raises(SignerError, match="pre-hashed"):
        key.sign(b"\0" * 32, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    with pytest.raises(SignerError, match="pre-hashed"):
        key.sign(b"\0" * 32, padding.PKCS1v15(), NoDigestInfo())
    signature = key.sign(b"data", padding.PKCS1v15(), hashes.SHA384())
    verify(signer, signature, algorithm=hashes.SHA384())


def test_private_key_cannot_leave_or_decrypt(signer):
    key = signer.private_key()
    with pytest.raises(SignerError, match="not extractable"):
        key.private_numbers()
    with pytest.raises(SignerError, match="not extractable"):
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    with pytest.raises(SignerError, match="cannot decrypt"):
        key.decrypt(b"x" * 256, padding.PKCS1v15())
    assert key.public_key().key_size == 2048  # the public half is readable


def test_token_marks_key_sensitive_and_non_extractable(signer):
    attrs = signer._call(
        lambda key: (key[pkcs11.Attribute.SENSITIVE], key[pkcs11.Attribute.EXTRACTABLE]), "read"
    )
    assert attrs == (True, False)


def test_lost_session_reconnects_once(signer):
    signer._session.close()  # the session vanishes behind the signer's back
    verify(signer, signer.private_key().sign(b"data", padding.PKCS1v15(), hashes.SHA256()))


def test_lost_session_without_way_back_fails_clearly(config, tmp_path, softhsm):
    wrong = tmp_path / "wrong-pin"
    wrong.write_text("0000\n")
    wrong.chmod(0o600)
    signer = Pkcs11Signer.open(config)
    try:
        signer.config = dataclasses.replace(config, pin_file=wrong)  # PIN file replaced
        signer._session.close()
        with pytest.raises(SignerError) as raised:
            signer.private_key().sign(b"data", padding.PKCS1v15(), hashes.SHA256())
        message = str(raised.value)
        assert "could not reconnect" in message and "PIN" in message
        assert softhsm.pin not in message and "0000" not in message
    finally:
        signer.close()


def test_wrong_pin_is_refused_without_echoing_it(config, tmp_path, softhsm):
    wrong = tmp_path / "pin"
    wrong.write_text("123456\n")
    wrong.chmod(0o600)
    with pytest.raises(SignerError, match="was refused") as raised:
        Pkcs11Signer.open(dataclasses.replace(config, pin_file=wrong))
    assert "123456" not in str(raised.value)
    Pkcs11Signer.open(config).close()  # the right PIN works


def test_pin_file_readable_by_others_is_refused(tmp_path, softhsm):
    loose = tmp_path / "pin"
    loose.write_text(softhsm.pin + "\n")
    loose.chmod(0o644)
    with pytest.raises(SignerError, match="readable by others") as raised:
        pin_read(loose)
    assert softhsm.pin not in str(raised.value)
    loose.chmod(0o600)
    assert pin_read(loose) == softhsm.pin


def test_missing_key_and_missing_module_are_clear(config):
    with pytest.raises(SignerError, match="no RSA key labelled"):
        Pkcs11Signer.open(dataclasses.replace(config, key_label="absent"))
    with pytest.raises(SignerError, match="PKCS11_MODULE is not set"):
        Pkcs11Signer.open(dataclasses.replace(config, module=""))
    Pkcs11Signer.open(config).close()


def _sign_in_child(signer, queue):
    try:
        signature = signer.private_key().sign(b"child", padding.PKCS1v15(), hashes.SHA256())
        queue.put((os.getpid(), signature))
    except Exception as error:  # report to the parent
        queue.put((os.getpid(), repr(error)))


def test_signer_opened_before_fork_reopens_in_the_child(signer):
    verify(signer, signer.private_key().sign(b"data", padding.PKCS1v15(), hashes.SHA256()))
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_sign_in_child, args=(signer, queue))
    child.start()
    pid, signature = queue.get(timeout=30)
    child.join(timeout=30)
    assert pid != os.getpid() and isinstance(signature, bytes), signature
    verify(signer, signature, b"child")
    verify(signer, signer.private_key().sign(b"data", padding.PKCS1v15(), hashes.SHA256()))
