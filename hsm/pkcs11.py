"""PKCS#11 backend (python-pkcs11): the CA key is generated inside a token and never leaves it.

`Pkcs11Signer.private_key()` returns a `cryptography` `RSAPrivateKey` whose `sign()` runs
`CKM_SHA*_RSA_PKCS` in the token, so `CertificateBuilder.sign()` works unchanged.

Rules the backend keeps:
- nothing opens at import; a signer opens its own session in the process that uses it, and a
  signer inherited over `fork()` reopens in the child before its first call;
- python-pkcs11 + SoftHSM2 are not thread-safe: every token call runs behind one lock;
- a lost session or token error reconnects once, then raises `SignerError`;
- the PIN is read from its file at login and not kept; it never appears in a repr or an error.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pkcs11
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo, Prehashed
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11

from .signer import SignerError

KEY_BITS = 2048
DEFAULT_KEY_LABEL = "e2ee-ca"

_MECHANISMS: dict[type[hashes.HashAlgorithm], Mechanism] = {
    hashes.SHA1: Mechanism.SHA1_RSA_PKCS,
    hashes.SHA256: Mechanism.SHA256_RSA_PKCS,
    hashes.SHA384: Mechanism.SHA384_RSA_PKCS,
    hashes.SHA512: Mechanism.SHA512_RSA_PKCS,
}

# Errors after which a fresh session may succeed: the session or the token went away.
_RECONNECTABLE: tuple[type[Exception], ...] = (
    p11.SessionHandleInvalid,
    p11.SessionClosed,
    p11.DeviceRemoved,
    p11.DeviceError,
    p11.TokenNotPresent,
    p11.TokenNotRecognised,
    p11.UserNotLoggedIn,
    p11.KeyHandleInvalid,
    p11.ObjectHandleInvalid,
    p11.GeneralError,
    p11.FunctionFailed,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Pkcs11Config:
    """Where the CA key lives. Holds the PIN file's path, never the PIN."""

    module: str
    token_label: str
    pin_file: Path
    key_label: str = DEFAULT_KEY_LABEL

    def check(self) -> None:
        if not self.module:
            raise SignerError("PKCS11_MODULE is not set: this process cannot reach the token")
        if not self.token_label:
            raise SignerError("PKCS11_TOKEN_LABEL is not set")
        if not str(self.pin_file):
            raise SignerError("PKCS11_PIN_FILE is not set")


def pin_read(path: Path) -> str:
    """The user PIN from its file (first line); refuses a file others can read."""
    try:
        mode = path.stat().st_mode & 0o777
        text = path.read_text()
    except FileNotFoundError:
        raise SignerError(f"no PIN file at {path}") from None
    except OSError as error:
        raise SignerError(f"cannot read the PIN file {path}: {error.strerror}") from None
    if mode & 0o077:
        raise SignerError(f"PIN file {path} is readable by others (mode {mode:o}); chmod 600 it")
    pin = text.splitlines()[0].strip() if text.strip() else ""
    if not pin:
        raise SignerError(f"PIN file {path} is empty")
    return pin


# One loaded module per (process, path): C_Initialize must run once per process.
_libraries: dict[tuple[int, str], Any] = {}


def _library(module: str) -> Any:
    key = (os.getpid(), module)
    if key not in _libraries:
        inherited = [lib for (pid, path), lib in _libraries.items() if path == module]
        try:
            if inherited:  # loaded before a fork: the child must initialise again
                lib = inherited[0]
                lib.reinitialize()
            else:
                lib = pkcs11.lib(module)
        except p11.PKCS11Error as error:
            raise SignerError(f"cannot load the PKCS#11 module {module}: {_name(error)}") from None
        for stale in [k for k in _libraries if k[1] == module]:
            del _libraries[stale]
        _libraries[key] = lib
    return _libraries[key]


def _name(error: BaseException) -> str:
    """A PKCS#11 error as its class name (its text may quote arguments)."""
    return type(error).__name__


