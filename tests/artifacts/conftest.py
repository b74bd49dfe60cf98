"""Backends for the artifact tests: a local folder always, SeaweedFS's S3 gateway when present.

The S3 server is started once per session. Without the ``weed`` binary the S3 cases are
skipped, unless ``MODELYARD_REQUIRE_BACKENDS=1`` (CI), where they fail instead.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from modelyard.artifacts import Artifacts, LocalObjectStore, ObjectStore
from modelyard.core.settings import Settings
from tests.support.seaweedfs import S3Server

BACKENDS = [pytest.param("local", id="local"), pytest.param("s3", id="s3", marks=pytest.mark.s3)]


@pytest.fixture(scope="session")
def s3_bucket(s3_server: S3Server) -> str:
    """One bucket shared by the session's S3 tests (each test works under its own prefix).

    SeaweedFS gives every bucket its own volumes, so a bucket per test would cost memory.
    """
    return "modelyard-tests"


def s3_settings(server: S3Server, home: Path, artifact_root: str) -> Settings:
    """Settings that send ``s3://`` to ``server``; nothing is read from the environment."""
    return Settings.load(
        env={},
        home=str(home),
        artifact_root=artifact_root,
        s3_endpoint_url=server.endpoint_url,
        s3_access_key_id=server.access_key_id,
        s3_secret_access_key=server.secret_access_key,
        region=server.region,
    )


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[ObjectStore, str]:
    """``(store, base)``: a fresh store and a key prefix (``bucket/unique``) no test shares."""
    unique = uuid.uuid4().hex[:12]
    if request.param == "local":
        return LocalObjectStore(tmp_path / "root"), f"bucket/{unique}"
    from modelyard.artifacts.s3 import S3ObjectStore

    server: S3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    s3 = S3ObjectStore(
        server.endpoint_url, server.access_key_id, server.secret_access_key, server.region
    )
    return s3, f"{bucket}/{unique}"


@pytest.fixture(params=BACKENDS)
def artifacts(request: pytest.FixtureRequest, tmp_path: Path) -> Artifacts:
    """The facade over a local artifact root, or over an ``s3://`` root on SeaweedFS.

    Tests write below ``artifacts.default_uri(...)``, which is unique per test either way.
    """
    home = tmp_path / "home"
    if request.param == "local":
        return Artifacts(Settings.load(env={}, home=str(home)))
    server: S3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    root = f"s3://{bucket}/facade-{uuid.uuid4().hex[:12]}"
    return Artifacts(s3_settings(server, home, root))
