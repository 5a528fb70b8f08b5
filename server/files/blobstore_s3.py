"""Blobs in an S3-compatible object store (tested against SeaweedFS), behind the BlobStore
contract of server.files.blobstore.

- Writes stream in parts of `part_size` bytes: memory per upload is bounded by
  (concurrency + 1) x part_size, whatever the blob's size. A blob smaller than one part is one
  PutObject at commit; a larger one is a multipart upload to its final key, and S3 makes the
  object visible only when CompleteMultipartUpload succeeds. Either way nothing is readable
  under the key before `commit`, and both requests are create-only (`If-None-Match: *`).
- `abort` aborts the multipart upload (its parts are dropped by the store) or deletes the object
  if the commit had already gone through.
- Reads are one streaming GET from the current position, opened by the first read; a seek
  closes it and the next read opens a ranged GET there (WsgiDAV seeks once to a range's start,
  then reads forward).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, cast

from .blobstore import _KEY_RE, BlobNotFound, BlobStoreUnavailable

_MIN_PART = 5 << 20  # S3's minimum for every part but the last
_MAX_COPY = 5 << 30  # CopyObject's limit; larger blobs are copied part by part


class S3StoreError(BlobStoreUnavailable):
    """The object store refused or failed a request (the message never holds credentials)."""


@dataclass(frozen=True)
class S3Config:
    bucket: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str = field(default="", repr=False)
    secret_access_key: str = field(default="", repr=False)
    prefix: str = "blobs/"
    part_size: int = 8 << 20
    concurrency: int = 2
    addressing_style: str = "path"

    @classmethod
    def from_settings(cls, values: dict[str, Any]) -> S3Config:
        if not values.get("BUCKET"):
            raise S3StoreError("E2EE_BLOB_STORE=s3 needs E2EE_S3_BUCKET")
        return cls(
            bucket=values["BUCKET"],
            endpoint_url=values.get("ENDPOINT_URL") or None,
            region=values.get("REGION") or "us-east-1",
            access_key_id=values.get("ACCESS_KEY_ID") or "",
            secret_access_key=values.get("SECRET_ACCESS_KEY") or "",
            prefix=values.get("PREFIX", "blobs/"),
            part_size=max(_MIN_PART, int(values.get("PART_SIZE") or 8 << 20)),
            concurrency=max(1, int(values.get("CONCURRENCY") or 2)),
            addressing_style=values.get("ADDRESSING_STYLE") or "path",
        )


@functools.lru_cache(maxsize=8)
def _client(
    endpoint_url: str | None,
    region: str,
    access_key_id: str,
    secret_access_key: str,
    addressing_style: str,
) -> Any:
    """One client per endpoint and identity: creating one costs ~50 ms, and clients are
    thread-safe. Without explicit keys boto3's own chain applies (AWS_* env, instance role)."""
    import boto3
    from botocore.config import Config

    credentials = {}
    if access_key_id or secret_access_key:
        credentials = {
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
        }
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        **credentials,
        config=Config(
            s3={"addressing_style": addressing_style},
            max_pool_connections=32,
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=10,
            read_timeout=120,
        ),
    )


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _is_missing(exc: Exception) -> bool:
    return _error_code(exc) in ("NoSuchKey", "404", "NotFound")


def _failed(what: str, exc: Exception) -> S3StoreError:
    # botocore's messages name the operation, bucket and key, never the credentials.
    return S3StoreError(f"object store: {what} failed: {exc}")


