"""Artifacts: bytes by URI (``s3://``, ``file://``, plain paths) over pluggable object stores.

Everything outside this package goes through :class:`Artifacts`::

    artifacts = Artifacts(settings)
    artifacts.put_bytes("s3://bucket/config.json", b"{}")
    artifacts.download_prefix("s3://bucket/data/train/", Path("input/data/train"))

``S3ObjectStore`` is exported lazily so that importing this package does not import boto3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelyard.artifacts.archive import extract_tar, write_tar_gz
from modelyard.artifacts.base import ObjectInfo, ObjectStore
from modelyard.artifacts.facade import Artifacts, backend_factory
from modelyard.artifacts.local import LocalObjectStore
from modelyard.artifacts.transfer import take_shard
from modelyard.artifacts.uris import ParsedUri, check_key, join_uri, parse_uri

if TYPE_CHECKING:
    from modelyard.artifacts.s3 import S3ObjectStore

__all__ = [
    "Artifacts",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectStore",
    "ParsedUri",
    "S3ObjectStore",
    "backend_factory",
    "check_key",
    "extract_tar",
    "join_uri",
    "parse_uri",
    "take_shard",
    "write_tar_gz",
]


def __getattr__(name: str) -> Any:
    if name == "S3ObjectStore":
        from modelyard.artifacts.s3 import S3ObjectStore

        return S3ObjectStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
