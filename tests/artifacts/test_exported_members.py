"""The public surface of modelyard.artifacts is exactly what __all__ lists."""

from __future__ import annotations

import subprocess
import sys

from modelyard import artifacts


def test_exported_members() -> None:
    assert sorted(artifacts.__all__) == [
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
    for name in artifacts.__all__:
        assert getattr(artifacts, name).__module__.startswith("modelyard.artifacts")


def test_importing_the_package_does_not_import_boto3() -> None:
    # A job process that only touches local files should not pay for boto3.
    code = "import sys, modelyard.artifacts; print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