class _S3Writer:
    def __init__(self, store: S3BlobStore, key: str | None = None) -> None:
        self._store = store
        self.key = key or secrets.token_hex(16)
        self.bytes_written = 0
        self._name = store.object_name(self.key)
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[Future[dict[str, Any]]] = []
        self._pool: ThreadPoolExecutor | None = None
        # At most `concurrency` parts in flight: write() waits for a slot, so memory stays bounded.
        self._slots = threading.BoundedSemaphore(store.config.concurrency)
        self._committed = False
        self._closed = False

    def write(self, data: bytes | memoryview) -> int:
        assert not self._closed, "writer is closed"
        view = memoryview(data)
        size = self._store.config.part_size
        total = len(view)
        while view:
            room = size - len(self._buffer)
            self._buffer += view[:room]
            view = view[room:]
            if len(self._buffer) == size:
                self._send_part(bytes(self._buffer))
                self._buffer.clear()
        self.bytes_written += total
        return total

    def _send_part(self, body: bytes) -> None:
        client, cfg = self._store.client, self._store.config
        if self._upload_id is None:
            try:
                self._upload_id = client.create_multipart_upload(Bucket=cfg.bucket, Key=self._name)[
                    "UploadId"
                ]
            except Exception as exc:
                raise _failed("starting an upload", exc) from exc
            self._pool = ThreadPoolExecutor(cfg.concurrency, thread_name_prefix="s3-part")
        number = len(self._parts) + 1
        self._slots.acquire()
        for done in self._parts:
            if done.done() and done.exception() is not None:
                self._slots.release()
                raise _failed("uploading a part", done.exception())  # type: ignore[arg-type]
        assert self._pool is not None
        self._parts.append(self._pool.submit(self._upload_part, number, body))

    def _upload_part(self, number: int, body: bytes) -> dict[str, Any]:
        cfg = self._store.config
        try:
            answer = self._store.client.upload_part(
                Bucket=cfg.bucket,
                Key=self._name,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=body,
            )
            return {"PartNumber": number, "ETag": answer["ETag"]}
        finally:
            self._slots.release()

    def commit(self) -> str:
        assert not self._closed, "writer is closed"
        client, cfg = self._store.client, self._store.config
        try:
            if self._upload_id is None:
                client.put_object(
                    Bucket=cfg.bucket, Key=self._name, Body=bytes(self._buffer), IfNoneMatch="*"
                )
            else:
                if self._buffer or not self._parts:
                    self._send_part(bytes(self._buffer))
                parts = [part.result() for part in self._parts]
                client.complete_multipart_upload(
                    Bucket=cfg.bucket,
                    Key=self._name,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": parts},
                    IfNoneMatch="*",
                )
        except BaseException as exc:
            self.abort()
            if isinstance(exc, Exception) and not isinstance(exc, S3StoreError):
                raise _failed("committing a blob", exc) from exc
            raise
        self._committed = True
        self._close()
        return self.key

    def _close(self) -> None:
        self._closed = True
        self._buffer = bytearray()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def abort(self) -> None:
        self._close()
        if self._upload_id is not None and not self._committed:
            upload_id, self._upload_id = self._upload_id, None
            # If this fails, blobs_sweep aborts the upload later.
            with contextlib.suppress(Exception):
                self._store.client.abort_multipart_upload(
                    Bucket=self._store.config.bucket, Key=self._name, UploadId=upload_id
                )
        if self._committed:
            # Committed, then the caller failed (e.g. the DB transaction): remove the blob.
            self._committed = False
            self._store.delete(self.key)

    def __enter__(self) -> _S3Writer:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None or not self._closed:
            self.abort()


