"""Legacy ownCloud chunked upload (chunking "v1"), which Nextcloud desktop clients still use for
files above their chunk size (10 MB) when the server does not offer chunking v2.

The client PUTs "<name>-chunking-<transfer id>-<chunk count>-<index>" with `OC-Chunked: 1`.
Each piece is stored as its own blob and recorded in UploadChunk; the request that completes
the set assembles the pieces into one new blob and commits the file exactly like a plain upload
(FileUpload: checksum, X-OC-MTime, propagation), then drops the pieces. A non-final piece is
answered without an ETag: that is how the client knows the file is not complete yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from server.accounts.models import User

from .blobstore import BlobStore, get_blob_store
from .errors import NameInvalid, ParentMissing, UploadIncomplete
from .models import Node, UploadChunk
from .services import FileUpload, WriteResult, _after_commit_delete_blobs, _lock_dir, name_validate

_CHUNK_NAME = re.compile(r"^(?P<name>.+)-chunking-(?P<transfer>\d{1,20})-(?P<count>\d{1,6})-"
                         r"(?P<index>\d{1,6})$")
# Pieces of transfers nobody finished are dropped after this long (the client restarts them).
STALE_AFTER = timedelta(hours=24)
_COPY_STEP = 1 << 20


@dataclass(frozen=True)
class ChunkName:
    name: str
    transfer_id: str
    count: int
    index: int


def chunk_name_parse(*, name: str) -> ChunkName:
    match = _CHUNK_NAME.match(name)
    if match is None:
        raise NameInvalid("not a chunked-upload name")
    count, index = int(match["count"]), int(match["index"])
    if not 0 <= index < count:
        raise NameInvalid("chunk index out of range")
    return ChunkName(name_validate(name=match["name"]), match["transfer"], count, index)


class ChunkUpload:
    """One piece in progress. `commit` returns the file's WriteResult when this piece completed
    the set, None otherwise."""

    def __init__(self, *, user: User, parent: Node, chunk: ChunkName, expected_size: int | None,
                 mtime: int | None, checksum: str | None, store: BlobStore) -> None:
        self.user, self.parent, self.chunk = user, parent, chunk
        self.mtime, self.checksum = mtime, checksum
        self._store = store
        # The piece itself goes through FileUpload's checks only at assembly; here it is bytes.
        self._expected_size = expected_size
        self._writer = store.open_writer()
        self._finished = False

    def write(self, data: bytes | memoryview) -> int:
        return self._writer.write(data)

    def abort(self) -> None:
        if not self._finished:
            self._finished = True
            self._writer.abort()

    def commit(self) -> WriteResult | None:
        assert not self._finished
        self._finished = True
        try:
            if self._expected_size is not None and \
                    self._writer.bytes_written != self._expected_size:
                raise UploadIncomplete()
            key = self._writer.commit()
            pieces = self._record(key)
        except BaseException:
            self._writer.abort()
            raise
        return None if pieces is None else self._assemble(pieces)

    def _record(self, key: str) -> list[UploadChunk] | None:
        """Store this piece; return all pieces if the set is now complete."""
        c = self.chunk
        with transaction.atomic():
            # Locking the folder serialises pieces arriving in parallel: exactly one of them
            # sees the set complete.
            _lock_dir(user=self.user, dir_id=self.parent.id)
            stale = UploadChunk.objects.filter(owner=self.user,
                                               created_at__lt=timezone.now() - STALE_AFTER)
            _after_commit_delete_blobs(list(stale.values_list("blob_key", flat=True)),
                                       self._store)
            stale.delete()
            same = UploadChunk.objects.filter(parent_id=self.parent.id, name=c.name,
                                              transfer_id=c.transfer_id)
            replaced = list(same.filter(index=c.index).values_list("blob_key", flat=True))
            same.filter(index=c.index).delete()
            _after_commit_delete_blobs(replaced, self._store)
            UploadChunk.objects.create(owner=self.user, parent_id=self.parent.id, name=c.name,
                                       transfer_id=c.transfer_id, count=c.count, index=c.index,
                                       size=self._writer.bytes_written, blob_key=key)
            pieces = list(same.filter(count=c.count).order_by("index"))
            if [p.index for p in pieces] != list(range(c.count)):
                return None
            return pieces

    def _assemble(self, pieces: list[UploadChunk]) -> WriteResult:
        upload = FileUpload(user=self.user, parent=self.parent, name=self.chunk.name,
                            expected_size=sum(p.size for p in pieces), mtime=self.mtime,
                            checksum=self.checksum, store=self._store)
        try:
            for piece in pieces:
                with self._store.open_read(piece.blob_key) as blob:
                    while data := blob.read(_COPY_STEP):
                        upload.write(data)
        except BaseException:
            upload.abort()
            raise
        try:
            return upload.commit()
        finally:
            # Assembled or refused (e.g. checksum mismatch): the pieces are spent either way;
            # the client starts a new transfer.
            with transaction.atomic():
                UploadChunk.objects.filter(id__in=[p.id for p in pieces]).delete()
                _after_commit_delete_blobs([p.blob_key for p in pieces], self._store)


def chunk_upload_begin(*, user: User, parent: Node, name: str, expected_size: int | None = None,
                       mtime: int | None = None, checksum: str | None = None,
                       store: BlobStore | None = None) -> ChunkUpload:
    chunk = chunk_name_parse(name=name)
    if parent.owner_id != user.pk or not parent.is_dir:
        raise ParentMissing()
    return ChunkUpload(user=user, parent=parent, chunk=chunk, expected_size=expected_size,
                       mtime=mtime, checksum=checksum, store=store or get_blob_store())
