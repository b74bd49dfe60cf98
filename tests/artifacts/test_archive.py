"""Packing model.tar.gz and extracting untrusted archives."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelyard.artifacts import extract_tar, write_tar_gz
from modelyard.core.errors import ArtifactError


class OneWayStream(io.RawIOBase):
    """Bytes that can only be read front to back, like an HTTP body or a pipe."""

    def __init__(self, data: bytes) -> None:
        self._source = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def make_model_dir(root: Path) -> Path:
    src = root / "model"
    (src / "code" / "lib").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "xgboost-model").write_bytes(bytes(range(256)) * 100)
    (src / "code" / "inference.py").write_text("def model_fn(d):\n    return d\n")
    (src / "code" / "lib" / "helper.py").write_text("X = 1\n")
    (src / "code" / "current").symlink_to("lib")  # internal links survive
    return src


def pack(src: Path) -> bytes:
    out = io.BytesIO()
    write_tar_gz(src, out)
    return out.getvalue()


def test_round_trip_through_a_one_way_stream(tmp_path: Path) -> None:
    src = make_model_dir(tmp_path)
    target = tmp_path / "extracted"
    written = extract_tar(OneWayStream(pack(src)), target)  # type: ignore[arg-type]
    assert (target / "xgboost-model").read_bytes() == (src / "xgboost-model").read_bytes()
    assert (target / "code" / "inference.py").read_text() == "def model_fn(d):\n    return d\n"
    assert (target / "code" / "current" / "helper.py").read_text() == "X = 1\n"
    assert (target / "empty").is_dir()
    assert sorted(p.relative_to(target).as_posix() for p in written) == [
        "code/current",
        "code/inference.py",
        "code/lib/helper.py",
        "xgboost-model",
    ]


def test_members_are_relative_sorted_and_anonymous(tmp_path: Path) -> None:
    src = make_model_dir(tmp_path)
    with tarfile.open(fileobj=io.BytesIO(pack(src)), mode="r:gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == [
        "code",
        "code/current",
        "code/inference.py",
        "code/lib",
        "code/lib/helper.py",
        "empty",
        "xgboost-model",
    ]
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
    assert pack(src) == pack(src)  # same input, same bytes (gzip header time is fixed)


def test_archives_written_by_tar_with_a_dot_root_extract(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        add_dir(tar, ".")
        add_file(tar, "./model.pth", b"weights")
    target = tmp_path / "out"
    assert extract_tar(io.BytesIO(raw.getvalue()), target) == [target / "model.pth"]
    assert (target / "model.pth").read_bytes() == b"weights"


def add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def add_link(tar: tarfile.TarFile, name: str, target: str, kind: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    tar.addfile(info)


def add_special(tar: tarfile.TarFile, name: str, kind: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    tar.addfile(info)


def malicious(tmp_path: Path, build: Callable[[tarfile.TarFile, Path], None]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        add_file(tar, "fine.txt", b"harmless first member")
        build(tar, tmp_path)
    return raw.getvalue()


CASES: dict[str, Callable[[tarfile.TarFile, Path], None]] = {
    "dotdot": lambda tar, root: add_file(tar, "../escaped.txt", b"evil"),
    "nested-dotdot": lambda tar, root: add_file(tar, "a/../../escaped.txt", b"evil"),
    "absolute": lambda tar, root: add_file(tar, str(root / "escaped.txt"), b"evil"),
    "symlink-out-then-write-through": lambda tar, root: (
        add_link(tar, "link", "..", tarfile.SYMTYPE),
        add_file(tar, "link/escaped.txt", b"evil"),
    ),
    "absolute-symlink": lambda tar, root: add_link(tar, "link", str(root), tarfile.SYMTYPE),
    "hardlink-out": lambda tar, root: add_link(tar, "hard", "../escaped.txt", tarfile.LNKTYPE),
    "hardlink-absolute": lambda tar, root: add_link(tar, "hard", "/etc/passwd", tarfile.LNKTYPE),
    "char-device": lambda tar, root: add_special(tar, "null", tarfile.CHRTYPE),
    "block-device": lambda tar, root: add_special(tar, "disk", tarfile.BLKTYPE),
    "fifo": lambda tar, root: add_special(tar, "pipe", tarfile.FIFOTYPE),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malicious_members_are_refused_and_nothing_lands_outside(tmp_path: Path, case: str) -> None:
    (tmp_path / "escaped.txt").write_bytes(b"original")  # a hard link or overwrite would show here
    data = malicious(tmp_path, CASES[case])
    target = tmp_path / "target"
    with pytest.raises(ArtifactError):
        extract_tar(OneWayStream(data), target)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["escaped.txt", "target"]
    assert (tmp_path / "escaped.txt").read_bytes() == b"original"
    inside = sorted(p.relative_to(target).as_posix() for p in target.rglob("*"))
    assert inside == ["fine.txt"]  # the members before the bad one, and nothing of it


def test_pre_existing_symlink_in_the_target_is_not_followed_out(tmp_path: Path) -> None:
    target, outside = tmp_path / "target", tmp_path / "outside"
    target.mkdir()
    outside.mkdir()
    (target / "data").symlink_to(outside)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        add_file(tar, "data/escaped.txt", b"evil")
    with pytest.raises(ArtifactError):
        extract_tar(io.BytesIO(raw.getvalue()), target)
    assert list(outside.iterdir()) == []


def test_setuid_bits_are_dropped(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("tool")
        info.size, info.mode = 2, 0o4777
        tar.addfile(info, io.BytesIO(b"#!"))
    extract_tar(io.BytesIO(raw.getvalue()), tmp_path / "out")
    assert (tmp_path / "out" / "tool").stat().st_mode & 0o7777 == 0o755


def test_corrupt_archive_is_an_artifact_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError):
        extract_tar(io.BytesIO(b"\x1f\x8b not really gzip"), tmp_path / "out")
