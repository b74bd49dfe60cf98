"""URI parsing and joining: pure functions, no store involved."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelyard.artifacts import ParsedUri, check_key, join_uri, parse_uri
from modelyard.core.errors import ArtifactError


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/data/train/", ParsedUri("s3", "bucket", "data/train/")),
        ("s3://bucket", ParsedUri("s3", "bucket", "")),
        ("S3://bucket/k%20literal", ParsedUri("s3", "bucket", "k%20literal")),
        ("file:///tmp/a%20b/c", ParsedUri("file", "", "/tmp/a b/c")),
        ("file://localhost/tmp/x/", ParsedUri("file", "", "/tmp/x/")),
        ("/tmp/x/../y/", ParsedUri("file", "", "/tmp/y/")),
    ],
)
def test_parse_uri(uri: str, expected: ParsedUri) -> None:
    assert parse_uri(uri) == expected


def test_relative_paths_resolve_against_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_uri("data/train/") == ParsedUri("file", "", f"{os.getcwd()}/data/train/")


@pytest.mark.parametrize(
    "uri", ["", "s3://", "s3:///key", "gs://bucket/key", "file://otherhost/x", "s3://b/\x00"]
)
def test_parse_uri_refuses(uri: str) -> None:
    with pytest.raises(ArtifactError):
        parse_uri(uri)


@pytest.mark.parametrize(
    ("base", "parts", "expected"),
    [
        ("s3://bucket/jobs/", ("/j1/", "output"), "s3://bucket/jobs/j1/output"),
        ("s3://bucket", ("a", "", "b/c/"), "s3://bucket/a/b/c"),
        ("s3://bucket/x/", (), "s3://bucket/x"),
        ("file:///", ("tmp", "x y"), "file:///tmp/x%20y"),
        ("file:///tmp/", (), "file:///tmp"),
        ("/", ("a",), "/a"),
        ("/srv/data//", ("m.tar.gz",), "/srv/data/m.tar.gz"),
        ("relative/dir/", ("f",), "relative/dir/f"),
    ],
)
def test_join_uri(base: str, parts: tuple[str, ...], expected: str) -> None:
    assert join_uri(base, *parts) == expected


def test_joined_file_uris_parse_back_to_the_literal_names() -> None:
    assert parse_uri(join_uri("file:///tmp", "50%", "a b")).key == "/tmp/50%/a b"


@pytest.mark.parametrize("key", ["", "/a", "a/../b", "a/./b", "..", "a/\x00"])
def test_check_key_refuses(key: str) -> None:
    with pytest.raises(ArtifactError):
        check_key(key)


def test_check_key_accepts_dots_inside_names() -> None:
    assert check_key("b/..hidden/x..y/.z") == "b/..hidden/x..y/.z"
