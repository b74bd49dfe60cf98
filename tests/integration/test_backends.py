"""The scale-out shape: PostgreSQL as the metadata store and an S3 server as the artifact store."""

from __future__ import annotations

import io
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.integration.conftest import make_sourcedir, script_job
from tests.support.postgres import PostgresServer
from tests.support.seaweedfs import S3Server
from tests.support.server import start_server, wait_for_job

pytestmark = [pytest.mark.postgresql, pytest.mark.s3]

SCRIPT = """
import os, time
rows = open(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "data.csv")).read().splitlines()
time.sleep(float(os.environ.get("NAP", "0")))
open(os.path.join(os.environ["SM_MODEL_DIR"], "rows.txt"), "w").write(str(len(rows)))
print(f"rows={len(rows)}")
"""


def _s3(server: S3Server) -> Any:
    return boto3.session.Session().client(
        "s3", endpoint_url=server.endpoint_url, region_name="us-east-1",
        aws_access_key_id=server.access_key_id, aws_secret_access_key=server.secret_access_key,
        config=Config(s3={"addressing_style": "path"}),
    )


def test_training_on_postgresql_and_s3_survives_a_crash(
    tmp_path: Path, postgres_server: PostgresServer, s3_server: S3Server
) -> None:
    bucket = f"backends-{uuid.uuid4().hex[:8]}"
    s3 = _s3(s3_server)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="data/train/data.csv", Body=b"1,2\n3,4\n5,6\n")
    code = make_sourcedir(tmp_path / "code", SCRIPT)
    s3.upload_file(str(code), bucket, "code/sourcedir.tar.gz")
    env = {
        "MODELYARD_DB_URL": postgres_server.create_database(f"srv_{uuid.uuid4().hex[:12]}"),
        "MODELYARD_ARTIFACT_ROOT": f"s3://{bucket}/modelyard",
        "MODELYARD_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "MODELYARD_S3_ACCESS_KEY_ID": s3_server.access_key_id,
        "MODELYARD_S3_SECRET_ACCESS_KEY": s3_server.secret_access_key,
    }
    home = tmp_path / "home"
    server = start_server(home, env)
    try:
        sm = server.client("sagemaker")
        request = script_job(
            "on-postgres", Path("/unused"), f"s3://{bucket}/output",
            Environment={"NAP": "3"},
            InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/data/train/"}}}],
        )
        request["HyperParameters"]["sagemaker_submit_directory"] = f'"s3://{bucket}/code/sourcedir.tar.gz"'
        sm.create_training_job(**request)
        deadline = time.monotonic() + 60
        while sm.describe_training_job(TrainingJobName="on-postgres")["SecondaryStatus"] != "Training":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        server.kill()
        assert not (home / "modelyard.db").exists()  # the metadata went to PostgreSQL
        server = start_server(home, env)
        sm = server.client("sagemaker")
        job = wait_for_job(sm, "on-postgres", timeout=60)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        key = "output/on-postgres/output/model.tar.gz"
        assert job["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{bucket}/{key}"
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            assert tar.extractfile("rows.txt").read() == b"3"  # type: ignore[union-attr]
        assert [m["MetricName"] for m in job["FinalMetricDataList"]] == []
    finally:
        server.stop()
