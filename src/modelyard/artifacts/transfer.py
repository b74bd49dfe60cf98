"""Moving many objects between a store and a local folder, with SageMaker's channel semantics.

These are the operations behind :class:`~modelyard.artifacts.facade.Artifacts`'
``download_prefix``, ``download_manifest``, ``upload_dir``, ``sync_dir`` and
``list_for_host``; they take the facade as their first argument so that URIs of every kind work.

- **S3Prefix**: every object whose key starts with the prefix (a plain string prefix, so
  ``s3://b/data/train`` also matches ``data/train-2/x``). Its local path is the key relative to
  the prefix's last ``/``: ``data/train-2/x`` lands at ``train-2/x``; a prefix that is one
  object's full key downloads just that file.
- **ManifestFile**: a JSON array whose first element is ``{"prefix": "s3://.../"}`` and whose
  other elements are keys relative to it; each lands at its relative key.
- **ShardedByS3Key**: host ``i`` of ``n`` (0-based) gets objects ``i, i+n, i+2n, ...`` of the
  sorted listing (manifest order for manifests): disjoint, and together complete.

Many small files are the common case for training data, so transfers run on a small thread pool;
the first failure cancels what has not started and is raised.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, TypeVar

from modelyard.artifacts.base import ObjectInfo, ObjectStore
from modelyard.artifacts.local import copy_stream
from modelyard.artifacts.uris import join_uri
from modelyard.core.errors import ArtifactError, ArtifactNotFound

if TYPE_CHECKING:
    from modelyard.artifacts.facade import Artifacts

T = TypeVar("T")
R = TypeVar("R")

MAX_WORKERS = 8
"""Concurrent transfers per call; enough to hide S3 request latency for small files."""


def take_shard(items: Sequence[T], host_index: int, host_count: int, sharded: bool) -> list[T]:
    """The items one host gets: all of them, or every ``host_count``-th from ``host_index``."""
    if host_count < 1 or not 0 <= host_index < host_count:
        raise ArtifactError(f"Host index {host_index} is outside 0..{host_count - 1}.")
    return list(items[host_index::host_count]) if sharded else list(items)


def list_for_host(
    artifacts: Artifacts, uri_prefix: str, host_index: int, host_count: int, sharded: bool
) -> list[tuple[str, ObjectInfo]]:
    """The ``(uri, info)`` pairs under ``uri_prefix`` that one host of a job gets."""
    return take_shard(list(artifacts.list(uri_prefix)), host_index, host_count, sharded)


def download_prefix(
    artifacts: Artifacts,
    uri_prefix: str,
    local_dir: Path,
    *,
    host_index: int = 0,
    host_count: int = 1,
    sharded: bool = False,
) -> int:
    """Download this host's share of the objects under ``uri_prefix``; return the file count.

    Raises ArtifactNotFound when the prefix matches no object at all (a host whose shard is
    empty because there are more hosts than objects gets 0, not an error).
    """
    store, key_prefix = artifacts.resolve(uri_prefix)
    infos = list(store.list(key_prefix))
    if not infos:
        raise ArtifactNotFound(uri_prefix)
    cut = key_prefix.rfind("/") + 1
    mine = take_shard(infos, host_index, host_count, sharded)
    plan = [(info.key, local_dir / safe_relative(info.key[cut:], info.key)) for info in mine]
    run_parallel(lambda item: download_object(store, item[0], item[1]), plan)
    return len(plan)


def read_manifest(artifacts: Artifacts, manifest_uri: str) -> list[tuple[str, str]]:
    """``(object uri, relative path)`` for each entry of a SageMaker manifest file."""
    try:
        entries = json.loads(artifacts.get_bytes(manifest_uri))
    except (ValueError, UnicodeDecodeError) as e:
        raise ArtifactError(f"Manifest {manifest_uri} is not valid JSON: {e}") from e
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        raise ArtifactError(
            f'Manifest {manifest_uri} must be a JSON array starting with {{"prefix": ...}}.'
        )
    prefix = entries[0].get("prefix")
    if not isinstance(prefix, str) or not prefix:
        raise ArtifactError(
            f'The first element of manifest {manifest_uri} needs a "prefix" string.'
        )
    out = []
    for entry in entries[1:]:
        if not isinstance(entry, str) or not entry:
            raise ArtifactError(f"Manifest {manifest_uri} has a non-string entry: {entry!r}.")
        # SageMaker concatenates prefix and entry as they are; the entry is also the local path.
        out.append((prefix + entry, str(safe_relative(entry, entry))))
    return out


def download_manifest(
    artifacts: Artifacts,
    manifest_uri: str,
    local_dir: Path,
    *,
    host_index: int = 0,
    host_count: int = 1,
    sharded: bool = False,
) -> int:
    """Download this host's share of the objects a manifest lists; return the file count."""
    entries = take_shard(read_manifest(artifacts, manifest_uri), host_index, host_count, sharded)
    plan = [(artifacts.resolve(uri), local_dir / relative) for uri, relative in entries]
    run_parallel(lambda item: download_object(item[0][0], item[0][1], item[1]), plan)
    return len(plan)


