"""Fixtures for the client core: the shared Nextcloud vectors and freshly made test identities."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from client import crypto

# tests/client/conftest.py → project root is parents[2]; vectors live beside the project.
VECTORS = (Path(__file__).resolve().parents[2] / ".." / "shared" / "vectors").resolve()
#: A moment inside every vector certificate's validity window.
NOW = datetime(2026, 11, 1, tzinfo=UTC)


class Vectors:
    root = VECTORS

    def path(self, *parts: str) -> Path:
        return VECTORS.joinpath(*parts)

    def text(self, *parts: str) -> str:
        return self.path(*parts).read_text(encoding="utf-8")

    def bytes(self, *parts: str) -> bytes:
        return self.path(*parts).read_bytes()

    def json(self, *parts: str) -> Any:
        return json.loads(self.text(*parts))


@pytest.fixture(scope="session")
def vectors() -> Vectors:
    if not VECTORS.is_dir():
        pytest.fail(f"shared vectors not found at {VECTORS}")
    return Vectors()


@dataclass(frozen=True)
class Identity:
    """A user with a key pair and a certificate issued by a test server key (serial 0, like
    Nextcloud: issuer = subject, signed by the server key)."""

    user_id: str
    private_key: rsa.RSAPrivateKey
    certificate_pem: str

    @property
    def certificate(self) -> crypto.Certificate:
        return crypto.load_certificate(self.certificate_pem)

    @property
    def recipient(self) -> crypto.Recipient:
        return crypto.Recipient(self.user_id, self.certificate_pem)


@dataclass(frozen=True)
class TestServer:
    key: rsa.RSAPrivateKey

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.key.public_key()

    def issue(
        self,
        user_id: str,
        *,
        cn: str | None = None,
        private_key: rsa.RSAPrivateKey | None = None,
        not_before: datetime = NOW - timedelta(days=1),
        days: int = 7300,
        serial: int = 0,
        hash_name: str = "sha256",
    ) -> Identity:
        """Issue a certificate the way the Nextcloud server does: serial 0, issuer DN =
        subject DN, CA:TRUE, signed with the server key. Built with asn1crypto because
        cryptography refuses to build serial 0."""
        private_key = private_key or _key_pool(user_id)
        name = asn1_x509.Name.build({"common_name": cn if cn is not None else user_id})
        spki = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        algorithm = {"algorithm": f"{hash_name}_rsa"}
        tbs = asn1_x509.TbsCertificate(
            {
                "version": "v3",
                "serial_number": serial,
                "signature": algorithm,
                "issuer": name,
                "validity": {
                    "not_before": asn1_x509.Time({"utc_time": not_before}),
                    "not_after": asn1_x509.Time({"utc_time": not_before + timedelta(days=days)}),
                },
                "subject": name,
                "subject_public_key_info": asn1_keys.PublicKeyInfo.load(spki),
                "extensions": [
                    {"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": True}}
                ],
            }
        )
        hash_cls = {"sha256": hashes.SHA256, "sha1": hashes.SHA1}[hash_name]
        signature = self.key.sign(tbs.dump(), padding.PKCS1v15(), hash_cls())
        cert = asn1_x509.Certificate(
            {"tbs_certificate": tbs, "signature_algorithm": algorithm, "signature_value": signature}
        )
        pem = asn1_pem.armor("CERTIFICATE", cert.dump()).decode("ascii")
        return Identity(user_id, private_key, pem)


@cache
def _key_pool(name: str) -> rsa.RSAPrivateKey:
    # Key generation costs ~40 ms; one key per name for the whole session is plenty.
    return crypto.generate_private_key()


@pytest.fixture(scope="session")
def server() -> TestServer:
    return TestServer(_key_pool("server"))


@pytest.fixture(scope="session")
def rogue_server() -> TestServer:
    return TestServer(_key_pool("rogue-server"))


@pytest.fixture(scope="session")
def alice(server: TestServer) -> Identity:
    return server.issue("alice")


@pytest.fixture(scope="session")
def bob(server: TestServer) -> Identity:
    return server.issue("bob")
