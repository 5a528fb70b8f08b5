"""A fresh SoftHSM2 token with random PINs, configured through SOFTHSM2_CONF in a temp dir.

One token per test session (`softhsm` fixture in tests/hsm and tests/certificates); processes
started by the tests inherit SOFTHSM2_CONF and so see the same token."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
)


@dataclass(frozen=True)
class SoftHSM:
    module: str
    conf: Path
    token_label: str
    pin_file: Path
    pin: str  # tests only: to prove it never leaks

    def env(self, key_label: str = "e2ee-ca") -> dict[str, str]:
        """What a signing worker gets: backend, module, token, PIN file (never the PIN)."""
        return {
            "SOFTHSM2_CONF": str(self.conf),
            "E2EE_SIGNER": "pkcs11",
            "PKCS11_MODULE": self.module,
            "PKCS11_TOKEN_LABEL": self.token_label,
            "PKCS11_PIN_FILE": str(self.pin_file),
            "PKCS11_KEY_LABEL": key_label,
        }


def module_path() -> str | None:
    return next((m for m in MODULE_CANDIDATES if Path(m).exists()), None)


def softhsm_token(base: Path) -> Iterator[SoftHSM]:
    module = module_path()
    require(bool(module) and shutil.which("softhsm2-util") is not None, "SoftHSM2")
    assert module is not None
    tokens = base / "tokens"
    tokens.mkdir(parents=True)
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    label = "e2ee-test-" + secrets.token_hex(4)
    pin, so_pin = secrets.token_hex(8), secrets.token_hex(8)
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            pin,
            "--so-pin",
            so_pin,
        ],
        check=True,
        capture_output=True,
    )
    pin_file = base / "pin"
    fd = os.open(pin_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(pin + "\n")
    try:
        yield SoftHSM(module=module, conf=conf, token_label=label, pin_file=pin_file, pin=pin)
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous


_tokens: list[SoftHSM] = []


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory) -> Iterator[SoftHSM]:
    """One token per test process: SoftHSM reads SOFTHSM2_CONF once, at C_Initialize, so every
    conftest that imports this fixture must share the first token."""
    if _tokens:
        yield _tokens[0]
        return
    tokens = softhsm_token(tmp_path_factory.mktemp("softhsm"))
    _tokens.append(next(tokens))
    yield _tokens[0]
