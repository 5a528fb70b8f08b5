"""The client's one error tree.

Every failure the pure core can report is a subclass of :class:`E2EEError`. Two branches matter
to callers:

* :class:`FormatError` — the input is not what the protocol allows (bad base64, bad JSON, missing
  or mistyped field). Parsers raise only this branch.
* :class:`IntegrityError` — the input is well formed but a cryptographic or protocol check
  failed: tampering, a wrong key or mnemonic, a rollback. The CLI maps this branch to exit
  status 3. Each check of PROTOCOL.md §8.1 has its own class so tests (and the hostile-server
  suite) can tell the attacks apart.

Messages never contain secrets: no keys, mnemonics or plaintext, only what failed and for which
public identifier (user id, file id).
"""

from __future__ import annotations


class E2EEError(Exception):
    """Base class of every error raised by the client core."""


# --- malformed input -------------------------------------------------------------------------


class FormatError(E2EEError, ValueError):
    """The input does not have the shape the protocol prescribes."""


class MalformedMetadataError(FormatError):
    """A metadata document (v1 or v2, outer or inner) is structurally invalid."""


class UnsupportedVersionError(FormatError):
    """A metadata document declares a version this client cannot read."""


# --- integrity / verification ----------------------------------------------------------------


class IntegrityError(E2EEError):
    """Well-formed input failed a cryptographic or protocol check."""


class DecryptionError(IntegrityError):
    """AES-GCM authentication failed: tampered ciphertext, nonce or tag, or the wrong key."""


class TagMismatchError(DecryptionError):
    """The tag stored after the ciphertext differs from the tag recorded in metadata."""


class TruncatedCiphertextError(DecryptionError):
    """The ciphertext is too short to even hold its 16-byte tag."""


class WrongMnemonic(IntegrityError):
    """No supported key-derivation variant opens the wrapped private key with this mnemonic.

    A tampered wrapped key looks the same (GCM cannot tell them apart), on purpose: one uniform
    failure (THREATS K6).
    """


class KeyUnwrapError(IntegrityError):
    """RSA-OAEP unwrapping of a metadata or file-drop key failed (wrong key or tampered)."""


class KeyMismatchError(IntegrityError):
    """A private key does not belong to the certificate or public key it should match."""


class CertificateError(IntegrityError):
    """A user certificate failed verification."""


class CertificateNotIssuedByServerError(CertificateError):
    """The certificate's signature does not verify with the server's public key."""


class CertificateUserMismatchError(CertificateError):
    """The certificate's subject CN differs from the user id it is presented for."""


class CertificateNotValidNowError(CertificateError):
    """The current time is outside the certificate's validity window."""


class CertificateKeyMismatchError(CertificateError, KeyMismatchError):
    """The certificate certifies a different public key than expected."""


class MetadataSignatureError(IntegrityError):
    """The detached CMS signature over the metadata does not verify."""


class SignerNotRootUserError(MetadataSignatureError):
    """The signature verifies, but its signer certificate is not one of the root folder's users."""


class MissingKeyMaterialError(IntegrityError):
    """Key material the protocol requires is absent."""


class OwnEntryMissingError(MissingKeyMaterialError):
    """The root metadata has no ``users`` entry for the reading user."""


class KeyChecksumMissingError(IntegrityError):
    """sha256 of the current metadata key is not listed in ``keyChecksums``."""


class MetadataRollbackError(IntegrityError):
    """The metadata is older than what this client has already seen."""


class KeyChecksumRemovedError(MetadataRollbackError):
    """A ``keyChecksums`` entry seen before has disappeared (key history truncated)."""


class CounterRollbackError(MetadataRollbackError):
    """The metadata ``counter`` is below the highest counter seen for this folder."""


class ForkDetectedError(MetadataRollbackError):
    """The metadata does not extend the version this client accepted last: the server shows
    different clients different histories (THREATS M5), or dropped the version chain."""


class MetadataBindingError(IntegrityError):
    """A metadata document names another folder, parent or tree than the one it was fetched
    for (THREATS S3: a sibling's, moved or duplicated document), or lost its binding."""


class PlaintextInEncryptedFolderError(IntegrityError):
    """A folder known to be end-to-end encrypted is reported as not encrypted."""


class DowngradeError(IntegrityError):
    """A folder known to use metadata 2.x is served in an older format (or 1.2 without checksum)."""


class V1ChecksumError(IntegrityError):
    """A metadata 1.2 ``checksum`` does not match the mnemonic, file ids and metadata key."""


