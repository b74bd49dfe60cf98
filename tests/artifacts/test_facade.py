"""The Artifacts facade: URI routing and SageMaker's channel semantics, on both backends."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelyard.artifacts import Artifacts, LocalObjectStore
from modelyard.core.errors import ArtifactError, ArtifactNotFound
from modelyard.core.settings import Settings


def files_under(folder: Path) -> dict[str, bytes]:
    """``{relative posix path: content}`` of every file below ``folder``."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def seed(artifacts: Artifacts, base: str, objects: dict[str, bytes]) -> None:
    for key, data in objects.items():
        artifacts.put_bytes(f"{base}/{key}", data)


DATA = {
    "data/train/a.csv": b"1,2\n",
    "data/train/sub/b.csv": b"3,4\n",
    "data/train-extra/c.csv": b"5,6\n",
    "data/test/d.csv": b"7,8\n",
}


class TestRouting:
    def test_s3_uris_map_into_the_artifact_root_without_an_endpoint(self, tmp_path: Path) -> None:
        artifacts = Artifacts(
            Settings.load(env={}, home=str(tmp_path / "home"), artifact_root=str(tmp_path / "root"))
        )
        assert artifacts.put_bytes("s3://my-bucket/models/m.bin", b"weights") == 7
        assert (
            tmp_path / "root" / "s3" / "my-bucket" / "models" / "m.bin"
        ).read_bytes() == b"weights"
        store, key = artifacts.resolve("s3://my-bucket/models/m.bin")
        assert isinstance(store, LocalObjectStore)
        assert key == str(tmp_path / "root" / "s3" / "my-bucket" / "models" / "m.bin").lstrip("/")
        assert [uri for uri, _ in artifacts.list("s3://my-bucket/")] == [
            "s3://my-bucket/models/m.bin"
        ]

    def test_s3_root_without_endpoint_maps_under_home(self, tmp_path: Path) -> None:
        artifacts = Artifacts(
            Settings.load(env={}, home=str(tmp_path), artifact_root="s3://bkt/root/")
        )
        assert artifacts.default_uri("jobs", "j1") == "s3://bkt/root/jobs/j1"
        artifacts.put_bytes(artifacts.default_uri("jobs", "j1", "x"), b"1")
        assert (
            tmp_path / "artifacts" / "s3" / "bkt" / "root" / "jobs" / "j1" / "x"
        ).read_bytes() == b"1"

    def test_file_uris_and_plain_paths_reach_the_same_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        artifacts = Artifacts(Settings.load(env={}, home=str(tmp_path / "home")))
        target = tmp_path / "with space" / "f.txt"
        artifacts.put_bytes(target.as_uri(), b"via uri")
        assert artifacts.get_bytes(str(target)) == b"via uri"
        monkeypatch.chdir(tmp_path)
        assert artifacts.get_bytes("with space/f.txt") == b"via uri"
        assert [uri for uri, _ in artifacts.list("with space/")] == ["with space/f.txt"]
        listed = [uri for uri, _ in artifacts.list((tmp_path / "with space").as_uri() + "/")]
        assert listed == [target.as_uri()]

    def test_default_uri_is_a_file_uri_under_a_local_root(self, tmp_path: Path) -> None:
        artifacts = Artifacts(Settings.load(env={}, home=str(tmp_path)))
        assert artifacts.default_uri("a/", "/b") == (tmp_path / "artifacts" / "a" / "b").as_uri()

    def test_from_environment_reads_modelyard_variables(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name in [n for n in os.environ if n.startswith("MODELYARD_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("MODELYARD_HOME", str(tmp_path))
        monkeypatch.setenv("MODELYARD_ARTIFACT_ROOT", str(tmp_path / "elsewhere"))
        artifacts = Artifacts.from_environment()
        artifacts.put_bytes("s3://b1/k", b"v")
        assert (tmp_path / "elsewhere" / "s3" / "b1" / "k").read_bytes() == b"v"

    @pytest.mark.parametrize(
        "uri", ["s3://bkt/a/../../../etc/passwd", "s3://bkt/./x", "http://host/x", "s3:///key"]
    )
    def test_unsafe_or_unknown_uris_are_refused(self, tmp_path: Path, uri: str) -> None:
        artifacts = Artifacts(Settings.load(env={}, home=str(tmp_path)))
        with pytest.raises(ArtifactError):
            artifacts.put_bytes(uri, b"x")


class TestObjects:
    def test_single_object_operations(self, artifacts: Artifacts) -> None:
        uri = artifacts.default_uri("one", "obj.json")
        assert not artifacts.exists(uri)
        assert artifacts.put_bytes(uri, b'{"a": 1}') == 8
        assert artifacts.exists(uri)
        assert artifacts.stat(uri).size == 8
        with artifacts.open_read(uri) as f:
            assert json.load(f) == {"a": 1}
        artifacts.delete(uri)
        with pytest.raises(ArtifactNotFound):
            artifacts.get_bytes(uri)

    def test_list_returns_uris_spelt_like_the_prefix(self, artifacts: Artifacts) -> None:
        base = artifacts.default_uri("listing")
        seed(artifacts, base, DATA)
        listed = [(uri, info.size) for uri, info in artifacts.list(f"{base}/data/train")]
        assert listed == [
            (f"{base}/data/train-extra/c.csv", 4),
            (f"{base}/data/train/a.csv", 4),
            (f"{base}/data/train/sub/b.csv", 4),
        ]
        assert all(artifacts.get_bytes(uri) == DATA[uri[len(base) + 1 :]] for uri, _ in listed)


class TestDownloadPrefix:
    def test_folder_prefix(self, artifacts: Artifacts, tmp_path: Path) -> None:
        base = artifacts.default_uri("dl")
        seed(artifacts, base, DATA)
        assert artifacts.download_prefix(f"{base}/data/train/", tmp_path / "out") == 2
        assert files_under(tmp_path / "out") == {"a.csv": b"1,2\n", "sub/b.csv": b"3,4\n"}

    def test_partial_name_prefix_keeps_the_names_after_the_last_slash(
        self, artifacts: Artifacts, tmp_path: Path
    ) -> None:
        base = artifacts.default_uri("dl")
        seed(artifacts, base, DATA)
        assert artifacts.download_prefix(f"{base}/data/tr", tmp_path / "out") == 3
        assert files_under(tmp_path / "out") == {
            "train/a.csv": b"1,2\n",
            "train/sub/b.csv": b"3,4\n",
            "train-extra/c.csv": b"5,6\n",
        }

    def test_single_object(self, artifacts: Artifacts, tmp_path: Path) -> None:
        base = artifacts.default_uri("dl")
        seed(artifacts, base, DATA)
        assert artifacts.download_prefix(f"{base}/data/test/d.csv", tmp_path / "out") == 1
        assert files_under(tmp_path / "out") == {"d.csv": b"7,8\n"}

    def test_nothing_matched(self, artifacts: Artifacts, tmp_path: Path) -> None:
        with pytest.raises(ArtifactNotFound):
            artifacts.download_prefix(artifacts.default_uri("nothing", "here/"), tmp_path / "out")


class TestManifest:
    def test_manifest_entries_land_at_their_relative_keys(
        self, artifacts: Artifacts, tmp_path: Path
    ) -> None:
        base = artifacts.default_uri("mf")
        seed(artifacts, base, DATA)
        manifest = [{"prefix": f"{base}/data/"}, "train/a.csv", "test/d.csv"]
        artifacts.put_bytes(f"{base}/train.manifest", json.dumps(manifest).encode())
        assert artifacts.download_manifest(f"{base}/train.manifest", tmp_path / "out") == 2
        assert files_under(tmp_path / "out") == {"train/a.csv": b"1,2\n", "test/d.csv": b"7,8\n"}

    @pytest.mark.parametrize(
        "manifest",
        [
            b"not json",
            b'{"prefix": "x"}',
            b'["no-prefix-object"]',
            b'[{"prefix": "s3://b/"}, 7]',
            b'[{"prefix": "s3://b/"}, "../up"]',
        ],
    )
    def test_malformed_manifests_are_refused(
        self, artifacts: Artifacts, tmp_path: Path, manifest: bytes
    ) -> None:
        uri = artifacts.default_uri("mf", "bad.manifest")
        artifacts.put_bytes(uri, manifest)
        with pytest.raises(ArtifactError):
            artifacts.download_manifest(uri, tmp_path / "out")
        assert not (tmp_path / "up").exists()

    def test_missing_listed_object_is_not_found(self, artifacts: Artifacts, tmp_path: Path) -> None:
        base = artifacts.default_uri("mf")
        artifacts.put_bytes(
            f"{base}/m", json.dumps([{"prefix": f"{base}/"}, "absent.csv"]).encode()
        )
        with pytest.raises(ArtifactNotFound):
            artifacts.download_manifest(f"{base}/m", tmp_path / "out")


class TestSharding:
    def test_shards_are_disjoint_and_complete(self, artifacts: Artifacts, tmp_path: Path) -> None:
        base = artifacts.default_uri("shard")
        seed(artifacts, base, {f"part-{i:02d}": str(i).encode() for i in range(7)})
        everything = [uri for uri, _ in artifacts.list(f"{base}/")]
        shards = [
            [uri for uri, _ in artifacts.list_for_host(f"{base}/", i, 3, sharded=True)]
            for i in range(3)
        ]
        assert [len(s) for s in shards] == [3, 2, 2]
        assert sorted(uri for s in shards for uri in s) == everything
        assert set(shards[0]).isdisjoint(shards[1]) and set(shards[1]).isdisjoint(shards[2])
        assert [
            uri for uri, _ in artifacts.list_for_host(f"{base}/", 1, 3, sharded=False)
        ] == everything

    def test_sharded_downloads_split_the_files(self, artifacts: Artifacts, tmp_path: Path) -> None:
        base = artifacts.default_uri("shard")
        objects = {f"part-{i}": str(i).encode() for i in range(5)}
        seed(artifacts, base, objects)
        got: dict[str, bytes] = {}
        for host in range(2):
            out = tmp_path / f"algo-{host + 1}"
            count = artifacts.download_prefix(
                f"{base}/", out, host_index=host, host_count=2, sharded=True
            )
            files = files_under(out)
            assert count == len(files)
            assert not set(files) & set(got)
            got.update(files)
        assert got == objects

    def test_an_empty_shard_is_not_an_error(self, artifacts: Artifacts, tmp_path: Path) -> None:
        base = artifacts.default_uri("shard")
        seed(artifacts, base, {"only": b"1"})
        assert (
            artifacts.download_prefix(
                f"{base}/", tmp_path / "h2", host_index=1, host_count=2, sharded=True
            )
            == 0
        )

    def test_manifest_sharding(self, artifacts: Artifacts, tmp_path: Path) -> None:
        base = artifacts.default_uri("shard")
        seed(artifacts, base, {"x/1": b"1", "x/2": b"2", "x/3": b"3"})
        artifacts.put_bytes(
            f"{base}/m", json.dumps([{"prefix": f"{base}/x/"}, "1", "2", "3"]).encode()
        )
        first = artifacts.download_manifest(
            f"{base}/m", tmp_path / "a", host_index=0, host_count=2, sharded=True
        )
        second = artifacts.download_manifest(
            f"{base}/m", tmp_path / "b", host_index=1, host_count=2, sharded=True
        )
        assert (first, second) == (2, 1)
        assert files_under(tmp_path / "a") | files_under(tmp_path / "b") == {
            "1": b"1",
            "2": b"2",
            "3": b"3",
        }

    @pytest.mark.parametrize(("index", "count"), [(2, 2), (-1, 2), (0, 0)])
    def test_bad_host_index(self, artifacts: Artifacts, index: int, count: int) -> None:
        with pytest.raises(ArtifactError):
            artifacts.list_for_host(artifacts.default_uri("x/"), index, count, sharded=True)


class TestUploads:
    def test_upload_dir_round_trips(self, artifacts: Artifacts, tmp_path: Path) -> None:
        src = tmp_path / "src"
        (src / "nested" / "deeper").mkdir(parents=True)
        (src / "top.txt").write_bytes(b"top")
        (src / "nested" / "deeper" / "leaf name.bin").write_bytes(bytes(range(256)))
        prefix = artifacts.default_uri("up", "model")
        assert artifacts.upload_dir(src, prefix) == 2
        assert artifacts.download_prefix(prefix + "/", tmp_path / "back") == 2
        assert files_under(tmp_path / "back") == files_under(src)

    def test_upload_file_returns_its_size(self, artifacts: Artifacts, tmp_path: Path) -> None:
        path = tmp_path / "f"
        path.write_bytes(b"12345")
        uri = artifacts.default_uri("up", "f")
        assert artifacts.upload_file(path, uri) == 5
        assert artifacts.get_bytes(uri) == b"12345"
        with pytest.raises(ArtifactNotFound):
            artifacts.upload_file(tmp_path / "absent", uri)

    def test_sync_dir_uploads_only_new_or_changed_files(
        self, artifacts: Artifacts, tmp_path: Path
    ) -> None:
        local = tmp_path / "checkpoints"
        local.mkdir()
        (local / "a.ckpt").write_bytes(b"a1")
        (local / "b.ckpt").write_bytes(b"b1")
        prefix = artifacts.default_uri("ckpt")
        seen: dict[str, tuple[int, float]] = {}
        assert artifacts.sync_dir(local, prefix, seen) == 2
        assert set(seen) == {"a.ckpt", "b.ckpt"}
        assert artifacts.sync_dir(local, prefix, seen) == 0

        # Change a's content behind the store's back: only a re-uploads.
        (local / "a.ckpt").write_bytes(b"a2-longer")
        os.utime(local / "a.ckpt", (1_000_000_000, 1_000_000_000))
        (local / "sub").mkdir()
        (local / "sub" / "c.ckpt").write_bytes(b"c1")
        artifacts.delete(f"{prefix}/b.ckpt")  # proves b is not uploaded again
        assert artifacts.sync_dir(local, prefix, seen) == 2
        assert artifacts.get_bytes(f"{prefix}/a.ckpt") == b"a2-longer"
        assert artifacts.get_bytes(f"{prefix}/sub/c.ckpt") == b"c1"
        assert not artifacts.exists(f"{prefix}/b.ckpt")

        (local / "a.ckpt").unlink()
        assert artifacts.sync_dir(local, prefix, seen) == 0
        assert set(seen) == {"b.ckpt", "sub/c.ckpt"}

    def test_sync_of_a_missing_folder_uploads_nothing(
        self, artifacts: Artifacts, tmp_path: Path
    ) -> None:
        assert artifacts.sync_dir(tmp_path / "absent", artifacts.default_uri("ckpt"), {}) == 0
