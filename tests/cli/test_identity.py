"""login, init, add-device, mnemonic show, status against the live stack (flows A and B)."""

from __future__ import annotations

import json
import re
import stat

import pytest

pytestmark = pytest.mark.e2e


def test_first_device_then_second_device(make_device, tmp_path):
    laptop = make_device("ida")
    words_file = tmp_path / "words"
    laptop.ok("init", "--mnemonic-out", words_file)
    words = words_file.read_text().split()
    assert len(words) == 12
    assert stat.S_IMODE(words_file.stat().st_mode) == 0o600
    for secret in ("account.json", "private-key.pem", "mnemonic.txt"):
        assert stat.S_IMODE((laptop.config / secret).stat().st_mode) == 0o600
    assert stat.S_IMODE(laptop.config.stat().st_mode) == 0o700
    assert laptop.ok("mnemonic", "show").stdout.split() == words

    phone = make_device("ida", "phone")
    phone.ok("add-device", "--mnemonic-file", words_file)
    assert phone.ok("mnemonic", "show").stdout.split() == words
    laptop_status = json.loads(laptop.ok("--json", "status").stdout)
    phone_status = json.loads(phone.ok("--json", "status").stdout)
    assert laptop_status["fingerprint"] == phone_status["fingerprint"]
    assert phone_status["keys_on_server"] and phone_status["device_has_key"]
    assert phone_status["recovery_key"] is None
    assert "pinned" in phone.ok("status").stdout


def test_wrong_mnemonic_refused_with_exit_3(make_device, tmp_path):
    first = make_device("ivo")
    words_file = tmp_path / "words"
    first.ok("init", "--mnemonic-out", words_file)
    words = words_file.read_text().split()
    wrong = tmp_path / "wrong"
    wrong.write_text(" ".join(words[1:] + words[:1]))
    second = make_device("ivo", "phone")
    result = second.fails(3, "add-device", "--mnemonic-file", wrong)
    assert "WrongMnemonic" in result.stderr
    message = "the mnemonic does not open this private key"
    assert message in result.stderr
    # BIP-39 words are ordinary English ("open", "key", "this"): none may appear outside the
    # fixed message, as a whole word.
    said = set(re.findall(r"[a-z]+", result.stderr.replace(message, "").lower()))
    assert not said & set(words)
    assert not (second.config / "private-key.pem").exists()
    second.ok("add-device", "--mnemonic-file", words_file)  # twin: the right words


def test_init_twice_and_add_device_without_keys_are_usage_errors(make_device, tmp_path):
    device = make_device("ina")
    device.fails(2, "add-device", "--mnemonic-file", _words(tmp_path))
    device.ok("init", "--mnemonic-out", tmp_path / "w")
    device.fails(2, "init")
    other = make_device("ina", "tablet")
    assert "add-device" in other.fails(2, "init").stderr


def test_login_refuses_bad_password_and_commands_need_login(make_device, stack, tmp_path):
    device = make_device("iris", login=False)
    bad = tmp_path / "bad"
    bad.write_text("not the password")
    device.fails(1, "login", stack.base_url, "--user", "iris", "--password-file", bad)
    device.fails(2, "status")
    device.login()  # twin
    device.ok("status")


def test_changed_server_key_is_refused(make_device, tmp_path):
    device = make_device("ian")
    pinned = device.config / "server-key.pem"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    original = pinned.read_text()
    pinned.write_text(
        other.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    )
    result = device.fails(
        3,
        "login",
        device.stack.base_url,
        "--user",
        "ian",
        "--password-file",
        device.config.parent / "e2ee.password",
    )
    assert "ServerKeyChangedError" in result.stderr
    # and init refuses a certificate that the pinned key did not issue
    assert "CertificateNotIssuedByServerError" in device.fails(3, "init").stderr
    pinned.write_text(original)
    device.ok("init", "--mnemonic-out", tmp_path / "w")  # twin: the real key


def _words(tmp_path):
    path = tmp_path / "some-words"
    path.write_text("abandon " * 11 + "about")
    return path