class KeyChangedError(CertificateError):
    """A pinned key (the server key, or a user's certificate) is served changed (THREATS K1-K4)."""


class ServerKeyChangedError(KeyChangedError):
    """The server's signing key differs from the one pinned at first use."""


class CertificateChangedError(KeyChangedError):
    """A user's certificate differs from the one pinned at first sight."""


class RecoveryKeyPolicyError(CertificateError):
    """A recovery certificate the server offers fails a check (issuer, id, key usage), or the
    recovery key appears where only users may (as a metadata signer)."""


class RecoveryKeyChangedError(KeyChangedError):
    """The server offers a recovery certificate other than the one pinned at first sight."""


class CertificateRevokedError(CertificateError):
    """The certificate's serial is on the CA-signed revoked list (as served now, or as seen
    before: a revocation once seen stays)."""


class RevocationListError(IntegrityError):
    """The revoked list the server serves cannot be trusted."""


class RevocationListSignatureError(RevocationListError):
    """The revoked list is not signed by the pinned server key (edited: an entry dropped)."""


class RevocationListRollbackError(RevocationListError):
    """The server serves an older edition of the revoked list than one seen before, a
    different list under the same sequence number, or none after having served one."""


class FingerprintMismatchError(IntegrityError):
    """An out-of-band safety number does not match the pinned certificate."""


class UnexpectedPlaintextError(IntegrityError):
    """A server object inside an encrypted tree is not described by its signed metadata."""


# --- the I/O shell (client.api, client.keystore, client.ops) --------------------------------


class UsageProblem(E2EEError):
    """The command cannot run as asked (exit status 2): no account, no identity, bad path."""


class NotLoggedInError(UsageProblem):
    """No account is stored in the configuration directory."""


class NoIdentityError(UsageProblem):
    """This device holds no private key yet (run ``e2ee init`` or ``e2ee add-device``)."""


class IdentityExistsError(UsageProblem):
    """A key pair exists already (on the server or on this device)."""


class RemotePathError(UsageProblem):
    """A remote path does not exist, or is not what the command needs (file vs folder)."""


class LocalPathError(UsageProblem):
    """A local path does not exist, or would be overwritten without being asked to."""


class NotEncryptedError(UsageProblem):
    """A command that needs an encrypted folder was given a plain one."""


class ServerError(E2EEError):
    """The server refused a request or could not be reached (HTTP status in ``status``)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationError(ServerError):
    """The server rejected the credentials (401)."""


class LockedError(ServerError):
    """Another client holds the lock on the folder (423) or changed it meanwhile (412)."""


class LockTakenError(LockedError):
    """Taking the lock for a change failed that way: nothing was written, so the whole change
    can start again from a fresh read (:func:`client.ops.transaction.waits_for_lock`)."""


class E2EEUnavailableError(ServerError):
    """The server does not offer end-to-end encryption to this account."""


__all__ = [
    "AuthenticationError",
    "CertificateChangedError",
    "CertificateError",
    "CertificateKeyMismatchError",
    "CertificateNotIssuedByServerError",
    "CertificateNotValidNowError",
    "CertificateRevokedError",
    "CertificateUserMismatchError",
    "CounterRollbackError",
    "DecryptionError",
    "DowngradeError",
    "E2EEError",
    "E2EEUnavailableError",
    "FingerprintMismatchError",
    "ForkDetectedError",
    "FormatError",
    "IdentityExistsError",
    "IntegrityError",
    "KeyChangedError",
    "KeyChecksumMissingError",
    "KeyChecksumRemovedError",
    "KeyMismatchError",
    "KeyUnwrapError",
    "LocalPathError",
    "LockedError",
    "LockTakenError",
    "MalformedMetadataError",
    "MetadataBindingError",
    "MetadataRollbackError",
    "MetadataSignatureError",
    "MissingKeyMaterialError",
    "NoIdentityError",
    "NotEncryptedError",
    "NotLoggedInError",
    "OwnEntryMissingError",
    "PlaintextInEncryptedFolderError",
    "RecoveryKeyChangedError",
    "RecoveryKeyPolicyError",
    "RemotePathError",
    "RevocationListError",
    "RevocationListRollbackError",
    "RevocationListSignatureError",
    "ServerError",
    "ServerKeyChangedError",
    "SignerNotRootUserError",
    "TagMismatchError",
    "TruncatedCiphertextError",
    "UnexpectedPlaintextError",
    "UnsupportedVersionError",
    "UsageProblem",
    "V1ChecksumError",
    "WrongMnemonic",
]
