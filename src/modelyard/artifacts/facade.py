"""The one object the rest of modelyard uses for artifacts: bytes by URI.

Backends are chosen per URI, not per installation: ``file://`` and plain paths always go to the
local folder; ``s3://`` goes to the S3 endpoint when ``s3_endpoint_url`` is set, and otherwise
into ``<artifact_root>/s3/<bucket>/<key>`` so that SageMaker-style URIs work with zero setup.
"""

from __future__ import annotations

import importlib
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, cast

from modelyard.artifacts import transfer
from modelyard.artifacts.base import ObjectInfo, ObjectStore
from modelyard.artifacts.local import LocalObjectStore
from modelyard.artifacts.uris import FILE, S3, check_key, join_uri, parse_uri
from modelyard.core.errors import ArtifactError
from modelyard.core.settings import Settings

# Short backend names to implementations, imported on first use so that a job process that
# only touches local files never pays for importing boto3. Each backend builds itself from the
# settings (``from_settings``): it owns its configuration.
_BACKENDS: dict[str, str] = {
    "file": "modelyard.artifacts.local:LocalObjectStore",
    "s3": "modelyard.artifacts.s3:S3ObjectStore",
}


# A module-level name because inside Artifacts ``list`` is the method, not the builtin.
UriListing = list[tuple[str, ObjectInfo]]


def backend_factory(name: str) -> Callable[[Settings], ObjectStore]:
    """The ``from_settings`` of the backend registered under ``name`` (``file``, ``s3``)."""
    try:
        module_name, _, class_name = _BACKENDS[name].partition(":")
    except KeyError:
        raise ArtifactError(
            f"Unknown artifact backend {name!r}; known: {sorted(_BACKENDS)}."
        ) from None
    cls = getattr(importlib.import_module(module_name), class_name)
    return cast(Callable[[Settings], ObjectStore], cls.from_settings)


