"""Data capture: sampled invocations land as JSON lines in the hour-partitioned layout."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import ROLE, XGBOOST_IMAGE
from tests.integration.endpoint_helpers import csv_rows, wait_in_service
from tests.support.server import RunningServer, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("home"), {"MODELYARD_CAPTURE_FLUSH_SECONDS": "0.5"})
    yield running
    running.stop()


def _endpoint(sm: Any, name: str, model_data: Path, capture: dict[str, Any]) -> None:
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": XGBOOST_IMAGE, "ModelDataUrl": str(model_data),
        "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}})
    sm.create_endpoint_config(EndpointConfigName=name, DataCaptureConfig=capture, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    wait_in_service(sm, name)


def _captured(root: Path, deadline_seconds: float = 20, at_least: int = 1) -> list[tuple[Path, dict[str, Any]]]:
    deadline = time.monotonic() + deadline_seconds
    while True:
        lines = [(path, json.loads(line)) for path in sorted(root.rglob("*.jsonl"))
                 for line in path.read_text().splitlines()]
        if len(lines) >= at_least or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def test_every_invocation_is_captured_in_model_monitors_layout(
    server: RunningServer, boosters: dict[str, tuple[Any, Path]], tmp_path: Path
) -> None:
    sm = server.client("sagemaker")
    destination = tmp_path / "capture"
    _endpoint(sm, "captured", boosters["small"][1], {
        "EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": str(destination),
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]})
    described = sm.describe_endpoint(EndpointName="captured")["DataCaptureConfig"]
    assert described == {"EnableCapture": True, "CaptureStatus": "Started",
                         "CurrentSamplingPercentage": 100, "DestinationS3Uri": str(destination)}
    runtime = server.client("sagemaker-runtime")
    body = csv_rows(1)[1]
    answers = [runtime.invoke_endpoint(EndpointName="captured", ContentType="text/csv", Body=body,
                                       InferenceId=f"req-{i}")["Body"].read() for i in range(5)]
    lines = _captured(destination, at_least=5)
    assert len(lines) == 5
    for path, _ in lines:
        relative = path.relative_to(destination).as_posix()
        assert re.fullmatch(r"captured/AllTraffic/\d{4}/\d{2}/\d{2}/\d{2}/\d{2}-\d{2}-\d{3}-[0-9a-f-]{36}\.jsonl", relative)
    records = sorted((record for _, record in lines), key=lambda r: r["eventMetadata"]["inferenceId"])
    assert [r["eventMetadata"]["inferenceId"] for r in records] == [f"req-{i}" for i in range(5)]
    first = records[0]
    assert first["eventVersion"] == "0"
    assert first["captureData"]["endpointInput"] == {
        "observedContentType": "text/csv", "mode": "INPUT", "data": body.decode(), "encoding": "CSV"}
    output = first["captureData"]["endpointOutput"]
    assert output["mode"] == "OUTPUT" and output["encoding"] == "CSV"
    assert output["data"].encode() == answers[0]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", first["eventMetadata"]["inferenceTime"])


def test_sampling_zero_captures_nothing(server: RunningServer, boosters: dict[str, tuple[Any, Path]], tmp_path: Path) -> None:
    sm = server.client("sagemaker")
    destination = tmp_path / "none"
    _endpoint(sm, "uncaptured", boosters["small"][1], {
        "EnableCapture": True, "InitialSamplingPercentage": 0, "DestinationS3Uri": str(destination),
        "CaptureOptions": [{"CaptureMode": "InputAndOutput"}]})
    runtime = server.client("sagemaker-runtime")
    for _ in range(10):
        runtime.invoke_endpoint(EndpointName="uncaptured", ContentType="text/csv", Body=csv_rows(1)[1])
    time.sleep(1.5)  # three flush intervals
    assert list(destination.rglob("*.jsonl")) == []
