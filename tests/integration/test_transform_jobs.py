"""Batch transform through boto3: an XGBoost model over CSV and JSON Lines objects."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import ROLE, XGBOOST_IMAGE
from tests.integration.endpoint_helpers import model_tar, train_booster
from tests.support.server import RunningServer, start_server, wait_for_status

xgboost = pytest.importorskip("xgboost")

FEATURES = 30
JSONL_HANDLERS = b"""
import json
import numpy as np

def input_fn(body, content_type):
    return np.asarray([json.loads(line) for line in body.splitlines()], dtype=np.float32)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # room for two ml.m5.large hosts at once, whatever this machine has
    env = {"MODELYARD_CPUS": "8", "MODELYARD_MEMORY_GIB": "64"}
    running = start_server(tmp_path_factory.mktemp("home"), env)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def booster() -> Any:
    return train_booster(5)


@pytest.fixture(scope="module")
def models(sm: Any, booster: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("models")
    raw = bytes(booster.save_raw("ubj"))
    plain = model_tar(root / "plain", {"xgboost-model": raw})
    jsonl = model_tar(root / "jsonl", {"xgboost-model": raw, "code/inference.py": JSONL_HANDLERS})
    sm.create_model(ModelName="xgb-batch", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": XGBOOST_IMAGE, "ModelDataUrl": str(plain)})
    sm.create_model(ModelName="xgb-jsonl", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": XGBOOST_IMAGE, "ModelDataUrl": str(jsonl),
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
    })
    return {"csv": "xgb-batch", "jsonl": "xgb-jsonl"}


def _matrix(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(10.0, 5.0, size=(rows, FEATURES)).round(6)


def _csv(x: np.ndarray, ids: bool = False) -> str:
    lines = [(f"id{i}," if ids else "") + ",".join(repr(float(v)) for v in row) for i, row in enumerate(x)]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _job(name: str, model: str, source: Path, output: str, **extra: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TransformJobName": name,
        "ModelName": model,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(source)}},
            "ContentType": "text/csv", "SplitType": "Line",
        },
        "TransformOutput": {"S3OutputPath": output, "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(request.get(key), dict):
            request[key] = {**request[key], **value}
        else:
            request[key] = value
    return request


def wait_for_transform(sm: Any, name: str, timeout: float = 120.0) -> dict[str, Any]:
    return wait_for_status(lambda: sm.describe_transform_job(TransformJobName=name),
                           "TransformJobStatus", timeout)


def _predictions(path: Path) -> np.ndarray:
    return np.array([float(v) for v in path.read_text().splitlines()])


def _expected(booster: Any, x: np.ndarray) -> np.ndarray:
    return booster.inplace_predict(x.astype(np.float32))


def test_multirecord_csv_keeps_input_order_per_object(sm: Any, models: dict[str, str], booster: Any, tmp_path: Path) -> None:
    x1, x2 = _matrix(5000, 1), _matrix(3000, 2)
    _write(tmp_path / "in" / "a.csv", _csv(x1))
    _write(tmp_path / "in" / "sub" / "b.csv", _csv(x2))
    out = tmp_path / "out"
    arn = sm.create_transform_job(**_job(
        "multi", models["csv"], tmp_path / "in", str(out),
        BatchStrategy="MultiRecord", MaxPayloadInMB=1, MaxConcurrentTransforms=2,
    ))["TransformJobArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:transform-job/multi"
    job = wait_for_transform(sm, "multi")
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert job["TransformEndTime"] >= job["TransformStartTime"] >= job["CreationTime"]
    assert (job["ModelName"], job["BatchStrategy"], job["MaxPayloadInMB"]) == ("xgb-batch", "MultiRecord", 1)
    assert job["TransformInput"]["SplitType"] == "Line"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["a.csv.out", "sub/b.csv.out"]
    np.testing.assert_allclose(_predictions(out / "a.csv.out"), _expected(booster, x1), rtol=1e-5)
    np.testing.assert_allclose(_predictions(out / "sub" / "b.csv.out"), _expected(booster, x2), rtol=1e-5)


def test_single_record_sends_one_row_per_request(sm: Any, models: dict[str, str], booster: Any, tmp_path: Path) -> None:
    x = _matrix(25, 3)
    _write(tmp_path / "in" / "rows.csv", _csv(x))
    sm.create_transform_job(**_job("single", models["csv"], tmp_path / "in" / "rows.csv", str(tmp_path / "out"),
                                   BatchStrategy="SingleRecord"))
    job = wait_for_transform(sm, "single")
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    np.testing.assert_allclose(_predictions(tmp_path / "out" / "rows.csv.out"), _expected(booster, x), rtol=1e-5)


def test_join_with_input_and_filters(sm: Any, models: dict[str, str], booster: Any, tmp_path: Path) -> None:
    x = _matrix(40, 4)
    _write(tmp_path / "in" / "ids.csv", _csv(x, ids=True))
    sm.create_transform_job(**_job(
        "joined", models["csv"], tmp_path / "in", str(tmp_path / "out"),
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"},
    ))
    job = wait_for_transform(sm, "joined")
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    assert job["DataProcessing"]["JoinSource"] == "Input"
    rows = [line.split(",") for line in (tmp_path / "out" / "ids.csv.out").read_text().splitlines()]
    assert [r[0] for r in rows] == [f"id{i}" for i in range(40)]
    assert all(len(r) == 2 for r in rows)
    np.testing.assert_allclose([float(r[1]) for r in rows], _expected(booster, x), rtol=1e-5)


def test_json_lines_join_under_sagemaker_output(sm: Any, models: dict[str, str], booster: Any, tmp_path: Path) -> None:
    x = _matrix(12, 5)
    objects = "".join(json.dumps({"id": i, "features": row.tolist()}) + "\n" for i, row in enumerate(x))
    arrays = "".join(json.dumps(row.tolist()) + "\n" for row in x)
    _write(tmp_path / "objects" / "o.jsonl", objects)
    _write(tmp_path / "arrays" / "a.jsonl", arrays)
    jsonl = {"ContentType": "application/jsonlines"}
    accept = {"Accept": "application/jsonlines"}
    sm.create_transform_job(**_job(
        "jsonl-objects", models["jsonl"], tmp_path / "objects", str(tmp_path / "out1"),
        TransformInput=jsonl, TransformOutput=accept,
        DataProcessing={"InputFilter": "$.features", "JoinSource": "Input"},
    ))
    sm.create_transform_job(**_job(
        "jsonl-arrays", models["jsonl"], tmp_path / "arrays", str(tmp_path / "out2"),
        TransformInput=jsonl, TransformOutput=accept, DataProcessing={"JoinSource": "Input"},
    ))
    expected = _expected(booster, x)
    for name in ("jsonl-objects", "jsonl-arrays"):
        job = wait_for_transform(sm, name)
        assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    joined = [json.loads(line) for line in (tmp_path / "out1" / "o.jsonl.out").read_text().splitlines()]
    assert [(r["id"], r["features"]) for r in joined] == [(i, row.tolist()) for i, row in enumerate(x)]
    np.testing.assert_allclose([r["SageMakerOutput"]["score"] for r in joined], expected, rtol=1e-5)
    wrapped = [json.loads(line) for line in (tmp_path / "out2" / "a.jsonl.out").read_text().splitlines()]
    assert [r["SageMakerInput"] for r in wrapped] == [row.tolist() for row in x]
    np.testing.assert_allclose([r["SageMakerOutput"]["score"] for r in wrapped], expected, rtol=1e-5)


def test_two_instances_split_the_objects(server: RunningServer, sm: Any, models: dict[str, str], booster: Any, tmp_path: Path) -> None:
    matrices = {f"part-{i}.csv": _matrix(50 + i, 10 + i) for i in range(4)}
    for name, x in matrices.items():
        _write(tmp_path / "in" / name, _csv(x))
    sm.create_transform_job(**_job("two-hosts", models["csv"], tmp_path / "in", str(tmp_path / "out"),
                                   TransformResources={"InstanceCount": 2}))
    job = wait_for_transform(sm, "two-hosts")
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    for name, x in matrices.items():
        np.testing.assert_allclose(_predictions(tmp_path / "out" / f"{name}.out"), _expected(booster, x), rtol=1e-5)
    logs = server.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TransformJobs",
                                        logStreamNamePrefix="two-hosts/")["logStreams"]
    assert [s["logStreamName"].rsplit("-", 1)[0] for s in streams] == ["two-hosts/algo-1", "two-hosts/algo-2"]
    for stream in streams:
        events = logs.get_log_events(logGroupName="/aws/sagemaker/TransformJobs",
                                     logStreamName=stream["logStreamName"], startFromHead=True)["events"]
        messages = [e["message"] for e in events]
        assert any("2 input object(s)" in m for m in messages), messages
        assert any(m.endswith(" objects=2/2") and "progress records=" in m for m in messages), messages


def test_record_over_the_payload_limit_fails_the_job(sm: Any, models: dict[str, str], tmp_path: Path) -> None:
    big = ",".join(["1.5"] * 300_000)  # ~1.2 MB on one line
    _write(tmp_path / "in" / "big.csv", "1,2,3\n" + big + "\n")
    sm.create_transform_job(**_job("too-big", models["csv"], tmp_path / "in", str(tmp_path / "out"), MaxPayloadInMB=1))
    job = wait_for_transform(sm, "too-big")
    assert job["TransformJobStatus"] == "Failed"
    assert "big.csv" in job["FailureReason"]
    assert "larger than MaxPayloadInMB (1 MB)" in job["FailureReason"]
    assert not (tmp_path / "out" / "big.csv.out").exists()


def test_stop_a_running_job(sm: Any, models: dict[str, str], tmp_path: Path) -> None:
    _write(tmp_path / "in" / "many.csv", _csv(_matrix(20000, 7)))
    sm.create_transform_job(**_job("stopped", models["csv"], tmp_path / "in", str(tmp_path / "out"),
                                   BatchStrategy="SingleRecord"))
    time.sleep(1.0)
    sm.stop_transform_job(TransformJobName="stopped")
    assert sm.describe_transform_job(TransformJobName="stopped")["TransformJobStatus"] in ("Stopping", "Stopped")
    job = wait_for_transform(sm, "stopped")
    assert job["TransformJobStatus"] == "Stopped"
    assert not (tmp_path / "out" / "many.csv.out").exists()
    with pytest.raises(ClientError) as e:
        sm.stop_transform_job(TransformJobName="stopped")
    assert e.value.response["Error"]["Code"] == "ValidationException"


def test_errors_and_listing(sm: Any, models: dict[str, str], tmp_path: Path) -> None:
    _write(tmp_path / "in" / "x.csv", _csv(_matrix(3, 8)))
    request = _job("errors-1", models["csv"], tmp_path / "in", str(tmp_path / "out"))
    sm.create_transform_job(**request)
    with pytest.raises(ClientError) as e:
        sm.create_transform_job(**request)
    assert e.value.response["Error"]["Code"] == "ResourceInUse"
    with pytest.raises(ClientError) as e:
        sm.describe_transform_job(TransformJobName="no-such-job")
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "Could not find" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        sm.create_transform_job(**{**request, "TransformJobName": "errors-2", "ModelName": "no-model"})
    assert e.value.response["Error"]["Message"] == 'Could not find model "arn:aws:sagemaker:us-east-1:000000000000:model/no-model".'
    with pytest.raises(ClientError) as e:
        sm.create_transform_job(**_job("errors-3", models["csv"], tmp_path / "in", str(tmp_path / "out"),
                                       TransformInput={"SplitType": "RecordIO"}))
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "RecordIO" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        sm.create_transform_job(**_job("errors-4", models["csv"], tmp_path / "in", str(tmp_path / "out"),
                                       MaxPayloadInMB=50, MaxConcurrentTransforms=4))
    assert e.value.response["Error"]["Code"] == "ValidationException"
    job = wait_for_transform(sm, "errors-1")
    assert job["TransformJobStatus"] == "Completed", job.get("FailureReason")
    with pytest.raises(ClientError) as e:
        sm.stop_transform_job(TransformJobName="errors-1")
    assert e.value.response["Error"]["Code"] == "ValidationException"
    listed = sm.list_transform_jobs(NameContains="errors-", StatusEquals="Completed")["TransformJobSummaries"]
    assert [(j["TransformJobName"], j["TransformJobStatus"]) for j in listed] == [("errors-1", "Completed")]
    newest = sm.list_transform_jobs(SortBy="CreationTime", SortOrder="Descending", MaxResults=1)
    assert newest["TransformJobSummaries"][0]["TransformJobName"] == "errors-1"
    assert "NextToken" in newest


def test_sdk_transformer_and_cli(server: RunningServer, models: dict[str, str], booster: Any, tmp_path: Path) -> None:
    import modelyard
    from tests.integration.test_sdk_cli import _cli

    x = _matrix(30, 9)
    _write(tmp_path / "in" / "sdk.csv", _csv(x))
    session = modelyard.Session(endpoint_url=server.url, home=server.home)
    transformer = modelyard.Transformer(
        models["csv"], output_path=tmp_path / "out", strategy="MultiRecord", assemble_with="Line",
        accept="text/csv", max_payload=2, max_concurrent_transforms=2, session=session,
    )
    transformer.transform(tmp_path / "in", content_type="text/csv", split_type="Line",
                          job_name="sdk-job", logs=False)
    assert transformer.describe()["TransformJobStatus"] == "Completed"
    np.testing.assert_allclose(_predictions(tmp_path / "out" / "sdk.csv.out"), _expected(booster, x), rtol=1e-5)

    described = json.loads(_cli(server, "transform-jobs", "describe", "sdk-job", "-o", "json").stdout)
    assert described["TransformJobStatus"] == "Completed"
    assert described["Progress"] == {"records": 30, "objects": 1, "total_objects": 1}
    listed = json.loads(_cli(server, "transform-jobs", "list", "--name-contains", "sdk-", "-o", "json").stdout)
    assert [j["TransformJobName"] for j in listed] == ["sdk-job"]
    lines = _cli(server, "transform-jobs", "logs", "sdk-job").stdout.splitlines()
    assert any("progress records=30 objects=1/1" in line for line in lines)

    with pytest.raises(modelyard.TransformFailed, match="Could not find|No input objects"):
        transformer.transform(tmp_path / "empty-dir-that-does-not-exist", content_type="text/csv",
                              job_name="sdk-missing", logs=False)