class Artifacts:
    """Resolves URIs to stores and moves bytes.

    Accepts ``s3://bucket/key``, ``file:///abs/path`` and plain local paths (relative paths
    resolve against the current directory). ``s3://`` goes to the S3 endpoint when
    ``settings.s3_endpoint_url`` is set; otherwise ``s3://bucket/key`` maps into the local
    folder ``<artifact_root>/s3/bucket/key`` (``<home>/artifacts/s3/...`` when
    ``artifact_root`` is itself an ``s3://`` URI). ``artifact_root`` may be a local path or an
    ``s3://`` URI (``MODELYARD_ARTIFACT_ROOT``). Thread-safe.

    >>> artifacts = Artifacts(Settings.load(home="/tmp/my"))          # doctest: +SKIP
    >>> artifacts.put_bytes("s3://bucket/config.json", b"{}")         # doctest: +SKIP
    2
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._local = LocalObjectStore.from_settings(settings)
        self._s3: ObjectStore | None = None
        self._lock = threading.Lock()
        root = settings.artifact_root
        if parse_uri(root).scheme == S3:
            self._root_uri = root.rstrip("/")
            self._embedded_s3 = settings.home / "artifacts" / "s3"
        else:
            local_root = Path(parse_uri(root).key)
            self._root_uri = local_root.as_uri()
            self._embedded_s3 = local_root / "s3"

    @classmethod
    def from_environment(cls) -> Artifacts:
        """The facade configured from ``MODELYARD_*`` variables (as inside job processes)."""
        return cls(Settings.load())

    # -- resolving ------------------------------------------------------------------------

    def resolve(self, uri: str) -> tuple[ObjectStore, str]:
        """The store that holds ``uri`` and the key within it (a prefix keeps its ``/``)."""
        parsed = parse_uri(uri)
        if parsed.scheme == FILE:
            return self._local, parsed.key.lstrip("/")
        bucket_key = check_key(f"{parsed.bucket}/{parsed.key}")  # no "..", even in the bucket
        if self.settings.s3_endpoint_url:
            return self._s3_store(), bucket_key
        return self._local, f"{str(self._embedded_s3).strip('/')}/{bucket_key}"

    def _s3_store(self) -> ObjectStore:
        if self._s3 is None:
            with self._lock:
                if self._s3 is None:
                    self._s3 = backend_factory("s3")(self.settings)
        return self._s3

    def default_uri(self, *parts: str) -> str:
        """A URI under ``artifact_root``, parts joined with ``/`` (``file://`` when local)."""
        return join_uri(self._root_uri, *parts)

    # -- one object -----------------------------------------------------------------------

    def open_read(self, uri: str) -> BinaryIO:
        """Open the object at ``uri`` for streaming reads; raises ArtifactNotFound."""
        store, key = self.resolve(uri)
        return store.open_read(key)

    def get_bytes(self, uri: str) -> bytes:
        """The whole object in memory; only for small objects."""
        store, key = self.resolve(uri)
        return store.get_bytes(key)

    def put(self, uri: str, stream: BinaryIO) -> int:
        """Store everything read from ``stream`` at ``uri``; return the byte count."""
        store, key = self.resolve(uri)
        return store.put(key, stream)

    def put_bytes(self, uri: str, data: bytes) -> int:
        """Store ``data`` at ``uri``; return its length."""
        store, key = self.resolve(uri)
        return store.put_bytes(key, data)

    def stat(self, uri: str) -> ObjectInfo:
        """Size and time of the object at ``uri``; raises ArtifactNotFound."""
        store, key = self.resolve(uri)
        return store.stat(key)

    def exists(self, uri: str) -> bool:
        """Whether an object is stored at ``uri``."""
        store, key = self.resolve(uri)
        return store.exists(key)

    def delete(self, uri: str) -> None:
        """Remove the object at ``uri``; a missing object is not an error."""
        store, key = self.resolve(uri)
        store.delete(key)

    def list(self, uri_prefix: str) -> Iterator[tuple[str, ObjectInfo]]:
        """``(uri, info)`` for every object whose URI starts with ``uri_prefix``, sorted.

        The URIs are spelt like ``uri_prefix`` (a plain path stays a plain path, ``s3://``
        stays ``s3://`` even when mapped into the local folder).
        """
        store, key_prefix = self.resolve(uri_prefix)
        encode = uri_prefix.lower().startswith("file://")
        for info in store.list(key_prefix):
            suffix = info.key[len(key_prefix) :]
            yield uri_prefix + (urllib.parse.quote(suffix) if encode else suffix), info

    # -- many objects (see modelyard.artifacts.transfer) ---------------------------------

    def list_for_host(
        self, uri_prefix: str, host_index: int, host_count: int, sharded: bool
    ) -> UriListing:
        """What host ``host_index`` (0-based) of ``host_count`` gets; ShardedByS3Key when sharded."""
        return transfer.list_for_host(self, uri_prefix, host_index, host_count, sharded)

    def download_prefix(
        self,
        uri_prefix: str,
        local_dir: Path,
        *,
        host_index: int = 0,
        host_count: int = 1,
        sharded: bool = False,
    ) -> int:
        """S3Prefix download into ``local_dir``; return the file count (see ``transfer``)."""
        return transfer.download_prefix(
            self,
            uri_prefix,
            local_dir,
            host_index=host_index,
            host_count=host_count,
            sharded=sharded,
        )

    def download_manifest(
        self,
        manifest_uri: str,
        local_dir: Path,
        *,
        host_index: int = 0,
        host_count: int = 1,
        sharded: bool = False,
    ) -> int:
        """ManifestFile download into ``local_dir``; return the file count (see ``transfer``)."""
        return transfer.download_manifest(
            self,
            manifest_uri,
            local_dir,
            host_index=host_index,
            host_count=host_count,
            sharded=sharded,
        )

    def upload_file(self, path: Path, uri: str) -> int:
        """Store one local file at ``uri``; return its size in bytes."""
        return transfer.upload_file(self, path, uri)

    def upload_dir(self, local_dir: Path, uri_prefix: str) -> int:
        """Store every file under ``local_dir`` below ``uri_prefix``; return the file count."""
        return transfer.upload_dir(self, local_dir, uri_prefix)

    def sync_dir(self, local_dir: Path, uri_prefix: str, seen: dict[str, tuple[int, float]]) -> int:
        """Upload files new or changed since ``seen`` (updated in place); return how many."""
        return transfer.sync_dir(self, local_dir, uri_prefix, seen)
