"""The 12-word mnemonic and the private key wrapped with it (PROTOCOL.md §1.2).

The same wrapping, with 24 words, protects the offline recovery key (:mod:`.recovery`)."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from mnemonic import Mnemonic

from client.crypto.keys import load_private_key, private_key_to_pem
from client.errors import FormatError, WrongMnemonic
from client.protocol import WrappedPrivateKey, parse_wrapped_private_key

MNEMONIC_WORDS = 12
#: The offline recovery key's phrase: 24 words (264 bits), for paper storage.
RECOVERY_WORDS = 24
SALT_LENGTH = 40
IV_LENGTH = 12
WRAPPING_KEY_LENGTH = 32


class Kdf(Enum):
    """PBKDF2 variants in the order readers try them (current first)."""

    SHA256_600000 = ("sha256", 600_000)
    SHA1_1024 = ("sha1", 1024)
    SHA1_600000 = ("sha1", 600_000)

    @property
    def is_current(self) -> bool:
        return self is Kdf.SHA256_600000


@cache
def wordlist() -> tuple[str, ...]:
    """The BIP-39 English word list (2048 words), from the `mnemonic` package."""
    words = tuple(Mnemonic("english").wordlist)
    if len(set(words)) != 2048:  # a broken package must not silently weaken mnemonics
        raise RuntimeError("BIP-39 English word list is not 2048 distinct words")
    return words


def generate_mnemonic(words: int = MNEMONIC_WORDS) -> str:
    """``words`` words (default 12: 132 bits) drawn uniformly and independently from the
    BIP-39 list."""
    if words < MNEMONIC_WORDS:
        raise ValueError(f"a mnemonic has at least {MNEMONIC_WORDS} words")
    return mnemonic_from_indices([secrets.randbelow(2048) for _ in range(words)])


def mnemonic_from_indices(indices: Sequence[int]) -> str:
    words = wordlist()
    return " ".join(words[i] for i in indices)


def mnemonic_password(mnemonic: str) -> bytes:
    """All whitespace removed, lower-cased, UTF-8: the PBKDF2 password every client uses."""
    return "".join(mnemonic.split()).lower().encode("utf-8")


def derive_wrapping_key(mnemonic: str, salt: bytes, kdf: Kdf = Kdf.SHA256_600000) -> bytes:
    algorithm = hashes.SHA256() if kdf.value[0] == "sha256" else hashes.SHA1()  # noqa: S303
    return PBKDF2HMAC(
        algorithm=algorithm, length=WRAPPING_KEY_LENGTH, salt=salt, iterations=kdf.value[1]
    ).derive(mnemonic_password(mnemonic))


def wrap_private_key(private_key: rsa.RSAPrivateKey, mnemonic: str) -> WrappedPrivateKey:
    """Wrap with PBKDF2-SHA256/600000, a fresh 40-byte salt and a fresh 12-byte IV."""
    return _wrap_private_key_from_parts(
        private_key, mnemonic, salt=os.urandom(SALT_LENGTH), iv=os.urandom(IV_LENGTH)
    )


def _wrap_private_key_from_parts(
    private_key: rsa.RSAPrivateKey,
    mnemonic: str,
    *,
    salt: bytes,
    iv: bytes,
    kdf: Kdf = Kdf.SHA256_600000,
) -> WrappedPrivateKey:
    # Historic quirk (RFC issue #67): the PEM text is base64-encoded once more before encryption.
    plaintext = base64.b64encode(private_key_to_pem(private_key).encode("ascii"))
    key = derive_wrapping_key(mnemonic, salt, kdf)
    return WrappedPrivateKey(AESGCM(key).encrypt(iv, plaintext, None), iv, salt)


@dataclass(frozen=True)
class UnwrappedPrivateKey:
    private_key: rsa.RSAPrivateKey = field(repr=False)
    kdf: Kdf

    @property
    def needs_rewrap(self) -> bool:
        """True when a legacy KDF opened it: re-wrap locally with the current one (THREATS K7)."""
        return not self.kdf.is_current


def unwrap_private_key(wrapped: WrappedPrivateKey | str, mnemonic: str) -> UnwrappedPrivateKey:
    """Try every KDF variant; the GCM tag tells which matched. Raises :class:`WrongMnemonic`."""
    if isinstance(wrapped, str):
        wrapped = parse_wrapped_private_key(wrapped)
    for kdf in Kdf:
        key = derive_wrapping_key(mnemonic, wrapped.salt, kdf)
        try:
            plaintext = AESGCM(key).decrypt(wrapped.iv, wrapped.ciphertext, None)
        except InvalidTag:
            continue
        return UnwrappedPrivateKey(_private_key_from_plaintext(plaintext), kdf)
    raise WrongMnemonic("the mnemonic does not open this private key")


def _private_key_from_plaintext(plaintext: bytes) -> rsa.RSAPrivateKey:
    # Authentic by now (the tag verified); accept base64(PEM) and, leniently, the bare PEM.
    if plaintext.lstrip().startswith(b"-----BEGIN"):
        return load_private_key(plaintext)
    try:
        pem = base64.b64decode(b"".join(plaintext.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError("unwrapped private key is not base64") from exc
    return load_private_key(pem)