def upload_file(artifacts: Artifacts, path: Path, uri: str) -> int:
    """Store the local file ``path`` at ``uri``; return its size in bytes."""
    try:
        with open(path, "rb") as stream:
            return artifacts.put(uri, stream)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
        raise ArtifactNotFound(str(path)) from e
    except OSError as e:
        raise ArtifactError(f"Cannot read {path}: {e.strerror or e}") from e


def upload_dir(artifacts: Artifacts, local_dir: Path, uri_prefix: str) -> int:
    """Store every file under ``local_dir`` below ``uri_prefix``, relative paths kept.

    Returns the number of files. Raises ArtifactNotFound when ``local_dir`` is not a directory.
    """
    if not local_dir.is_dir():
        raise ArtifactNotFound(str(local_dir))
    files = local_files(local_dir)
    run_parallel(lambda item: upload_file(artifacts, item[1], join_uri(uri_prefix, item[0])), files)
    return len(files)


def sync_dir(
    artifacts: Artifacts, local_dir: Path, uri_prefix: str, seen: dict[str, tuple[int, float]]
) -> int:
    """Upload files that are new or changed (size, mtime) since ``seen``; return how many.

    ``seen`` maps relative paths to the ``(size, mtime)`` last uploaded and is updated in place;
    pass the same dict on every call (continuous checkpoint upload). A missing ``local_dir`` is
    an empty one. Files deleted locally are forgotten but not deleted remotely, as SageMaker's
    checkpoint sync does. The signature is taken *before* uploading, so a file that changes
    during its upload is uploaded again on the next call.
    """
    if not local_dir.is_dir():
        return 0
    current: dict[str, tuple[int, float]] = {}
    for relative, path in local_files(local_dir):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue  # removed while we walked, e.g. a rotated checkpoint
        current[relative] = (st.st_size, st.st_mtime)
    changed = [rel for rel, signature in current.items() if seen.get(rel) != signature]

    def upload(relative: str) -> bool:
        try:
            upload_file(artifacts, local_dir / relative, join_uri(uri_prefix, relative))
        except ArtifactNotFound:
            return False  # vanished before we read it; nothing to keep in sync
        return True

    done = run_parallel(upload, changed)
    for relative, uploaded in zip(changed, done):
        if uploaded:
            seen[relative] = current[relative]
    for gone in set(seen) - set(current):
        del seen[gone]
    return sum(done)


def local_files(local_dir: Path) -> list[tuple[str, Path]]:
    """``(relative posix path, path)`` of every file under ``local_dir``, sorted.

    Symlinked files are included (their content is what a user means); symlinked directories
    are not descended into, so link cycles cannot loop.
    """
    out = []
    for dirpath, dirnames, filenames in os.walk(local_dir):
        dirnames.sort()
        base = Path(dirpath)
        for name in filenames:
            path = base / name
            if path.is_file():
                out.append((path.relative_to(local_dir).as_posix(), path))
    out.sort(key=lambda item: item[0])
    return out


def safe_relative(relative: str, source: str) -> Path:
    """``relative`` as a path that stays inside the folder it is joined to.

    Object keys written by other S3 clients may contain ``..`` or absolute segments; such an
    object is refused rather than written outside the job's folder.
    """
    pure = PurePosixPath(relative)
    parts = [p for p in pure.parts if p not in ("", "/", ".")]
    if pure.is_absolute() or ".." in parts or not parts:
        raise ArtifactError(f"Object {source!r} cannot be placed safely in a local folder.")
    return Path(*parts)


def download_object(store: ObjectStore, key: str, dest: Path) -> None:
    """Stream one object into the local file ``dest``, creating parent folders."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with store.open_read(key) as source, open(dest, "wb") as out:
            copy_stream(source, out)
    except OSError as e:
        raise ArtifactError(f"Cannot write {dest}: {e.strerror or e}") from e


def run_parallel(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(item) for item in items]`` on a thread pool; the first exception is raised."""
    work = list(items)
    if len(work) <= 1:
        return [fn(item) for item in work]
    with concurrent.futures.ThreadPoolExecutor(min(MAX_WORKERS, len(work))) as pool:
        futures = [pool.submit(fn, item) for item in work]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise
