"""The ObjectStore contract, checked on every backend (local folder, S3 on SeaweedFS)."""

from __future__ import annotations

import hashlib
import io
import random
import time
import uuid
from typing import Any

import pytest

from modelyard.artifacts import LocalObjectStore, ObjectStore
from modelyard.core.errors import ArtifactError, ArtifactNotFound

MIB = 1 << 20


class GeneratedStream(io.RawIOBase):
    """``size`` pseudo-random bytes, produced on demand and hashed as they go; not seekable."""

    def __init__(self, size: int, seed: int = 7) -> None:
        self.remaining = size
        self.random = random.Random(seed)
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.remaining)
        data = self.random.randbytes(n)
        buffer[:n] = data
        self.sha256.update(data)
        self.remaining -= n
        return n


class TestObjectStoreConformance:
    """One class, parametrised over the backends by the ``store`` fixture."""

    def test_put_then_read_back(self, store: tuple[ObjectStore, str]) -> None:
        s, base = store
        assert s.put(f"{base}/a/b.txt", io.BytesIO(b"hello world")) == 11
        assert s.get_bytes(f"{base}/a/b.txt") == b"hello world"
        with s.open_read(f"{base}/a/b.txt") as f:
            assert f.read(5) == b"hello"
            assert f.read() == b" world"

    def test_put_bytes_and_overwrite(self, store: tuple[ObjectStore, str]) -> None:
        s, base = store
        assert s.put_bytes(f"{base}/k", b"first version") == 13
        assert s.put_bytes(f"{base}/k", b"second") == 6
        assert s.get_bytes(f"{base}/k") == b"second"
        assert s.stat(f"{base}/k").size == 6

    def test_put_reads_from_the_current_position(self, store: tuple[ObjectStore, str]) -> None:
        s, base = store
        stream = io.BytesIO(b"skip-payload")
        stream.read(5)
        assert s.put(f"{base}/tail", stream) == 7
        assert s.get_bytes(f"{base}/tail") == b"payload"

    def test_empty_object(self, store: tuple[ObjectStore, str]) -> None:
        s, base = store
        assert s.put_bytes(f"{base}/empty", b"") == 0
        assert s.get_bytes(f"{base}/empty") == b""
        assert s.stat(f"{base}/empty").size == 0

    def test_stat_reports_key_size_and_time(self, store: tuple[ObjectStore, str]) -> None:
        s, base = store
        s.put_bytes(f"{base}/x.bin", b"\x00" * 1234)
        info = s.stat(f"{base}/x.bin")
        assert info.key == f"{base}/x.bin"
        assert info.size == 1234
        assert abs(info.modified - time.time()) < 300  # a sane clock reading, not a timing test

    def test_list_is_a_sorted_string_prefix_match(self, store: tuple[ObjectStore, str]) -> None:
        s, base = store
        for key in ("p/b/c", "p/a", "p-x", "q", "p/b/a"):
            s.put_bytes(f"{base}/{key}", key.encode())
        listed = [(i.key, i.size) for i in s.list(f"{base}/p")]
        # '-' sorts before '/', so "p-x" comes first: plain string order, as S3 lists.
        assert listed == [
            (f"{base}/p-x", 3),
            (f"{base}/p/a", 3),
            (f"{base}/p/b/a", 5),
            (f"{base}/p/b/c", 5),
        ]
        assert [i.key for i in s.list(f"{base}/p/")] == [
            f"{base}/p/a",
            f"{base}/p/b/a",
            f"{base}/p/b/c",
        ]
        assert [i.key for i in s.list(f"{base}/")] == sorted(
            f"{base}/{k}" for k in ("p/b/c", "p/a", "p-x", "q", "p/b/a")
        )

    def test_list_of_nothing_is_empty(self, store: tuple[ObjectStore, str]) -> None:
        s, base = store
        assert list(s.list(f"{base}/absent/")) == []
        assert list(s.list(f"no-such-bucket-{uuid.uuid4().hex[:8]}/x")) == []

    def test_delete_and_exists(self, store: tuple[ObjectStore, str]) -> None:
        s, base = store
        s.put_bytes(f"{base}/gone", b"1")
        s.put_bytes(f"{base}/kept", b"2")
        assert s.exists(f"{base}/gone")
        s.delete(f"{base}/gone")
        assert not s.exists(f"{base}/gone")
        s.delete(f"{base}/gone")  # deleting a missing object is not an error
        assert [i.key for i in s.list(f"{base}/")] == [f"{base}/kept"]

    @pytest.mark.parametrize("method", ["open_read", "get_bytes", "stat"])
    def test_missing_object_is_not_found(self, store: tuple[ObjectStore, str], method: str) -> None:
        s, base = store
        s.put_bytes(f"{base}/dir/file", b"x")
        for key in (f"{base}/missing", f"{base}/dir", f"{base}/dir/"):
            with pytest.raises(ArtifactNotFound):
                getattr(s, method)(key)

    def test_twenty_mib_streams_through(self, store: tuple[ObjectStore, str]) -> None:
        s, base = store
        source = GeneratedStream(20 * MIB)
        assert s.put(f"{base}/big.bin", source) == 20 * MIB  # type: ignore[arg-type]
        assert s.stat(f"{base}/big.bin").size == 20 * MIB
        digest = hashlib.sha256()
        with s.open_read(f"{base}/big.bin") as f:
            while chunk := f.read(MIB):
                digest.update(chunk)
        assert digest.hexdigest() == source.sha256.hexdigest()

    def test_put_into_a_new_bucket_creates_it(self, store: tuple[ObjectStore, str]) -> None:
        s, _ = store
        key = f"sagemaker-us-east-1-{uuid.uuid4().hex[:12]}/code/train.py"
        s.put_bytes(key, b"print('hi')")
        assert s.get_bytes(key) == b"print('hi')"
        assert [i.key for i in s.list(key.split("/")[0] + "/")] == [key]

    @pytest.mark.parametrize(
        "bad", ["", "/abs/key", "b/../escape", "b/./x", "b/x/..", "../x", "b/nul\x00"]
    )
    def test_bad_keys_are_refused(self, store: tuple[ObjectStore, str], bad: str) -> None:
        s, _ = store
        with pytest.raises(ArtifactError) as excinfo:
            s.put_bytes(bad, b"x")
        assert not isinstance(excinfo.value, ArtifactNotFound)
        for call in (lambda: s.get_bytes(bad), lambda: s.stat(bad), lambda: s.delete(bad)):
            with pytest.raises(ArtifactError):
                call()


