"""An S3-compatible bucket service as an object store: key ``bucket/path/to/object``.

Works with AWS S3, SeaweedFS, MinIO and the like. Path-style addressing is used because most
self-hosted stores do not serve virtual-host buckets. Buckets are created on first write, as
SageMaker users expect ``sagemaker-<region>-<account>`` default buckets to just work.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import boto3
import botocore.config
import botocore.exceptions
import urllib3.exceptions
from boto3.s3.transfer import TransferConfig

from modelyard.artifacts.base import ObjectInfo, ObjectStore
from modelyard.artifacts.uris import check_key, check_prefix
from modelyard.core.errors import ArtifactError, ArtifactNotFound

if TYPE_CHECKING:
    from modelyard.core.settings import Settings

_MIB = 1 << 20

# Multipart above 16 MiB in 8 MiB parts: few requests for typical model files, and a
# non-seekable stream buffers at most max_in_memory_upload_chunks (10) parts, i.e. 80 MiB.
_TRANSFER = TransferConfig(
    multipart_threshold=16 * _MIB, multipart_chunksize=8 * _MIB, max_concurrency=4
)

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "404", "NotFound"})
_NO_BUCKET_CODES = frozenset({"NoSuchBucket"})
_BUCKET_TAKEN_CODES = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})


class S3ObjectStore(ObjectStore):
    """Objects in S3 buckets; a key is ``bucket/key``.

    One boto3 client is created per store and shared by all threads (boto3 clients are
    thread-safe once built). ``put`` streams through ``upload_fileobj``: one PUT for small
    objects, a multipart upload for big ones, so readers never see a partial object.
    Keys ending in ``/`` (folder markers some consoles create) are not objects here, matching
    the local store where a folder is never an object.
    """

    scheme = "s3"

    def __init__(
        self,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str = "us-east-1",
        *,
        client: Any = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._client = client or _make_client(
            endpoint_url, access_key_id, secret_access_key, region
        )
        self._known_buckets: set[str] = set()
        self._bucket_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> S3ObjectStore:
        """A store for ``settings.s3_endpoint_url`` with the configured keys and region."""
        return cls(
            settings.s3_endpoint_url,
            settings.s3_access_key_id,
            settings.s3_secret_access_key,
            settings.region,
        )

    @property
    def client(self) -> Any:
        """The boto3 S3 client, for callers that need an operation the interface lacks."""
        return self._client

    def open_read(self, key: str) -> BinaryIO:
        bucket, name = _split(key)
        if not name or name.endswith("/"):
            raise ArtifactNotFound(f"s3://{key}")
        try:
            response = self._client.get_object(Bucket=bucket, Key=name)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            raise _translate(e, "read", key) from e
        raw = _BodyReader(response["Body"], key)
        return cast(BinaryIO, io.BufferedReader(raw, buffer_size=_MIB))

    def put(self, key: str, stream: BinaryIO) -> int:
        bucket, name = _split(key)
        if not name:
            raise ArtifactError(f"Object key {key!r} names a bucket but no object.")
        self._ensure_bucket(bucket)
        size = _remaining_size(stream)
        body: Any = stream if size is not None else _CountingReader(stream)
        try:
            self._client.upload_fileobj(body, bucket, name, Config=_TRANSFER)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            # Someone may have deleted the bucket since we created it; forget it so the next
            # put recreates it (this stream is consumed, so this one cannot be retried).
            self._known_buckets.discard(bucket)
            raise _translate(e, "write", key) from e
        except OSError as e:  # reading the caller's stream failed
            raise ArtifactError(f"Cannot upload to s3://{key}: {e.strerror or e}") from e
        return size if size is not None else body.count

    def _ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` once per store when it does not exist yet."""
        if bucket in self._known_buckets:
            return
        with self._bucket_lock:
            if bucket in self._known_buckets:
                return
            try:
                self._client.head_bucket(Bucket=bucket)
            except botocore.exceptions.ClientError as e:
                if _code(e) not in _NOT_FOUND_CODES:
                    # 403 and the like: we may still be allowed to write; let the put decide.
                    return
                self._create_bucket(bucket)
            except botocore.exceptions.BotoCoreError as e:
                raise _translate(e, "reach bucket", bucket) from e
            self._known_buckets.add(bucket)

    def _create_bucket(self, bucket: str) -> None:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if self.region != "us-east-1":
            # us-east-1 is the one region that rejects an explicit LocationConstraint.
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._client.create_bucket(**kwargs)
        except botocore.exceptions.ClientError as e:
            if _code(e) not in _BUCKET_TAKEN_CODES:  # lost a race with another creator: fine
                raise _translate(e, "create bucket", bucket) from e

    def stat(self, key: str) -> ObjectInfo:
        bucket, name = _split(key)
        if not name or name.endswith("/"):
            raise ArtifactNotFound(f"s3://{key}")
        try:
            head = self._client.head_object(Bucket=bucket, Key=name)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            raise _translate(e, "stat", key) from e
        return ObjectInfo(
            key=key, size=int(head["ContentLength"]), modified=head["LastModified"].timestamp()
        )

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        bucket, _, name_prefix = prefix.partition("/")
        if not bucket:
            raise ArtifactError("An S3 listing needs at least a bucket name.")
        # AWS lists in key order but SeaweedFS (and some others) list in directory-walk order
        # ("p/a" before "p-x"). The contract and ShardedByS3Key need one order everywhere, so
        # sort here; a listing is small next to the objects it names.
        return iter(sorted(self._list(bucket, name_prefix), key=lambda info: info.key))

    def _list(self, bucket: str, name_prefix: str) -> Iterator[ObjectInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=bucket, Prefix=name_prefix):
                for item in page.get("Contents", ()):
                    if item["Key"].endswith("/"):
                        continue
                    yield ObjectInfo(
                        key=f"{bucket}/{item['Key']}",
                        size=int(item["Size"]),
                        modified=item["LastModified"].timestamp(),
                    )
        except botocore.exceptions.ClientError as e:
            if _code(e) in _NO_BUCKET_CODES:
                return  # an absent bucket holds no objects, as an absent folder holds none
            raise _translate(e, "list", f"{bucket}/{name_prefix}") from e
        except botocore.exceptions.BotoCoreError as e:
            raise _translate(e, "list", f"{bucket}/{name_prefix}") from e

    def delete(self, key: str) -> None:
        bucket, name = _split(key)
        if not name:
            return  # a bucket is not an object; deleting buckets is not this interface's job
        try:
            self._client.delete_object(Bucket=bucket, Key=name)
        except botocore.exceptions.ClientError as e:
            if _code(e) in _NOT_FOUND_CODES:
                return
            raise _translate(e, "delete", key) from e
        except botocore.exceptions.BotoCoreError as e:
            raise _translate(e, "delete", key) from e


