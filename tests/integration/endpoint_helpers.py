"""Helpers for tests that build models and endpoints: boosters, archives, configs, waits."""

from __future__ import annotations

import io
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from botocore.exceptions import ClientError
from sklearn.datasets import load_breast_cancer

from tests.integration.conftest import ROLE, XGBOOST_IMAGE


def train_booster(rounds: int, seed: int = 0) -> Any:
    import xgboost

    data = load_breast_cancer()
    dtrain = xgboost.DMatrix(data.data, label=data.target)
    params = {"objective": "binary:logistic", "max_depth": 3, "seed": seed}
    return xgboost.train(params, dtrain, num_boost_round=rounds)


def model_tar(directory: Path, files: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def create_model(sm: Any, name: str, data: Path, image: str = XGBOOST_IMAGE, env: dict[str, str] | None = None) -> None:
    # one worker per instance keeps the suite light on a 2-core machine
    container: dict[str, Any] = {"Image": image, "ModelDataUrl": str(data),
                                 "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1", **(env or {})}}
    sm.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn=ROLE)


def endpoint_config(sm: Any, name: str, variants: list[tuple[str, str, float]]) -> None:
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": variant, "ModelName": model, "InstanceType": "ml.m5.large",
         "InitialInstanceCount": 1, "InitialVariantWeight": weight}
        for variant, model, weight in variants
    ])


def wait_in_service(sm: Any, name: str, status: str = "InService", timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        endpoint = sm.describe_endpoint(EndpointName=name)
        if endpoint["EndpointStatus"] == status:
            return endpoint
        assert endpoint["EndpointStatus"] in ("Creating", "Updating", "InService"), endpoint
        assert time.monotonic() < deadline, f"{name} is still {endpoint['EndpointStatus']}"
        time.sleep(0.1)


def wait_until(condition: Any, timeout: float, message: str, interval: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something true (returned), failing with ``message``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, message
        time.sleep(interval)


def error_alarm(server: Any, name: str, endpoint: str, variant: str) -> None:
    """A CloudWatch alarm that fires on the first 5XX of ``variant`` (a rollback guardrail)."""
    server.client("cloudwatch").put_metric_alarm(
        AlarmName=name, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}],
        Statistic="Sum", Period=1, EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
    )


def csv_rows(count: int) -> tuple[np.ndarray, bytes]:
    x = load_breast_cancer().data[:count]
    return x, "\n".join(",".join(repr(float(v)) for v in row) for row in x).encode()


class Load:
    """Background InvokeEndpoint traffic while a test changes the endpoint (at most 120 s).

    Each call leaves one entry in ``outcomes``: ``(monotonic time, variant, None)`` on success,
    ``(time, None, error code)`` on any failure (codes, not exceptions: a kept traceback would
    keep the client's sockets alive past the test).
    """

    def __init__(self, server: Any, endpoint: str, body: bytes, threads: int = 1) -> None:
        self.server = server
        self.endpoint = endpoint
        self.body = body
        self.outcomes: list[tuple[float, str | None, str | None]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    @property
    def variants(self) -> list[str]:
        return [variant for _, variant, _ in self.outcomes if variant is not None]

    @property
    def failures(self) -> list[str]:
        return [error for _, _, error in self.outcomes if error is not None]

    def _run(self) -> None:
        client = self.server.client("sagemaker-runtime")
        deadline = time.monotonic() + 120
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    answer = client.invoke_endpoint(EndpointName=self.endpoint, ContentType="text/csv", Body=self.body)
                    self.outcomes.append((time.monotonic(), answer["InvokedProductionVariant"], None))
                except BaseException as e:  # any failure counts
                    code = e.response["Error"]["Code"] if isinstance(e, ClientError) else f"{type(e).__name__}: {e}"
                    self.outcomes.append((time.monotonic(), None, code))
        finally:
            client.close()  # its pooled sockets, not left to the garbage collector
