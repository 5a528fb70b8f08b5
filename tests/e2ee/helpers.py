"""Client-side material for server tests: made here with `cryptography`, as a client would."""

import base64
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tests.conftest import basic_auth

API = "/ocs/v2.php/apps/end_to_end_encryption/api/v2"
E2EE_HEADERS = {
    "OCS-APIRequest": "true",
    "X-E2EE-SUPPORTED": "true",
    "User-Agent": "e2ee-stack-tests/1.0",
}


def headers(user: str, password: str, **extra: str) -> dict[str, str]:
    return {**E2EE_HEADERS, **basic_auth(user, password), **extra}


def make_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def make_csr(cn: str, key=None, *, hash_algorithm=None) -> str:
    key = key or make_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Nextcloud"),
                    x509.NameAttribute(NameOID.COMMON_NAME, cn),
                ]
            )
        )
        .sign(key, hash_algorithm or hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def make_ec_csr(cn: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def wrapped_private_key(iv_len: int = 12, salt_len: int = 40) -> str:
    """The `ct|iv|salt` shape; the server must treat the content as opaque."""
    parts = (os.urandom(1200), os.urandom(iv_len), os.urandom(salt_len))
    return "|".join(base64.b64encode(p).decode() for p in parts)


def dav_url(uid: str, path: str = "") -> str:
    return f"/remote.php/dav/files/{uid}/{path.lstrip('/')}"


def file_id_of(response) -> int:
    """The numeric file id from an OC-FileId header ("<8 digits><instance id>")."""
    return int(response.headers["OC-FileId"][:8])


def v2_document(counter: int = 1, marker: str = "x") -> str:
    """An opaque stand-in for a v2 metadata document: the server must not judge its content."""
    return (
        '{"metadata":{"ciphertext":"' + marker + '","nonce":"bm9uY2U=","authenticationTag":"dGFn"},'
        '"users":[],"version":"2.0","counter-hint":' + str(counter) + "}"
    )


V1_DOCUMENT = '{"metadata":{"metadataKey":"a2V5","checksum":"00","version":1.2},"files":{}}'
