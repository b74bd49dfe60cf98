"""The SDK's endpoint faces against a live server: real-time, serverless and asynchronous."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelyard
from modelyard.sdk.async_inference import (
    AsyncInferenceConfig,
    AsyncInferenceModelError,
    AsyncPredictor,
    ServerlessInferenceConfig,
    WaiterConfig,
)
from modelyard.sdk.serializers import CSVSerializer, JSONSerializer
from tests.support.server import RunningServer

xgboost = pytest.importorskip("xgboost")
WORKERS = {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}


def _session(server: RunningServer) -> modelyard.Session:
    return modelyard.Session(endpoint_url=server.url, home=server.home)


def _rows(count: int) -> np.ndarray:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer().data[:count]


def test_deploy_predict_update_and_delete(server: RunningServer, sm: Any, boosters: dict[str, tuple[Any, Path]]) -> None:
    session = _session(server)
    small, large = boosters["small"], boosters["large"]
    model = modelyard.Model(model_data=small[1], framework="xgboost", env=WORKERS, session=session)
    predictor = model.deploy(endpoint_name="sdk-realtime")
    x = _rows(3)
    got = predictor.predict(x)
    assert np.allclose(got.ravel(), small[0].predict(xgboost.DMatrix(x)), rtol=1e-5)
    second = modelyard.Model(model_data=large[1], framework="xgboost", env=WORKERS, session=session)
    described = predictor.update(second.create(), variant_name="Second", deployment_config={
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}}})
    assert described["EndpointStatus"] == "InService"
    assert np.allclose(predictor.predict(x).ravel(), large[0].predict(xgboost.DMatrix(x)), rtol=1e-5)
    assert predictor.last_variant == "Second"
    predictor.delete_endpoint()
    deadline = time.monotonic() + 60
    while sm.list_endpoints(NameContains="sdk-realtime")["Endpoints"]:  # Deleting, then gone
        assert time.monotonic() < deadline, "the endpoint was never deleted"
        time.sleep(0.2)


def test_serverless_deploy(server: RunningServer, sm: Any, boosters: dict[str, tuple[Any, Path]]) -> None:
    session = _session(server)
    model = modelyard.Model(model_data=boosters["small"][1], framework="xgboost", session=session)
    predictor = model.deploy(endpoint_name="sdk-serverless", serverless_inference_config=ServerlessInferenceConfig(
        memory_size_in_mb=1024, max_concurrency=2))
    x = _rows(2)
    assert np.allclose(predictor.predict(x).ravel(), boosters["small"][0].predict(xgboost.DMatrix(x)), rtol=1e-5)
    variant = sm.describe_endpoint(EndpointName="sdk-serverless")["ProductionVariants"][0]
    assert variant["CurrentServerlessConfig"] == {"MemorySizeInMB": 1024, "MaxConcurrency": 2}
    predictor.delete_endpoint()


def test_async_predictor(server: RunningServer, boosters: dict[str, tuple[Any, Path]], tmp_path: Path) -> None:
    session = _session(server)
    booster = boosters["small"][0]
    model = modelyard.Model(model_data=boosters["small"][1], framework="xgboost", env=WORKERS, session=session)
    output = tmp_path / "answers"
    predictor = model.deploy(endpoint_name="sdk-async", async_inference_config=AsyncInferenceConfig(
        output_path=str(output), failure_path=str(tmp_path / "failures"), max_concurrent_invocations_per_instance=2))
    assert isinstance(predictor, AsyncPredictor)
    waiter = WaiterConfig(max_attempts=300, delay=0.1)
    x = _rows(4)
    got = predictor.predict(x, waiter_config=waiter)
    assert np.allclose(got.ravel(), booster.predict(xgboost.DMatrix(x)), rtol=1e-5)
    # a body too large to send inline goes through the artifact store
    big = np.repeat(_rows(20), 200, axis=0)
    response = predictor.predict_async(big, inference_id="big-one")
    assert response.output_path.startswith(str(output)) and response.inference_id == "big-one"
    assert np.allclose(response.get_result(waiter).ravel(), booster.predict(xgboost.DMatrix(big)), rtol=1e-4)
    assert len(CSVSerializer().serialize(big)) > 128_000
    # the model's failure is raised with its message
    predictor.serializer = JSONSerializer()
    with pytest.raises(AsyncInferenceModelError):
        predictor.predict({"not": "rows"}, waiter_config=waiter)
    with pytest.raises(ValueError):
        predictor.predict_async()
    predictor.delete_endpoint()
