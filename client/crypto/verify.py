"""Read verification of folder metadata: PROTOCOL.md §8.1 as one function per document kind.

Each failed check raises its own class from :mod:`client.errors`; a result is returned only
when every check passed. What the client remembers between reads (highest counter, checksums
seen, version, encrypted flag) goes in and comes out as :class:`FolderHistory`, which the
keystore persists; the core never stores anything.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric import rsa

from client.crypto.cms import verify_metadata_signature
from client.crypto.keys import Certificate, load_certificate, same_public_key, verify_certificate
from client.crypto.metadata import decrypt_folder_metadata, key_checksum, unwrap_metadata_key
from client.crypto.recovery import is_recovery_id
from client.crypto.revocation import check_not_revoked
from client.errors import (
    CertificateKeyMismatchError,
    CounterRollbackError,
    DowngradeError,
    KeyChecksumMissingError,
    KeyChecksumRemovedError,
    PlaintextInEncryptedFolderError,
    RecoveryKeyPolicyError,
    SignerNotRootUserError,
    UnsupportedVersionError,
)
from client.protocol import (
    FolderMetadata,
    MetadataDocumentV1,
    MetadataDocumentV2,
)


@dataclass(frozen=True)
class FolderHistory:
    """What this client has accepted before for one folder id (empty for a first read)."""

    highest_counter: int | None = None
    key_checksums: frozenset[str] = frozenset()
    #: Highest metadata version accepted ("2.0" once the folder was seen as v2).
    version: str | None = None
    encrypted: bool = False


@dataclass(frozen=True)
class VerifiedFolder:
    """Metadata that passed every check, plus what to remember for the next read."""

    document: MetadataDocumentV2
    folder: FolderMetadata
    metadata_key: bytes = field(repr=False)
    signer: Certificate
    #: Verified certificates of the root folder's users, by user id (empty for sub-folders).
    certificates: Mapping[str, Certificate]

    def history(self, previous: FolderHistory | None = None) -> FolderHistory:
        previous = previous or FolderHistory()
        counter = max(self.folder.counter, previous.highest_counter or 0)
        return FolderHistory(
            highest_counter=counter,
            key_checksums=previous.key_checksums | frozenset(self.folder.key_checksums),
            version=max(self.document.version, previous.version or "0"),
            encrypted=True,
        )


def _check_format(
    document: MetadataDocumentV1 | MetadataDocumentV2,
    history: FolderHistory,
    reported_encrypted: bool,
) -> MetadataDocumentV2:
    if history.encrypted and not reported_encrypted:
        raise PlaintextInEncryptedFolderError("server reports a known encrypted folder as plain")
    if isinstance(document, MetadataDocumentV1):
        if history.version is not None and history.version >= "2":
            raise DowngradeError(f"folder known at {history.version} served as {document.version}")
        raise UnsupportedVersionError("metadata 1.x is read-only: decrypt and migrate it")
    return document


def _check_history(folder: FolderMetadata, history: FolderHistory, *, root: bool) -> None:
    if root:
        missing = history.key_checksums - set(folder.key_checksums)
        if missing:
            raise KeyChecksumRemovedError(f"{len(missing)} known key checksum(s) disappeared")
    if history.highest_counter is not None and folder.counter < history.highest_counter:
        raise CounterRollbackError(
            f"counter {folder.counter} is below the highest seen ({history.highest_counter})"
        )


def _check_signer(
    signer: Certificate,
    certificates: Mapping[str, Certificate],
    not_a_user: str,
    revoked: Collection[int],
) -> None:
    """The signer must be a folder user whose certificate is not revoked; the recovery key
    only reads, it never signs."""
    found = [uid for uid, cert in certificates.items() if cert.der == signer.der]
    if not found:
        raise SignerNotRootUserError(not_a_user)
    if all(is_recovery_id(uid) for uid in found):
        raise RecoveryKeyPolicyError("metadata is signed by the recovery key, which only reads")
    check_not_revoked(signer, revoked, f"{found[0]} (the metadata signer)")


def verify_root_metadata(
    document: MetadataDocumentV1 | MetadataDocumentV2,
    *,
    signature: str | None,
    user_id: str,
    private_key: rsa.RSAPrivateKey,
    server_public_key: rsa.RSAPublicKey,
    now: datetime,
    history: FolderHistory | None = None,
    reported_encrypted: bool = True,
    revoked: Collection[int] = frozenset(),
) -> VerifiedFolder:
    """Verify and decrypt the metadata of a topmost encrypted folder (§8.1), in this order:

    1. folder still reported encrypted (PlaintextInEncryptedFolderError), still 2.x
       (DowngradeError);
    2. CMS signature valid (MetadataSignatureError), signer ∈ users (SignerNotRootUserError),
       the signer's serial not in ``revoked`` (CertificateRevokedError);
    3. every user certificate signed by the server key, CN == userId, valid now
       (CertificateError subclasses); our own certificate certifies our key;
    4. own entry present (OwnEntryMissingError) and unwraps (KeyUnwrapError);
    5. inner metadata decrypts (DecryptionError) and parses (FormatError);
    6. sha256(key) ∈ keyChecksums (KeyChecksumMissingError); no known checksum removed
       (KeyChecksumRemovedError); counter ≥ highest seen (CounterRollbackError).
    """
    history = history or FolderHistory()
    doc = _check_format(document, history, reported_encrypted)
    signer = verify_metadata_signature(doc.source, signature)
    certificates = {}
    for entry in doc.users:
        cert = load_certificate(entry.certificate_pem)
        verify_certificate(
            cert, server_public_key=server_public_key, user_id=entry.user_id, now=now
        )
        certificates[entry.user_id] = cert
    _check_signer(
        signer, certificates, "metadata is signed by someone who is not a folder user", revoked
    )
    own = certificates.get(user_id)
    if own is not None and not same_public_key(own.public_key, private_key.public_key()):
        raise CertificateKeyMismatchError(f"certificate listed for {user_id!r} is not our key")
    metadata_key = unwrap_metadata_key(doc, user_id, private_key)
    folder = decrypt_folder_metadata(doc.metadata, metadata_key)
    if key_checksum(metadata_key) not in folder.key_checksums:
        raise KeyChecksumMissingError("current metadata key is not listed in keyChecksums")
    _check_history(folder, history, root=True)
    return VerifiedFolder(doc, folder, metadata_key, signer, certificates)


def verify_subfolder_metadata(
    document: MetadataDocumentV1 | MetadataDocumentV2,
    *,
    signature: str | None,
    root: VerifiedFolder,
    history: FolderHistory | None = None,
    reported_encrypted: bool = True,
    revoked: Collection[int] = frozenset(),
) -> VerifiedFolder:
    """Verify a sub-folder: signed by a root user whose certificate is not revoked, encrypted
    with the root key, no rollback."""
    history = history or FolderHistory()
    doc = _check_format(document, history, reported_encrypted)
    signer = verify_metadata_signature(doc.source, signature)
    _check_signer(
        signer,
        root.certificates,
        "sub-folder metadata is not signed by a root folder user",
        revoked,
    )
    folder = decrypt_folder_metadata(doc.metadata, root.metadata_key)
    _check_history(folder, history, root=False)
    return VerifiedFolder(doc, folder, root.metadata_key, signer, {})