def _make_client(
    endpoint_url: str | None, access_key_id: str | None, secret_access_key: str | None, region: str
) -> Any:
    options: dict[str, Any] = {
        "s3": {"addressing_style": "path"},
        "signature_version": "s3v4",
        "retries": {"mode": "standard", "max_attempts": 5},
    }
    if endpoint_url:
        # Newer botocore adds CRC checksums with aws-chunked bodies by default; several
        # S3-compatible servers reject those, so only send checksums an operation requires.
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    try:
        session = boto3.session.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
        )
        return session.client(
            "s3", endpoint_url=endpoint_url, config=botocore.config.Config(**options)
        )
    except (botocore.exceptions.BotoCoreError, ValueError) as e:
        raise ArtifactError(
            f"Cannot configure the S3 client for {endpoint_url or 'AWS'}: {e}"
        ) from e


def _split(key: str) -> tuple[str, str]:
    bucket, _, name = check_key(key).partition("/")
    return bucket, name


def _code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _translate(error: Exception, action: str, key: str) -> ArtifactError:
    """Map a botocore failure on ``key`` to ArtifactNotFound or ArtifactError."""
    uri = f"s3://{key}"
    if isinstance(error, botocore.exceptions.ClientError):
        code = _code(error)
        if code in _NOT_FOUND_CODES:
            return ArtifactNotFound(uri)
        message = error.response.get("Error", {}).get("Message", "") or str(error)
        return ArtifactError(f"Cannot {action} {uri}: {code}: {message}")
    return ArtifactError(f"Cannot {action} {uri}: {error}")


def _remaining_size(stream: BinaryIO) -> int | None:
    """Bytes left in a seekable stream, or None when the stream cannot seek."""
    try:
        if not stream.seekable():
            return None
        start = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(start)
    except (AttributeError, OSError, ValueError):
        return None
    return end - start


class _CountingReader:
    """A read-only, non-seekable view of a stream that counts the bytes read through it."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.count += len(data)
        return data


class _BodyReader(io.RawIOBase):
    """A botocore StreamingBody as a raw binary stream, with errors translated."""

    def __init__(self, body: Any, key: str) -> None:
        self._body = body
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._body.read(len(view))
        except (botocore.exceptions.BotoCoreError, urllib3.exceptions.HTTPError, OSError) as e:
            raise ArtifactError(f"Reading s3://{self._key} failed: {e}") from e
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()
