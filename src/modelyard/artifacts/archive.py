"""``model.tar.gz`` and friends: streamed packing, and extraction that cannot escape its folder.

Archives come from users (``sourcedir.tar.gz``, a ``ModelDataUrl`` anyone may have written), so
extraction treats every member as hostile: absolute names, ``..`` segments, links that point
outside the target, devices and fifos are refused with ArtifactError before anything of that
member is written. Python's ``tarfile`` data filter is applied as a second line of defence where
the interpreter has it (3.11.4+); the checks here do not depend on it.
"""

from __future__ import annotations

import gzip
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from modelyard.core.errors import ArtifactError, ArtifactNotFound

# Level 6 packs model files about as small as 9 (tarfile's fixed level for "w|gz") at a
# fraction of the CPU time, which matters for multi-gigabyte models.
COMPRESS_LEVEL = 6

_HAS_DATA_FILTER = hasattr(tarfile, "data_filter")


def write_tar_gz(src_dir: Path, out: BinaryIO, *, compresslevel: int = COMPRESS_LEVEL) -> None:
    """Write ``src_dir``'s contents to ``out`` as a gzipped tar, streamed.

    Member names are relative to ``src_dir`` with no leading directory or ``./`` (SageMaker's
    ``model.tar.gz`` layout), in a deterministic order: names sorted within each folder, a
    folder before its contents. Owners are blanked so archives do not leak local user names.
    ``out`` need not be seekable and is left open.
    """
    if not src_dir.is_dir():
        raise ArtifactNotFound(str(src_dir))
    try:
        gz = gzip.GzipFile(
            filename="", mode="wb", fileobj=out, compresslevel=compresslevel, mtime=0
        )
        with gz, tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for path in _sorted_entries(src_dir):
                name = path.relative_to(src_dir).as_posix()
                tar.add(path, arcname=name, recursive=False, filter=_anonymous)
    except OSError as e:
        raise ArtifactError(f"Cannot pack {src_dir}: {e.strerror or e}") from e


def _sorted_entries(directory: Path) -> Iterator[Path]:
    with os.scandir(directory) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        yield Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            yield from _sorted_entries(Path(entry.path))


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def extract_tar(stream: BinaryIO, target: Path) -> list[Path]:
    """Extract a tar (plain, gzip, bzip2 or xz) read from ``stream`` into ``target``.

    ``stream`` may be non-seekable (it is read once, front to back). Returns the paths of the
    files and links written, in archive order. Raises ArtifactError for an unsafe member;
    members before it have been written inside ``target`` (callers discard the folder), and
    nothing is ever written outside it.
    """
    try:
        target.mkdir(parents=True, exist_ok=True)
        root = Path(os.path.realpath(target))
        written: list[Path] = []
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                name = _checked_name(member)
                if name is None:
                    continue
                _check_member(member, name, root)
                _extract_one(tar, member, root)
                if not member.isdir():
                    written.append(target / name)
        return written
    except tarfile.TarError as e:
        # FilterError (the data filter's refusal) is a TarError too.
        raise ArtifactError(f"Refusing to extract archive into {target}: {e}") from e
    except OSError as e:
        raise ArtifactError(f"Cannot extract archive into {target}: {e.strerror or e}") from e


def _checked_name(member: tarfile.TarInfo) -> str | None:
    """The member's relative name, None for the archive's own root (``.``); refuses escapes."""
    raw = member.name
    if raw.startswith(("/", "\\")) or (len(raw) > 1 and raw[1] == ":"):
        raise ArtifactError(f"Archive member {raw!r} has an absolute path.")
    parts = [p for p in PurePosixPath(raw).parts if p != "."]
    if ".." in parts:
        raise ArtifactError(f"Archive member {raw!r} points outside the target with '..'.")
    if not parts:
        if member.isdir():
            return None
        raise ArtifactError(f"Archive member {raw!r} has no name.")
    return "/".join(parts)


def _check_member(member: tarfile.TarInfo, name: str, root: Path) -> None:
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise ArtifactError(f"Archive member {name!r} is a device, fifo or other special file.")
    _require_inside(root / name, root, name)
    if member.issym():
        if member.linkname.startswith("/"):
            raise ArtifactError(
                f"Symlink {name!r} points to the absolute path {member.linkname!r}."
            )
        _require_inside(root / PurePosixPath(name).parent / member.linkname, root, name)
    elif member.islnk():
        link = member.linkname
        if link.startswith("/") or ".." in PurePosixPath(link).parts:
            raise ArtifactError(f"Hard link {name!r} points outside the archive: {link!r}.")
        _require_inside(root / link, root, name)


def _require_inside(path: Path, root: Path, name: str) -> None:
    # realpath follows links already on disk (from earlier members or left in the folder).
    real = os.path.realpath(path)
    if os.path.commonpath([str(root), real]) != str(root):
        raise ArtifactError(f"Archive member {name!r} would be written outside {root}.")


def _extract_one(tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path) -> None:
    if _HAS_DATA_FILTER:
        tar.extract(member, root, filter="data")
        return
    # Interpreters without extraction filters: drop setuid/setgid and group/other write, as
    # the data filter would.
    member.mode = (member.mode or 0o644) & 0o755
    tar.extract(member, root)
