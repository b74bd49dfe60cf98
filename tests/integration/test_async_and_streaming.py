"""InvokeEndpointAsync and InvokeEndpointWithResponseStream through boto3."""

from __future__ import annotations

import json
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError, EventStreamError

from tests.integration.conftest import SKLEARN_IMAGE
from tests.integration.endpoint_helpers import create_model, csv_rows, model_tar, wait_in_service
from tests.support.server import RunningServer, start_server

xgboost = pytest.importorskip("xgboost")

OUTPUT = "s3://async-bucket/out"
FAILURES = "s3://async-bucket/failures"

STREAMING = b"""
import json
def model_fn(model_dir):
    return "tok"
def input_fn(body, content_type):
    return json.loads(body)
def predict_fn(data, model):
    for i in range(data["n"]):
        if i == data.get("fail_at"):
            raise RuntimeError(f"boom at {i}")
        yield f"{model}-{i};"
"""

# Appends a line to "marker" when a call starts, so a test sees when (and how often) it ran.
SLOW = b"""
import json, time
def model_fn(model_dir):
    return None
def transform_fn(model, body, content_type, accept):
    request = json.loads(body)
    with open(request["marker"], "a") as f:
        f.write("started\\n")
    time.sleep(request["sleep"])
    return json.dumps({"y": 2 * request["x"]}), "application/json"
"""


def _async_config(sm: Any, name: str, model: str, limit: int = 2) -> None:
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": model,
                             "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
        AsyncInferenceConfig={"ClientConfig": {"MaxConcurrentInvocationsPerInstance": limit},
                              "OutputConfig": {"S3OutputPath": OUTPUT, "S3FailurePath": FAILURES}},
    )


def _local(server: RunningServer, uri: str) -> Path:
    """Where an s3:// URI lives in the server's home (no S3 endpoint is configured)."""
    assert uri.startswith("s3://"), uri
    return server.home / "artifacts" / "s3" / uri[len("s3://"):]


def _wait_for_object(server: RunningServer, uri: str, timeout: float = 90) -> bytes:
    path = _local(server, uri)
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{uri} never appeared"
        time.sleep(0.1)
    return path.read_bytes()


@pytest.fixture(scope="module")
def async_endpoint(server: RunningServer, sm: Any, boosters: dict[str, tuple[Any, Path]]) -> str:  # noqa: F811
    create_model(sm, "xgb-async", boosters["small"][1])
    _async_config(sm, "xgb-async-config", "xgb-async")
    sm.create_endpoint(EndpointName="xgb-async", EndpointConfigName="xgb-async-config")
    wait_in_service(sm, "xgb-async")
    return "xgb-async"


