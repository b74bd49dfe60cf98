"""Serverless variants: scale to zero, cold start on demand, MaxConcurrency throttling."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import ROLE, SKLEARN_IMAGE
from tests.integration.endpoint_helpers import model_tar, wait_in_service
from tests.support.server import RunningServer, start_server

SLOW_MODEL = b"""
import time
def model_fn(model_dir):
    return None
def input_fn(body, content_type):
    return body
def predict_fn(data, model):
    time.sleep(0.6)
    return data
def output_fn(prediction, accept):
    return prediction
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("home"), {"MODELYARD_SERVERLESS_IDLE_SECONDS": "3"})
    yield running
    running.stop()


def _instances(sm: Any, endpoint: str) -> int:
    return int(sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0]["CurrentInstanceCount"])


def test_scale_to_zero_cold_start_and_throttling(server: RunningServer, tmp_path: Path) -> None:
    sm = server.client("sagemaker")
    model = model_tar(tmp_path, {"code/inference.py": SLOW_MODEL})
    sm.create_model(ModelName="echo", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": SKLEARN_IMAGE, "ModelDataUrl": str(model), "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}})
    sm.create_endpoint_config(EndpointConfigName="echo-serverless", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "echo",
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 1}}])
    described = sm.describe_endpoint_config(EndpointConfigName="echo-serverless")
    assert described["ProductionVariants"][0]["ServerlessConfig"]["MaxConcurrency"] == 1
    sm.create_endpoint(EndpointName="echo", EndpointConfigName="echo-serverless")
    endpoint = wait_in_service(sm, "echo")
    assert endpoint["ProductionVariants"][0]["CurrentServerlessConfig"]["MemorySizeInMB"] == 2048
    assert _instances(sm, "echo") == 0  # nothing runs until the first request

    runtime = server.client("sagemaker-runtime")
    answer = runtime.invoke_endpoint(EndpointName="echo", ContentType="text/plain", Body=b"cold")
    assert answer["Body"].read() == b"cold"
    assert _instances(sm, "echo") == 1

    outcomes: list[str] = []

    def call() -> None:
        try:
            runtime_client = server.client("sagemaker-runtime")
            runtime_client.invoke_endpoint(EndpointName="echo", ContentType="text/plain", Body=b"x")
            outcomes.append("ok")
        except ClientError as e:
            outcomes.append(f'{e.response["Error"]["Code"]}:{e.response["ResponseMetadata"]["HTTPStatusCode"]}')

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcomes.count("ok") >= 1
    assert "ThrottlingException:429" in outcomes

    deadline = time.monotonic() + 30  # idle for 3 s: back to zero
    while _instances(sm, "echo") != 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    again = runtime.invoke_endpoint(EndpointName="echo", ContentType="text/plain", Body=b"warm again")
    assert again["Body"].read() == b"warm again"


@pytest.mark.parametrize(("variant", "expected"), [
    ({"ServerlessConfig": {"MemorySizeInMB": 1500, "MaxConcurrency": 2}}, "MemorySizeInMB must be one of"),
    ({"ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 2}, "InstanceType": "ml.m5.large"},
     "cannot be combined with ServerlessConfig"),
    ({"ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 2, "ProvisionedConcurrency": 3}},
     "ProvisionedConcurrency cannot exceed MaxConcurrency"),
])
def test_invalid_serverless_configs(server: RunningServer, tmp_path: Path, variant: dict[str, Any], expected: str) -> None:
    sm = server.client("sagemaker")
    try:
        sm.describe_model(ModelName="plain")
    except ClientError:
        sm.create_model(ModelName="plain", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": SKLEARN_IMAGE})
    with pytest.raises(ClientError) as err:
        sm.create_endpoint_config(EndpointConfigName="bad-serverless", ProductionVariants=[
            {"VariantName": "v", "ModelName": "plain", **variant}])
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert expected in err.value.response["Error"]["Message"]
