"""OC-Checksum headers ("SHA1:<hex>", Nextcloud's format): parsing and streaming verification."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .errors import ChecksumMismatch, ChecksumUnsupported


class _Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


class _Adler32:
    def __init__(self) -> None:
        self._value = 1

    def update(self, data: bytes | memoryview) -> None:
        self._value = zlib.adler32(data, self._value)

    def hexdigest(self) -> str:
        return f"{self._value:08x}"


_ALGORITHMS: dict[str, Callable[[], _Hasher]] = {
    "MD5": lambda: hashlib.md5(usedforsecurity=False),
    "SHA1": lambda: hashlib.sha1(usedforsecurity=False),
    "SHA256": hashlib.sha256,
    "ADLER32": _Adler32,
}
_HEX_LENGTHS = {"MD5": 32, "SHA1": 40, "SHA256": 64, "ADLER32": 8}


@dataclass(frozen=True)
class Checksum:
    algorithm: str  # upper case, e.g. "SHA1"
    hexdigest: str  # lower case

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest}"


def checksum_parse(header: str) -> Checksum:
    """Parse one "TYPE:hex" value; raises ChecksumUnsupported for anything we cannot verify."""
    algorithm, sep, digest = header.strip().partition(":")
    algorithm = algorithm.upper().replace("-", "")
    digest = digest.strip().lower()
    if not sep or algorithm not in _ALGORITHMS:
        raise ChecksumUnsupported(f"unsupported checksum type {algorithm!r}")
    if len(digest) != _HEX_LENGTHS[algorithm] or any(c not in "0123456789abcdef" for c in digest):
        raise ChecksumUnsupported("malformed checksum value")
    return Checksum(algorithm, digest)


class ChecksumVerifier:
    """Hashes a stream as it passes; `verify` raises ChecksumMismatch."""

    def __init__(self, expected: Checksum) -> None:
        self.expected = expected
        self._hash = _ALGORITHMS[expected.algorithm]()

    def update(self, data: bytes | memoryview) -> None:
        self._hash.update(data)

    def verify(self) -> None:
        if self._hash.hexdigest() != self.expected.hexdigest:
            raise ChecksumMismatch()