def _rsa_public_key(public: Any) -> rsa.RSAPublicKey:
    modulus = int.from_bytes(public[Attribute.MODULUS], "big")
    exponent = int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big")
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


class Pkcs11Signer:
    backend = "pkcs11"

    def __init__(self, config: Pkcs11Config):
        config.check()
        self.config = config
        self._lock = threading.RLock()
        self._pid = 0
        self._session: Any = None
        self._private: Any = None
        self._public: rsa.RSAPublicKey | None = None

    def __repr__(self) -> str:
        c = self.config
        return f"Pkcs11Signer(module={c.module!r}, token={c.token_label!r}, key={c.key_label!r})"

    # --- lifecycle ----------------------------------------------------------------------

    @classmethod
    def open(cls, config: Pkcs11Config) -> Pkcs11Signer:
        signer = cls(config)
        with signer._lock:
            signer._connect()
        return signer

    @classmethod
    def create(cls, config: Pkcs11Config, *, bits: int = KEY_BITS) -> Pkcs11Signer:
        """Generate the CA key pair inside the token: private half sensitive, never
        extractable, sign-only. Refuses when a key with this label exists."""
        config.check()
        session = cls._session_open(config, rw=True)
        try:
            if list(session.get_objects({Attribute.LABEL: config.key_label})):
                raise SignerError(
                    f"token {config.token_label!r} already holds a key labelled "
                    f"{config.key_label!r}; refusing to overwrite the CA"
                )
            key_id = os.urandom(16)
            session.generate_keypair(
                KeyType.RSA,
                bits,
                id=key_id,
                label=config.key_label,
                store=True,
                public_template={
                    Attribute.VERIFY: True,
                    Attribute.ENCRYPT: False,
                    Attribute.WRAP: False,
                    Attribute.PUBLIC_EXPONENT: (65537).to_bytes(3, "big"),
                },
                private_template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.PRIVATE: True,
                    Attribute.SIGN: True,
                    Attribute.DECRYPT: False,
                    Attribute.UNWRAP: False,
                    Attribute.DERIVE: False,
                },
            )
        except p11.PKCS11Error as error:
            raise SignerError(f"the token refused to generate the CA key: {_name(error)}") from None
        finally:
            _close_quietly(session)
        return cls.open(config)

    @staticmethod
    def _session_open(config: Pkcs11Config, *, rw: bool = False) -> Any:
        lib = _library(config.module)
        try:
            token = lib.get_token(token_label=config.token_label)
        except (p11.NoSuchToken, p11.MultipleTokensReturned) as error:
            raise SignerError(f"PKCS#11 token {config.token_label!r}: {_name(error)}") from None
        except p11.PKCS11Error as error:
            raise SignerError(f"PKCS#11 token lookup failed: {_name(error)}") from None
        try:
            return token.open(user_pin=pin_read(config.pin_file), rw=rw)
        except p11.UserAlreadyLoggedIn:
            # login is per process and token: another session of ours is logged in already
            return token.open(rw=rw)
        except (p11.PinIncorrect, p11.PinInvalid, p11.PinLenRange):
            raise SignerError(
                f"the PIN in {config.pin_file} was refused by token {config.token_label!r}"
            ) from None
        except p11.PKCS11Error as error:
            raise SignerError(f"cannot log in to the token: {_name(error)}") from None

    def _connect(self) -> None:
        _close_quietly(self._session)
        self._session = self._private = None
        session = self._session_open(self.config)
        try:
            private = session.get_key(
                object_class=ObjectClass.PRIVATE_KEY,
                key_type=KeyType.RSA,
                label=self.config.key_label,
            )
            public = session.get_key(
                object_class=ObjectClass.PUBLIC_KEY,
                key_type=KeyType.RSA,
                label=self.config.key_label,
            )
            public_key = _rsa_public_key(public)
        except p11.NoSuchKey:
            _close_quietly(session)
            raise SignerError(
                f"token {self.config.token_label!r} has no RSA key labelled "
                f"{self.config.key_label!r}; run `manage.py ca init --backend pkcs11`"
            ) from None
        except p11.PKCS11Error as error:
            _close_quietly(session)
            raise SignerError(f"cannot read the CA key from the token: {_name(error)}") from None
        known = self._public
        if known is not None and known.public_numbers() != public_key.public_numbers():
            _close_quietly(session)
            raise SignerError("the key in the token changed while this process was running")
        self._session, self._private, self._public = session, private, public_key
        self._pid = os.getpid()

    def close(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                _close_quietly(self._session)
            self._session = self._private = None
            self._pid = 0

    # --- token calls --------------------------------------------------------------------

    def _call(self, operation: Callable[[Any], T], what: str) -> T:
        """Run `operation(private_key_object)` with the lock held; reconnect once."""
        with self._lock:
            if self._pid != os.getpid() or self._session is None:
                self._connect()  # first use in this process (or after fork)
            try:
                return operation(self._private)
            except _RECONNECTABLE as first:
                first_name = _name(first)
            except p11.PKCS11Error as error:
                raise SignerError(f"the token refused to {what}: {_name(error)}") from None
            try:
                self._connect()
                return operation(self._private)
            except SignerError as error:
                raise SignerError(
                    f"lost the PKCS#11 session ({first_name}) and could not reconnect: {error}"
                ) from None
            except p11.PKCS11Error as error:
                raise SignerError(
                    f"lost the PKCS#11 session ({first_name}); after one reconnect the token "
                    f"still failed to {what}: {_name(error)}"
                ) from None

    def sign_raw(self, data: bytes, mechanism: Mechanism) -> bytes:
        return self._call(lambda key: key.sign(data, mechanism=mechanism), "sign")

    def private_key(self) -> rsa.RSAPrivateKey:
        return Pkcs11RSAPrivateKey(self)

    def public_key(self) -> rsa.RSAPublicKey:
        with self._lock:
            if self._public is None:
                self._call(lambda key: None, "read the public key")
            assert self._public is not None
            return self._public


def _close_quietly(session: Any) -> None:
    if session is None:
        return
    with contextlib.suppress(p11.PKCS11Error):
        session.close()


class Pkcs11RSAPrivateKey(rsa.RSAPrivateKey):
    """A handle to the token's key that `cryptography` accepts as an RSA private key.

    It signs RSASSA-PKCS1-v1_5 with SHA-1/256/384/512 and refuses everything else (PSS,
    pre-hashed input, decryption, export) with a SignerError that says so."""

    def __init__(self, signer: Pkcs11Signer):
        self._signer = signer

    def __repr__(self) -> str:
        return f"<Pkcs11RSAPrivateKey in {self._signer!r}>"

    def sign(
        self,
        data: bytes,
        padding: padding.AsymmetricPadding,
        algorithm: hashes.HashAlgorithm | Prehashed | NoDigestInfo,
    ) -> bytes:
        if not isinstance(padding, _PKCS1v15):
            raise SignerError(
                f"the PKCS#11 CA key signs with PKCS#1 v1.5 padding only, not {padding.name}"
            )
        if isinstance(algorithm, Prehashed | NoDigestInfo):
            raise SignerError("the PKCS#11 CA key hashes in the token; pre-hashed input is refused")
        mechanism = _MECHANISMS.get(type(algorithm))
        if mechanism is None:
            supported = "sha1, sha256, sha384, sha512"
            raise SignerError(
                f"the PKCS#11 CA key cannot sign with {algorithm.name}; supported: {supported}"
            )
        return self._signer.sign_raw(bytes(data), mechanism)

    @property
    def key_size(self) -> int:
        return self._signer.public_key().key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._signer.public_key()

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        raise SignerError("the PKCS#11 CA key only signs; it cannot decrypt")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        raise SignerError("the PKCS#11 CA key is not extractable")

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> bytes:
        raise SignerError("the PKCS#11 CA key is not extractable")

    def __copy__(self) -> Pkcs11RSAPrivateKey:
        return self

    def __deepcopy__(self, memo: dict) -> Pkcs11RSAPrivateKey:
        return self


_PKCS1v15 = padding.PKCS1v15
