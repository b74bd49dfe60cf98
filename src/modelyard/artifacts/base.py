"""The artifact-store interface: bytes by key, streamed.

An :class:`ObjectStore` is one flat namespace of keys (``"bucket/path/to/object"`` for S3-style
stores, an absolute path without the leading ``/`` for the local folder). Keys use ``/`` as the
separator and never contain ``..`` segments; implementations refuse such keys with
:class:`~modelyard.core.errors.ArtifactError`.

Contract for every implementation:

- Thread-safe: one instance is shared by all threads of a process. Process-safe as far as the
  underlying storage is (a local folder and S3 both are).
- ``put`` is atomic for readers: a reader sees either the old object or the whole new one,
  never a partial write (local: write to a temporary file, then rename; S3: one PUT or a
  completed multipart upload).
- Large objects are streamed in chunks; no method reads a whole object into memory unless
  the caller asks for bytes (``get_bytes``).
- A missing object raises :class:`~modelyard.core.errors.ArtifactNotFound`; any other failure of
  the underlying library is translated into :class:`~modelyard.core.errors.ArtifactError`,
  chained with ``from``.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator
from typing import BinaryIO


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    """One stored object: its key, its size in bytes and its last-modified epoch seconds."""

    key: str
    size: int
    modified: float


class ObjectStore(abc.ABC):
    """Bytes by key. See the module docstring for the contract."""

    #: short name in the backend registry (``file``, ``s3``)
    scheme: str = ""

    @abc.abstractmethod
    def open_read(self, key: str) -> BinaryIO:
        """Open the object for streaming reads. Raises ArtifactNotFound when absent."""

    @abc.abstractmethod
    def put(self, key: str, stream: BinaryIO) -> int:
        """Store everything read from ``stream`` under ``key``; return the byte count."""

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Size and time of one object. Raises ArtifactNotFound when absent."""

    @abc.abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (plain string prefix), sorted by key."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove one object; a missing object is not an error."""

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        from modelyard.core.errors import ArtifactNotFound

        try:
            self.stat(key)
        except ArtifactNotFound:
            return False
        return True

    def get_bytes(self, key: str) -> bytes:
        """The whole object in memory; only for small objects (configs, manifests)."""
        with self.open_read(key) as f:
            return f.read()

    def put_bytes(self, key: str, data: bytes) -> int:
        """Store ``data`` under ``key``."""
        import io

        return self.put(key, io.BytesIO(data))
