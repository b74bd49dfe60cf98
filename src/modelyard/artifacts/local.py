"""A local directory as an object store: key ``a/b/c`` is the file ``<root>/a/b/c``.

Directories are an implementation detail here, as they are in S3: only regular files are
objects, a listing never shows a directory, and ``put`` creates the parents it needs.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from modelyard.artifacts.base import ObjectInfo, ObjectStore
from modelyard.artifacts.uris import check_key, check_prefix
from modelyard.core.errors import ArtifactError, ArtifactNotFound

if TYPE_CHECKING:
    from modelyard.core.settings import Settings

CHUNK_SIZE = 1 << 20
"""Bytes per read/write when copying streams (1 MiB)."""

# In-flight ``put`` files share the destination's directory (so ``os.replace`` is atomic);
# the prefix lets listings skip them.
_TEMP_PREFIX = ".modelyard-tmp-"


def _current_umask() -> int:
    # os.umask can only be read by setting it; do it once, at first use, not at import.
    mask = os.umask(0)
    os.umask(mask)
    return mask


class LocalObjectStore(ObjectStore):
    """Objects as files under ``root``.

    The facade uses ``root="/"`` so that a key is an absolute path without its leading ``/``.
    Keys with ``.``/``..`` segments, or whose path would leave ``root`` through a symlink, are
    refused with ArtifactError. Symlinked directories below a listed prefix are not descended
    into (as :func:`os.walk` does), which keeps listings finite when links form cycles.
    """

    scheme = "file"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(os.path.abspath(root))
        self._umask: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalObjectStore:
        """The store the facade uses: rooted at ``/`` so any absolute path is a key."""
        del settings  # the local store needs no configuration
        return cls("/")

    def path_for(self, key: str) -> Path:
        """The file that holds ``key``; raises ArtifactError when it would escape the root."""
        path = self.root / check_key(key)
        self._check_inside(path, key)
        return path

    def _check_inside(self, path: Path, key: str) -> None:
        if self.root == Path("/"):
            return  # Every absolute path is inside "/"; skip the realpath syscalls.
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(path)
        if os.path.commonpath([real_root, real]) != real_root:
            raise ArtifactError(f"Object key {key!r} resolves outside the store root {self.root}.")

    def open_read(self, key: str) -> BinaryIO:
        path = self.path_for(key)
        try:
            if not path.is_file():
                raise ArtifactNotFound(str(path))
            return open(path, "rb", buffering=CHUNK_SIZE)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as e:
            raise ArtifactNotFound(str(path)) from e
        except OSError as e:
            raise ArtifactError(f"Cannot read {path}: {e.strerror or e}") from e

    def put(self, key: str, stream: BinaryIO) -> int:
        path = self.path_for(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
        except OSError as e:
            raise ArtifactError(f"Cannot write {path}: {e.strerror or e}") from e
        try:
            with os.fdopen(fd, "wb") as out:
                size = copy_stream(stream, out)
            # mkstemp creates 0600 files; give the object the mode a plain open() would.
            os.chmod(tmp_name, 0o666 & ~self._mask())
            # No fsync: the contract promises atomicity for readers, not durability across a
            # power cut, and fsync would dominate the cost of many small checkpoint files.
            os.replace(tmp_name, path)
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            if isinstance(e, OSError):
                raise ArtifactError(f"Cannot write {path}: {e.strerror or e}") from e
            raise
        return size

    def _mask(self) -> int:
        if self._umask is None:
            self._umask = _current_umask()
        return self._umask

    def stat(self, key: str) -> ObjectInfo:
        path = self.path_for(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError) as e:
            raise ArtifactNotFound(str(path)) from e
        except OSError as e:
            raise ArtifactError(f"Cannot stat {path}: {e.strerror or e}") from e
        if not path.is_file():
            raise ArtifactNotFound(str(path))
        return ObjectInfo(key=key, size=st.st_size, modified=st.st_mtime)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        directory, _, name_start = prefix.rpartition("/")
        base = self.root / directory if directory else self.root
        key_head = f"{directory}/" if directory else ""
        if directory:
            self._check_inside(base, prefix)
        return self._walk(base, key_head, name_start)

    def _walk(self, directory: Path, key_head: str, name_start: str) -> Iterator[ObjectInfo]:
        """Objects below ``directory`` in key order, keeping top-level names with ``name_start``.

        Sorting each directory's entries by ``name`` for files and ``name + "/"`` for
        directories yields keys in plain string order without collecting the whole tree:
        every key under directory ``d`` starts with ``d/``, and no sibling does.
        """
        try:
            with os.scandir(directory) as it:
                entries = [e for e in it if e.name.startswith(name_start)]
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as e:
            raise ArtifactError(f"Cannot list {directory}: {e.strerror or e}") from e
        decorated = []
        for entry in entries:
            if entry.name.startswith(_TEMP_PREFIX):
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue  # vanished between scandir and the check
            decorated.append((entry.name + "/" if is_dir else entry.name, is_dir, entry))
        decorated.sort(key=lambda item: item[0])
        for sort_name, is_dir, entry in decorated:
            if is_dir:
                yield from self._walk(Path(entry.path), key_head + sort_name, "")
                continue
            try:
                if not entry.is_file():
                    continue  # sockets, fifos, dangling links are not objects
                st = entry.stat()
            except OSError:
                continue
            yield ObjectInfo(key=key_head + entry.name, size=st.st_size, modified=st.st_mtime)

    def delete(self, key: str) -> None:
        path = self.path_for(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        except IsADirectoryError:
            return  # a directory is not an object, so there is no object to delete
        except OSError as e:
            raise ArtifactError(f"Cannot delete {path}: {e.strerror or e}") from e


def copy_stream(stream: BinaryIO, out: BinaryIO) -> int:
    """Copy ``stream`` to ``out`` in 1 MiB chunks; return the byte count."""
    size = 0
    while chunk := stream.read(CHUNK_SIZE):
        out.write(chunk)
        size += len(chunk)
    return size