class _S3Reader(io.RawIOBase):
    """A seekable reader over one object; at most one GET open at a time."""

    def __init__(self, store: S3BlobStore, key: str, body: Any, size: int) -> None:
        self._store, self._key = store, key
        self._body: Any = body
        self._size = size
        self._pos = 0
        self._body_pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _open_at(self, position: int) -> None:
        self._close_body()
        self._body = self._store._get(self._key, f"bytes={position}-")["Body"]
        self._body_pos = position

    def read(self, size: int | None = -1) -> bytes:
        if self._pos >= self._size or size == 0:
            return b""
        if self._body is None or self._body_pos != self._pos:
            self._open_at(self._pos)
        want = self._size - self._pos if size is None or size < 0 else size
        try:
            data: bytes = self._body.read(want)
        except Exception:
            data = b""
        if not data:  # the stream ended before the object did: resume here, once
            self._open_at(self._pos)
            try:
                data = self._body.read(want)
            except Exception as exc:
                raise _failed("reading a blob", exc) from exc
            if not data:
                raise S3StoreError("object store: a blob ended before its size")
        self._pos += len(data)
        self._body_pos = self._pos
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)

    def _close_body(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            body.close()

    def close(self) -> None:
        self._close_body()
        super().close()


class S3BlobStore:
    """Blobs as objects `<prefix><key>` in one bucket; see the module docstring."""

    def __init__(self, config: S3Config) -> None:
        self.config = config

    def __repr__(self) -> str:
        return f"S3BlobStore(endpoint={self.config.endpoint_url!r}, bucket={self.config.bucket!r})"

    @property
    def client(self) -> Any:
        c = self.config
        return _client(
            c.endpoint_url, c.region, c.access_key_id, c.secret_access_key, c.addressing_style
        )

    def object_name(self, key: str) -> str:
        if not _KEY_RE.match(key):
            raise ValueError("invalid blob key")
        return self.config.prefix + key

    def open_writer(self) -> _S3Writer:
        return _S3Writer(self)

    def import_blob(self, key: str, source: BinaryIO, *, step: int = 1 << 20) -> str:
        """Store `source` under an existing key (migration from another store), create-only;
        returns the SHA-256 hex digest of what was sent."""
        digest = hashlib.sha256()
        with _S3Writer(self, key) as writer:
            while data := source.read(step):
                digest.update(data)
                writer.write(data)
            writer.commit()
        return digest.hexdigest()

    def sha256(self, key: str, *, step: int = 1 << 20) -> str:
        """SHA-256 hex digest of the stored bytes, read back from the store."""
        digest = hashlib.sha256()
        with self.open_read(key) as blob:
            while data := blob.read(step):
                digest.update(data)
        return digest.hexdigest()

    def _get(self, key: str, byte_range: str | None = None) -> dict[str, Any]:
        extra = {"Range": byte_range} if byte_range else {}
        name = self.object_name(key)
        try:
            return self.client.get_object(Bucket=self.config.bucket, Key=name, **extra)
        except Exception as exc:
            if _is_missing(exc):
                raise BlobNotFound(key) from None
            raise _failed("reading a blob", exc) from exc

    def open_read(self, key: str) -> BinaryIO:
        # HEAD now, GET at the first read: a GET opened here and closed by a seek to a range's
        # start costs SeaweedFS ~5x the ranged GET itself.
        return cast(BinaryIO, _S3Reader(self, key, None, self.size(key)))

    def size(self, key: str) -> int:
        name = self.object_name(key)
        try:
            head = self.client.head_object(Bucket=self.config.bucket, Key=name)
        except Exception as exc:
            if _is_missing(exc):
                raise BlobNotFound(key) from None
            raise _failed("reading a blob's size", exc) from exc
        return int(head["ContentLength"])

    def copy(self, key: str) -> str:
        """Server-side: the bytes never pass through this process."""
        size = self.size(key)
        bucket, source = self.config.bucket, self.object_name(key)
        if size <= _MAX_COPY:
            new_key = secrets.token_hex(16)
            try:
                self.client.copy_object(
                    Bucket=bucket,
                    Key=self.object_name(new_key),
                    CopySource={"Bucket": bucket, "Key": source},
                )
            except Exception as exc:
                raise _failed("copying a blob", exc) from exc
            return new_key
        return self._copy_in_parts(source, size)

    def _copy_in_parts(self, source: str, size: int) -> str:
        writer = self.open_writer()
        bucket, step = self.config.bucket, 1 << 30
        try:
            upload_id = self.client.create_multipart_upload(Bucket=bucket, Key=writer._name)[
                "UploadId"
            ]
            writer._upload_id = upload_id
            parts = []
            for number, start in enumerate(range(0, size, step), start=1):
                end = min(size, start + step) - 1
                answer = self.client.upload_part_copy(
                    Bucket=bucket,
                    Key=writer._name,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource={"Bucket": bucket, "Key": source},
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})
            self.client.complete_multipart_upload(
                Bucket=bucket,
                Key=writer._name,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except Exception as exc:
            writer.abort()
            raise _failed("copying a blob", exc) from exc
        return writer.key

    def delete(self, key: str) -> None:
        name = self.object_name(key)
        try:
            self.client.delete_object(Bucket=self.config.bucket, Key=name)
        except Exception as exc:
            if not _is_missing(exc):
                raise _failed("deleting a blob", exc) from exc

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        """(key, last-modified timestamp) of every committed blob."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.config.bucket, Prefix=self.config.prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"][len(self.config.prefix) :]
                if _KEY_RE.match(key):
                    yield key, item["LastModified"].timestamp()

    def list_keys(self) -> set[str]:
        return {key for key, _ in self.iter_blobs()}

    def stale_temporaries(self, *, older_than: float) -> list[str]:
        """Multipart uploads started before `older_than` and never completed nor aborted."""
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.config.bucket, Prefix=self.config.prefix
        )
        stale = []
        for page in pages:
            for upload in page.get("Uploads", []):
                started: datetime = upload["Initiated"]
                if started.timestamp() < older_than:
                    stale.append(f"{upload['Key']}?uploadId={upload['UploadId']}")
        return stale

    def remove_temporary(self, name: str) -> None:
        object_name, _, upload_id = name.partition("?uploadId=")
        try:
            self.client.abort_multipart_upload(
                Bucket=self.config.bucket, Key=object_name, UploadId=upload_id
            )
        except Exception as exc:
            if _error_code(exc) != "NoSuchUpload":
                raise _failed("aborting an upload", exc) from exc

    def create_bucket(self) -> None:
        """Create the bucket unless it exists (ours or created meanwhile by another node)."""
        try:
            self.client.create_bucket(Bucket=self.config.bucket)
        except Exception as exc:
            if _error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise _failed(f"creating bucket {self.config.bucket!r}", exc) from exc

    def check(self) -> None:
        """Fail clearly if the bucket is unreachable or the credentials are refused."""
        try:
            self.client.head_bucket(Bucket=self.config.bucket)
        except Exception as exc:
            raise _failed(f"reaching bucket {self.config.bucket!r}", exc) from exc
