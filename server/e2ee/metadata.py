"""Folder metadata: stored and returned as uploaded; writes under a lock are staged.

The server never decrypts, parses or verifies metadata; it sniffs only the version, to keep
v1 clients off v2 folders (PROTOCOL.md §4.6)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.db import transaction

from server.accounts.models import User
from server.errors import BadRequest, Conflict, Forbidden, NotFound, PreconditionFailed

from .folders import folder_get
from .locks import lock_covering, lock_touch
from .models import FolderMetadata, Lock, StagedMetadata

V1_VERSIONS = {1, 1.2, "1", "1.2", "1.0"}


@dataclass(frozen=True)
class Metadata:
    document: str
    signature: str


def metadata_version(document: str) -> object:
    """The version a stored document claims: top-level `version` (v2), else `metadata.version`."""
    try:
        parsed = json.loads(document)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    if "version" in parsed:
        return parsed["version"]
    inner = parsed.get("metadata")
    return inner.get("version") if isinstance(inner, dict) else None


def is_v1(document: str) -> bool:
    return metadata_version(document) in V1_VERSIONS


def metadata_get(*, user: User, node_id: int, api_v1: bool = False) -> Metadata:
    """The committed document; readers never see staged writes."""
    folder = folder_get(user=user, node_id=node_id)
    record = FolderMetadata.objects.filter(node=folder).first()
    if record is None:
        raise NotFound("Could not find metadata for the folder")
    if api_v1 and not is_v1(record.document):
        raise Forbidden("Use the v2 endpoint: this folder's metadata is not version 1")
    return Metadata(record.document, record.signature)


def _document_checked(document: str) -> str:
    if not document:
        raise BadRequest("Missing parameter: metaData")
    try:
        json.loads(document)
    except ValueError:
        raise BadRequest("metaData is not JSON") from None
    return document


def _lock_with(*, node_id: int, user: User, token: str, missing_lock_error: type) -> Lock:
    folder = folder_get(user=user, node_id=node_id, write=True)
    lock = lock_covering(node=folder, token=token) if token else None
    if lock is None:
        raise missing_lock_error("The folder is not locked with this e2e-token")
    return lock


def _stage(*, lock: Lock, node_id: int, document: str | None, signature: str) -> None:
    StagedMetadata.objects.update_or_create(
        lock=lock, node_id=node_id, defaults={"document": document, "signature": signature}
    )
    lock_touch(lock)


def _staged(lock: Lock, node_id: int) -> StagedMetadata | None:
    return StagedMetadata.objects.filter(lock=lock, node_id=node_id).first()


def metadata_create(*, user: User, node_id: int, document: str, signature: str, token: str) -> str:
    """POST meta-data (v2): staged under the lock; 409 if the folder already has metadata."""
    if not signature:
        raise BadRequest("Missing header X-NC-E2EE-SIGNATURE")
    _document_checked(document)
    with transaction.atomic():
        lock = _lock_with(node_id=node_id, user=user, token=token, missing_lock_error=Forbidden)
        staged = _staged(lock, node_id)
        if FolderMetadata.objects.filter(node_id=node_id).exists() or (
            staged is not None and staged.document is not None
        ):
            raise Conflict("Metadata already exists")
        _stage(lock=lock, node_id=node_id, document=document, signature=signature)
    return document


def metadata_update(
    *, user: User, node_id: int, document: str, signature: str, token: str, api_v1: bool = False
) -> str:
    """PUT meta-data: staged under the lock; 404 if the folder has none yet."""
    if not signature and not api_v1:
        raise BadRequest("Missing header X-NC-E2EE-SIGNATURE")
    _document_checked(document)
    with transaction.atomic():
        lock = _lock_with(
            node_id=node_id,
            user=user,
            token=token,
            missing_lock_error=Forbidden if api_v1 else PreconditionFailed,
        )
        committed = FolderMetadata.objects.filter(node_id=node_id).first()
        staged = _staged(lock, node_id)
        if committed is None and (staged is None or staged.document is None):
            raise NotFound("Could not find metadata for the folder")
        if api_v1 and committed is not None and not is_v1(committed.document):
            raise Forbidden("Use the v2 endpoint: this folder's metadata is not version 1")
        _stage(lock=lock, node_id=node_id, document=document, signature=signature)
    return document


def metadata_delete(*, user: User, node_id: int, token: str) -> None:
    """DELETE meta-data (v2): staged; the metadata goes at unlock."""
    if not token:
        raise BadRequest("Missing e2e-token")
    with transaction.atomic():
        lock = _lock_with(
            node_id=node_id, user=user, token=token, missing_lock_error=PreconditionFailed
        )
        if (
            not FolderMetadata.objects.filter(node_id=node_id).exists()
            and _staged(lock, node_id) is None
        ):
            raise NotFound("Could not find metadata for the folder")
        _stage(lock=lock, node_id=node_id, document=None, signature="")


def metadata_create_v1(*, user: User, node_id: int, document: str) -> str:
    """POST meta-data (v1): no lock, written at once (v1 clients create before they lock)."""
    _document_checked(document)
    folder = folder_get(user=user, node_id=node_id, write=True)
    with transaction.atomic():
        if FolderMetadata.objects.select_for_update().filter(node=folder).exists():
            raise Conflict("Metadata already exists")
        FolderMetadata.objects.create(node=folder, document=document, signature="")
    return document


def metadata_delete_v1(*, user: User, node_id: int) -> None:
    folder = folder_get(user=user, node_id=node_id, write=True)
    record = FolderMetadata.objects.filter(node=folder).first()
    if record is None:
        raise NotFound("Could not find metadata for the folder")
    if not is_v1(record.document):
        raise Forbidden("Use the v2 endpoint: this folder's metadata is not version 1")
    record.delete()


def metadata_signature(*, node_id: int) -> str | None:
    """For the WebDAV property: the committed signature, without an access check (the caller
    already resolved the node for this user)."""
    return (
        FolderMetadata.objects.filter(node_id=node_id).values_list("signature", flat=True).first()
    )
