"""Software backend: an RSA key in a PEM file readable by its owner only."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .signer import SignerError

KEY_BITS = 2048


class SoftwareSigner:
    backend = "software"

    def __init__(self, key: rsa.RSAPrivateKey, path: Path):
        self._key = key
        self.path = path

    def __repr__(self) -> str:
        return f"SoftwareSigner(path={str(self.path)!r})"

    @classmethod
    def create(cls, path: Path, *, bits: int = KEY_BITS) -> SoftwareSigner:
        """Generate a key into `path` (0600); refuses to overwrite an existing key."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise SignerError(
                f"a CA key already exists at {path}; refusing to overwrite it"
            ) from None
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        return cls(key, path)

    @classmethod
    def load(cls, path: Path) -> SoftwareSigner:
        try:
            mode = path.stat().st_mode & 0o777
            data = path.read_bytes()
        except FileNotFoundError:
            raise SignerError(f"no CA key at {path}") from None
        if mode & 0o077:
            raise SignerError(f"CA key {path} is readable by others (mode {mode:o}); chmod 600 it")
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except ValueError:
            raise SignerError(f"CA key {path} is not a PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SignerError(f"CA key {path} is not an RSA key")
        return cls(key, path)

    @classmethod
    def load_or_create(cls, path: Path) -> SoftwareSigner:
        if path.exists():
            return cls.load(path)
        try:
            return cls.create(path)
        except SignerError:  # another process created it first
            return cls.load(path)

    def private_key(self) -> rsa.RSAPrivateKey:
        return self._key

    def public_key(self) -> rsa.RSAPublicKey:
        return self._key.public_key()