class TestLocalObjectStore:
    """What only the local folder can get wrong: escaping the root, temp files, atomicity."""

    def test_symlink_out_of_the_root_is_refused(self, tmp_path: Any) -> None:
        root, outside = tmp_path / "root", tmp_path / "outside"
        (root / "b").mkdir(parents=True)
        outside.mkdir()
        (root / "b" / "link").symlink_to(outside)
        s = LocalObjectStore(root)
        with pytest.raises(ArtifactError):
            s.put_bytes("b/link/evil", b"x")
        assert list(outside.iterdir()) == []

    def test_put_leaves_no_temp_files_and_lists_only_objects(self, tmp_path: Any) -> None:
        s = LocalObjectStore(tmp_path)
        s.put_bytes("b/one", b"1")
        (tmp_path / "b" / "empty-dir").mkdir()
        assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["empty-dir", "one"]
        assert [i.key for i in s.list("b/")] == ["b/one"]

    def test_failed_put_keeps_the_old_object(self, tmp_path: Any) -> None:
        s = LocalObjectStore(tmp_path)
        s.put_bytes("b/model", b"old")

        class Broken(io.RawIOBase):
            def readable(self) -> bool:
                return True

            def readinto(self, buffer: Any) -> int:
                raise OSError("disk went away")

        with pytest.raises(ArtifactError):
            s.put("b/model", Broken())  # type: ignore[arg-type]
        assert s.get_bytes("b/model") == b"old"
        assert [p.name for p in (tmp_path / "b").iterdir()] == ["model"]

    def test_new_objects_get_normal_permissions(self, tmp_path: Any) -> None:
        s = LocalObjectStore(tmp_path)
        s.put_bytes("b/f", b"x")
        assert (tmp_path / "b" / "f").stat().st_mode & 0o644 == 0o644