def test_async_config_is_validated_and_echoed(sm: Any, async_endpoint: str) -> None:
    config = sm.describe_endpoint_config(EndpointConfigName="xgb-async-config")["AsyncInferenceConfig"]
    assert config == {"ClientConfig": {"MaxConcurrentInvocationsPerInstance": 2},
                      "OutputConfig": {"S3OutputPath": OUTPUT, "S3FailurePath": FAILURES}}
    variants = [{"VariantName": "v", "ModelName": "xgb-async", "InstanceType": "ml.m5.large",
                 "InitialInstanceCount": 1}]
    for output, phrase in (({"S3OutputPath": OUTPUT, "NotificationConfig": {"SuccessTopic": "arn:aws:sns:us-east-1:000000000000:done"}}, "not supported"),
                           ({"S3FailurePath": FAILURES}, "S3OutputPath is required")):
        with pytest.raises(ClientError) as err:
            sm.create_endpoint_config(EndpointConfigName="bad-async", ProductionVariants=variants,
                                      AsyncInferenceConfig={"OutputConfig": output})
        assert err.value.response["Error"]["Code"] == "ValidationException"
        assert phrase in err.value.response["Error"]["Message"]
    serverless = [{"VariantName": "v", "ModelName": "xgb-async",
                   "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1}}]
    with pytest.raises(ClientError) as err:
        sm.create_endpoint_config(EndpointConfigName="bad-async", ProductionVariants=serverless,
                                  AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": OUTPUT}})
    assert "serverless variant cannot serve asynchronous" in err.value.response["Error"]["Message"]


def test_async_invocation_writes_the_predictions(server: RunningServer, async_endpoint: str, tmp_path: Path,
                                                 boosters: dict[str, tuple[Any, Path]]) -> None:  # noqa: F811
    runtime = server.client("sagemaker-runtime")
    x, body = csv_rows(10)
    expected = boosters["small"][0].predict(xgboost.DMatrix(x))
    _local(server, "s3://async-bucket/in/rows.csv").parent.mkdir(parents=True)
    _local(server, "s3://async-bucket/in/rows.csv").write_bytes(body)
    (tmp_path / "rows.csv").write_bytes(body)
    answers = [
        runtime.invoke_endpoint_async(EndpointName=async_endpoint, ContentType="text/csv",
                                      InputLocation="s3://async-bucket/in/rows.csv", InferenceId="mine-1"),
        runtime.invoke_endpoint_async(EndpointName=async_endpoint, ContentType="text/csv",
                                      InputLocation=str(tmp_path / "rows.csv"),
                                      S3OutputPathExtension="daily/run", Filename="scores.csv"),
    ]
    assert answers[0]["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert answers[0]["InferenceId"] == "mine-1"
    assert answers[0]["OutputLocation"].startswith(OUTPUT + "/") and answers[0]["OutputLocation"].endswith(".out")
    uuid = answers[0]["OutputLocation"][len(OUTPUT) + 1:-len(".out")]
    assert answers[0]["FailureLocation"] == f"{FAILURES}/{uuid}-error.out"
    assert answers[1]["OutputLocation"] == f"{OUTPUT}/daily/run/scores.csv"
    for answer in answers:
        got = np.array([float(v) for v in _wait_for_object(server, answer["OutputLocation"]).split()])
        np.testing.assert_allclose(got, expected, rtol=1e-5)
        assert not _local(server, answer["FailureLocation"]).exists()


def test_async_invocation_of_a_bad_payload_writes_the_models_error(server: RunningServer, async_endpoint: str) -> None:
    runtime = server.client("sagemaker-runtime")
    path = _local(server, "s3://async-bucket/in/bad.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"1.0,abc\n")
    answer = runtime.invoke_endpoint_async(EndpointName=async_endpoint, ContentType="text/csv",
                                           InputLocation="s3://async-bucket/in/bad.csv")
    error = _wait_for_object(server, answer["FailureLocation"]).decode()
    assert "(415)" in error and "not numeric" in error, error
    assert not _local(server, answer["OutputLocation"]).exists()
    missing = runtime.invoke_endpoint_async(EndpointName=async_endpoint, ContentType="text/csv",
                                            InputLocation="s3://async-bucket/in/nothing-here.csv")
    assert "Cannot read the input" in _wait_for_object(server, missing["FailureLocation"]).decode()


def test_async_invocation_of_a_real_time_endpoint_is_refused(server: RunningServer, sm: Any,
                                                             boosters: dict[str, tuple[Any, Path]]) -> None:  # noqa: F811
    create_model(sm, "xgb-rt", boosters["small"][1])
    sm.create_endpoint_config(EndpointConfigName="xgb-rt-config", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "xgb-rt", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="xgb-rt", EndpointConfigName="xgb-rt-config")
    runtime = server.client("sagemaker-runtime")
    for name, phrase in (("xgb-rt", "is not an asynchronous endpoint"),
                         ("no-such-endpoint", "Endpoint no-such-endpoint of account 000000000000 not found.")):
        with pytest.raises(ClientError) as err:
            runtime.invoke_endpoint_async(EndpointName=name, InputLocation="s3://async-bucket/in/rows.csv")
        assert err.value.response["Error"]["Code"] == "ValidationError"
        assert phrase in err.value.response["Error"]["Message"]


def test_queued_and_running_invocations_survive_a_server_crash(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home")
    try:
        sm = server.client("sagemaker")
        tar = model_tar(tmp_path / "slow", {"code/inference.py": SLOW})
        create_model(sm, "slow", tar, image=SKLEARN_IMAGE, env={"SAGEMAKER_PROGRAM": "inference.py"})
        _async_config(sm, "slow-config", "slow", limit=1)
        sm.create_endpoint(EndpointName="slow", EndpointConfigName="slow-config")
        wait_in_service(sm, "slow")
        runtime = server.client("sagemaker-runtime")
        answers = {}
        for name, sleep, x in (("running", 3, 1), ("queued", 0, 5)):
            marker = tmp_path / f"{name}.marker"
            answers[name] = runtime.invoke_endpoint_async(
                EndpointName="slow", ContentType="application/json",
                Body=json.dumps({"marker": str(marker), "sleep": sleep, "x": x}).encode())
            if name == "running":  # it runs: the one call the instance may take is taken
                deadline = time.monotonic() + 60
                while not marker.exists():
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
        server.kill()
        assert not (tmp_path / "queued.marker").exists()
        server = start_server(tmp_path / "home")
        assert json.loads(_wait_for_object(server, answers["running"]["OutputLocation"])) == {"y": 2}
        assert json.loads(_wait_for_object(server, answers["queued"]["OutputLocation"])) == {"y": 10}
        # the interrupted call ran again after the restart; the queued one ran once
        assert (tmp_path / "running.marker").read_text().count("started") == 2
        assert (tmp_path / "queued.marker").read_text().count("started") == 1
    finally:
        server.stop()


@pytest.fixture(scope="module")
def streaming_endpoint(server: RunningServer, sm: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    tar = model_tar(tmp_path_factory.mktemp("streaming"), {"code/inference.py": STREAMING})
    create_model(sm, "streaming", tar, image=SKLEARN_IMAGE, env={"SAGEMAKER_PROGRAM": "inference.py"})
    sm.create_endpoint_config(EndpointConfigName="streaming-config", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "streaming", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="streaming", EndpointConfigName="streaming-config")
    wait_in_service(sm, "streaming")
    return "streaming"


def test_response_stream_relays_each_chunk_as_a_payload_part(server: RunningServer, streaming_endpoint: str) -> None:
    runtime = server.client("sagemaker-runtime")
    response = runtime.invoke_endpoint_with_response_stream(
        EndpointName=streaming_endpoint, ContentType="application/json", Body=b'{"n": 5}')
    assert response["InvokedProductionVariant"] == "AllTraffic"
    with closing(response["Body"]) as stream:  # boto3 leaves the connection to the caller
        events = list(stream)
    assert events == [{"PayloadPart": {"Bytes": f"tok-{i};".encode()}} for i in range(5)]
    # InvokeEndpoint on the same handler gets the chunks joined
    joined = runtime.invoke_endpoint(EndpointName=streaming_endpoint, ContentType="application/json", Body=b'{"n": 3}')
    assert joined["Body"].read() == b"tok-0;tok-1;tok-2;"


def test_a_failure_mid_stream_is_a_model_stream_error(server: RunningServer, streaming_endpoint: str) -> None:
    runtime = server.client("sagemaker-runtime")
    response = runtime.invoke_endpoint_with_response_stream(
        EndpointName=streaming_endpoint, ContentType="application/json", Body=b'{"n": 5, "fail_at": 2}')
    received = []
    with pytest.raises(EventStreamError) as err, closing(response["Body"]) as stream:
        for event in stream:
            received.append(event["PayloadPart"]["Bytes"])
    assert received == [b"tok-0;", b"tok-1;"]
    assert err.value.response["Error"]["Code"] == "ModelStreamError"
    assert "boom at 2" in err.value.response["Error"]["Message"]
    # a failure before the first chunk is an ordinary ModelError
    with pytest.raises(ClientError) as before:
        runtime.invoke_endpoint_with_response_stream(
            EndpointName=streaming_endpoint, ContentType="application/json", Body=b'{"n": 5, "fail_at": 0}')
    assert before.value.response["Error"]["Code"] == "ModelError"
    assert "boom at 0" in before.value.response["Error"]["Message"]


def test_a_non_streaming_handler_streams_one_part(server: RunningServer, async_endpoint: str,
                                                  boosters: dict[str, tuple[Any, Path]]) -> None:  # noqa: F811
    runtime = server.client("sagemaker-runtime")
    x, body = csv_rows(3)
    response = runtime.invoke_endpoint_with_response_stream(EndpointName=async_endpoint, ContentType="text/csv", Body=body)
    with closing(response["Body"]) as stream:
        [event] = list(stream)
    got = np.array([float(v) for v in event["PayloadPart"]["Bytes"].split()])
    np.testing.assert_allclose(got, boosters["small"][0].predict(xgboost.DMatrix(x)), rtol=1e-5)
    with pytest.raises(ClientError) as err:
        runtime.invoke_endpoint_with_response_stream(EndpointName="nope", ContentType="text/csv", Body=body)
    assert err.value.response["Error"]["Code"] == "ValidationError"
