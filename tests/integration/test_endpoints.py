"""Real-time endpoints through boto3: models, configs, endpoints, invocations, updates."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import ROLE, SKLEARN_IMAGE, XGBOOST_IMAGE
from tests.integration.endpoint_helpers import (
    Load,
    create_model,
    csv_rows,
    endpoint_config,
    error_alarm,
    model_tar,
    wait_in_service,
)
from tests.support.server import RunningServer, start_server

xgboost = pytest.importorskip("xgboost")


@pytest.fixture(scope="module")
def endpoint(server: RunningServer, sm: Any, boosters: dict[str, tuple[Any, Path]]) -> str:
    create_model(sm, "xgb-small", boosters["small"][1])
    endpoint_config(sm, "xgb-small-config", [("AllTraffic", "xgb-small", 1.0)])
    sm.create_endpoint(EndpointName="xgb", EndpointConfigName="xgb-small-config")
    assert sm.describe_endpoint(EndpointName="xgb")["EndpointStatus"] == "Creating"
    wait_in_service(sm, "xgb")
    return "xgb"


def test_invoke_returns_the_models_predictions(server: RunningServer, endpoint: str, boosters: dict[str, tuple[Any, Path]]) -> None:
    runtime = server.client("sagemaker-runtime")
    booster = boosters["small"][0]
    x, body = csv_rows(20)
    response = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body)
    assert response["ContentType"] == "text/csv"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    got = np.array([float(v) for v in response["Body"].read().decode().split()])
    np.testing.assert_allclose(got, booster.predict(xgboost.DMatrix(x)), rtol=1e-5)
    one = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Accept="application/json", Body=csv_rows(1)[1])
    assert one["ContentType"].startswith("application/json")
    assert '"predictions"' in one["Body"].read().decode()


def test_describe_and_list(sm: Any, endpoint: str) -> None:
    described = sm.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointConfigName"] == "xgb-small-config"
    [variant] = described["ProductionVariants"]
    assert (variant["VariantName"], variant["CurrentInstanceCount"], variant["CurrentWeight"]) == ("AllTraffic", 1, 1.0)
    names = [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
    assert endpoint in names
    model = sm.describe_model(ModelName="xgb-small")
    assert model["PrimaryContainer"]["Image"] == XGBOOST_IMAGE
    config = sm.describe_endpoint_config(EndpointConfigName="xgb-small-config")
    assert config["ProductionVariants"][0]["InitialVariantWeight"] == 1.0


def test_errors_clients_depend_on(server: RunningServer, sm: Any, endpoint: str, boosters: dict[str, tuple[Any, Path]]) -> None:
    def error(call: Any, **kwargs: Any) -> dict[str, str]:
        with pytest.raises(ClientError) as err:
            call(**kwargs)
        return err.value.response["Error"]

    assert error(sm.describe_endpoint, EndpointName="nope")["Message"].startswith('Could not find endpoint "arn:aws:sagemaker:')
    duplicate = error(sm.create_model, ModelName="xgb-small", PrimaryContainer={"Image": XGBOOST_IMAGE}, ExecutionRoleArn=ROLE)
    assert duplicate["Code"] == "ValidationException" and "Cannot create already existing model" in duplicate["Message"]
    missing = error(sm.create_endpoint_config, EndpointConfigName="orphan", ProductionVariants=[
        {"VariantName": "v", "ModelName": "no-model", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    assert missing["Message"].startswith('Could not find model "')
    assert error(sm.create_endpoint, EndpointName="e2", EndpointConfigName="no-config")["Message"].startswith(
        'Could not find endpoint configuration "')
    runtime = server.client("sagemaker-runtime")
    unknown = error(runtime.invoke_endpoint, EndpointName="nope", ContentType="text/csv", Body=b"1")
    assert unknown["Code"] == "ValidationError"
    assert unknown["Message"] == "Endpoint nope of account 000000000000 not found."
    with pytest.raises(ClientError) as err:
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="application/x-unknown", Body=b"abc")
    assert err.value.response["Error"]["Code"] == "ModelError"
    assert err.value.response["OriginalStatusCode"] == 415
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424


def test_traffic_split_and_target_variant(server: RunningServer, sm: Any, boosters: dict[str, tuple[Any, Path]]) -> None:
    create_model(sm, "xgb-large", boosters["large"][1])
    endpoint_config(sm, "split-config", [("Small", "xgb-small", 3.0), ("Large", "xgb-large", 1.0)])
    sm.create_endpoint(EndpointName="split", EndpointConfigName="split-config")
    wait_in_service(sm, "split")
    runtime = server.client("sagemaker-runtime")
    body = csv_rows(1)[1]
    seen = Counter(
        runtime.invoke_endpoint(EndpointName="split", ContentType="text/csv", Body=body)["InvokedProductionVariant"]
        for _ in range(200)
    )
    assert set(seen) == {"Small", "Large"}
    assert 0.6 < seen["Small"] / 200 < 0.9  # 75 % expected
    targeted = runtime.invoke_endpoint(EndpointName="split", ContentType="text/csv", Body=body, TargetVariant="Large")
    assert targeted["InvokedProductionVariant"] == "Large"
    sm.update_endpoint_weights_and_capacities(EndpointName="split", DesiredWeightsAndCapacities=[
        {"VariantName": "Small", "DesiredWeight": 0.0}])
    wait_in_service(sm, "split")
    later = {runtime.invoke_endpoint(EndpointName="split", ContentType="text/csv", Body=body)["InvokedProductionVariant"]
             for _ in range(30)}
    assert later == {"Large"}


def test_update_under_load_loses_no_request(server: RunningServer, sm: Any, boosters: dict[str, tuple[Any, Path]]) -> None:
    create_model(sm, "upd-v1", boosters["small"][1])
    create_model(sm, "upd-v2", boosters["large"][1])
    endpoint_config(sm, "upd-c1", [("Blue", "upd-v1", 1.0)])
    endpoint_config(sm, "upd-c2", [("Green", "upd-v2", 1.0)])
    sm.create_endpoint(EndpointName="upd", EndpointConfigName="upd-c1")
    wait_in_service(sm, "upd")
    runtime = server.client("sagemaker-runtime")
    body = csv_rows(1)[1]
    with Load(server, "upd", body, threads=2) as load:
        time.sleep(0.5)
        sm.update_endpoint(EndpointName="upd", EndpointConfigName="upd-c2")
        assert sm.describe_endpoint(EndpointName="upd")["EndpointStatus"] == "Updating"
        wait_in_service(sm, "upd")
        time.sleep(3)  # past the old fleet's drain
    failures, variants = load.failures, load.variants
    assert failures == []
    assert variants[0] == "Blue" and variants[-1] == "Green"
    assert sm.describe_endpoint(EndpointName="upd")["EndpointConfigName"] == "upd-c2"
    assert runtime.invoke_endpoint(EndpointName="upd", ContentType="text/csv", Body=body)["InvokedProductionVariant"] == "Green"


def test_custom_handlers_and_a_crashing_worker(server: RunningServer, sm: Any, tmp_path: Path) -> None:
    script = b"""
import json, os
def model_fn(model_dir):
    return json.load(open(os.path.join(model_dir, "weights.json")))
def input_fn(body, content_type):
    if body.strip() in ("crash", b"crash"):
        os._exit(1)
    return [float(v) for v in json.loads(body)]
def predict_fn(data, model):
    return sum(w * v for w, v in zip(model["w"], data))
def output_fn(prediction, accept):
    return json.dumps({"y": prediction})
"""
    tar = model_tar(tmp_path, {"weights.json": b'{"w": [1, 2, 3]}', "code/inference.py": script})
    create_model(sm, "custom", tar, image=SKLEARN_IMAGE, env={"SAGEMAKER_PROGRAM": "inference.py"})
    endpoint_config(sm, "custom-config", [("AllTraffic", "custom", 1.0)])
    sm.create_endpoint(EndpointName="custom", EndpointConfigName="custom-config")
    wait_in_service(sm, "custom")
    runtime = server.client("sagemaker-runtime")
    answer = runtime.invoke_endpoint(EndpointName="custom", ContentType="application/json", Body=b"[1, 1, 2]")
    assert answer["Body"].read() == b'{"y": 9.0}'
    with pytest.raises(ClientError) as err:
        runtime.invoke_endpoint(EndpointName="custom", ContentType="application/json", Body=b"crash")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] >= 500
    deadline = time.monotonic() + 60
    while True:  # the dead worker is replaced; later requests succeed
        try:
            again = runtime.invoke_endpoint(EndpointName="custom", ContentType="application/json", Body=b"[0, 0, 1]")
            break
        except ClientError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert again["Body"].read() == b'{"y": 3.0}'


def test_delete_endpoint(server: RunningServer, sm: Any, endpoint: str) -> None:
    sm.create_endpoint(EndpointName="short-lived", EndpointConfigName="xgb-small-config")
    wait_in_service(sm, "short-lived")
    sm.delete_endpoint(EndpointName="short-lived")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="short-lived", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    with pytest.raises(ClientError) as err:
        server.client("sagemaker-runtime").invoke_endpoint(EndpointName="short-lived", ContentType="text/csv", Body=csv_rows(1)[1])
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert sm.describe_endpoint_config(EndpointConfigName="xgb-small-config")["EndpointConfigName"] == "xgb-small-config"


def test_endpoints_survive_a_server_crash(tmp_path: Path, boosters: dict[str, tuple[Any, Path]]) -> None:
    server = start_server(tmp_path / "home")
    try:
        sm = server.client("sagemaker")
        create_model(sm, "m", boosters["small"][1])
        endpoint_config(sm, "c", [("AllTraffic", "m", 1.0)])
        sm.create_endpoint(EndpointName="durable", EndpointConfigName="c")
        wait_in_service(sm, "durable")
        instances = sorted(p.name for p in (tmp_path / "home/endpoints/durable").iterdir())
        server.kill()
        server = start_server(tmp_path / "home")
        sm = server.client("sagemaker")
        assert sm.describe_endpoint(EndpointName="durable")["EndpointStatus"] == "InService"
        runtime = server.client("sagemaker-runtime")
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = runtime.invoke_endpoint(EndpointName="durable", ContentType="text/csv", Body=csv_rows(1)[1])
                break
            except ClientError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert float(answer["Body"].read()) > 0
        # the instance was reattached, not started again
        assert sorted(p.name for p in (tmp_path / "home/endpoints/durable").iterdir()) == instances
    finally:
        server.stop()


def test_canary_update_shifts_traffic_in_steps_under_load(server: RunningServer, sm: Any, boosters: dict[str, tuple[Any, Path]]) -> None:
    create_model(sm, "can-v1", boosters["small"][1])
    create_model(sm, "can-v2", boosters["large"][1])
    endpoint_config(sm, "can-c1", [("Blue", "can-v1", 1.0)])
    endpoint_config(sm, "can-c2", [("Green", "can-v2", 1.0)])
    sm.create_endpoint(EndpointName="canary", EndpointConfigName="can-c1")
    wait_in_service(sm, "canary")
    body = csv_rows(1)[1]
    with Load(server, "canary", body) as load:
        sm.update_endpoint(EndpointName="canary", EndpointConfigName="can-c2", DeploymentConfig={
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 3,
                                                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50}},
                "TerminationWaitInSeconds": 1, "MaximumExecutionTimeoutInSeconds": 600,
            }})
        wait_in_service(sm, "canary")
        time.sleep(2.5)
    failures = load.failures
    assert failures == []
    variants = load.variants
    # blue only, then both while the canary bakes, then green only
    first_green = variants.index("Green")
    last_blue = len(variants) - 1 - variants[::-1].index("Blue")
    mixed = variants[first_green:last_blue + 1]
    assert 0.2 < mixed.count("Green") / len(mixed) < 0.8, Counter(mixed)
    assert variants[-1] == "Green" and set(variants[last_blue + 1:]) == {"Green"}
    described = sm.describe_endpoint(EndpointName="canary")
    assert described["EndpointConfigName"] == "can-c2" and "FailureReason" not in described


def test_update_to_a_broken_model_rolls_back(server: RunningServer, sm: Any, endpoint: str, tmp_path: Path) -> None:
    broken = model_tar(tmp_path, {"code/inference.py": b"raise RuntimeError('cannot even import')\n"})
    create_model(sm, "broken", broken, image=SKLEARN_IMAGE, env={"SAGEMAKER_PROGRAM": "inference.py"})
    endpoint_config(sm, "broken-config", [("Broken", "broken", 1.0)])
    sm.update_endpoint(EndpointName="xgb", EndpointConfigName="broken-config", DeploymentConfig={
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}}})
    deadline = time.monotonic() + 120
    while True:
        endpoint = sm.describe_endpoint(EndpointName="xgb")
        if endpoint["EndpointStatus"] == "InService":
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert endpoint["EndpointConfigName"] == "xgb-small-config"
    assert "cannot even import" in endpoint["FailureReason"]
    answer = server.client("sagemaker-runtime").invoke_endpoint(EndpointName="xgb", ContentType="text/csv", Body=csv_rows(1)[1])
    assert answer["InvokedProductionVariant"] == "AllTraffic"


def test_alarm_during_canary_rolls_back(server: RunningServer, sm: Any, boosters: dict[str, tuple[Any, Path]], tmp_path: Path) -> None:
    failing = model_tar(tmp_path, {"code/inference.py": (
        b"def model_fn(model_dir):\n    return None\n"
        b"def predict_fn(data, model):\n    raise RuntimeError('version 2 is broken')\n")})
    create_model(sm, "alarm-v1", boosters["small"][1])
    create_model(sm, "alarm-v2", failing, image=SKLEARN_IMAGE, env={"SAGEMAKER_PROGRAM": "inference.py"})
    endpoint_config(sm, "alarm-c1", [("Stable", "alarm-v1", 1.0)])
    endpoint_config(sm, "alarm-c2", [("Broken", "alarm-v2", 1.0)])
    sm.create_endpoint(EndpointName="guarded", EndpointConfigName="alarm-c1")
    wait_in_service(sm, "guarded")
    error_alarm(server, "guarded-5xx", "guarded", "Broken")
    runtime = server.client("sagemaker-runtime")
    body = csv_rows(1)[1]
    with Load(server, "guarded", body) as load:
        sm.update_endpoint(EndpointName="guarded", EndpointConfigName="alarm-c2", DeploymentConfig={
            "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
                "Type": "CANARY", "WaitIntervalInSeconds": 60, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25}}},
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "guarded-5xx"}]},
        })
        endpoint = wait_in_service(sm, "guarded", timeout=60)  # long before the 60 s bake would end
    codes = load.failures
    assert endpoint["EndpointConfigName"] == "alarm-c1"
    assert "guarded-5xx" in endpoint["FailureReason"]
    assert "ModelError" in codes  # the canary did get traffic, and failed
    after = runtime.invoke_endpoint(EndpointName="guarded", ContentType="text/csv", Body=body)
    assert after["InvokedProductionVariant"] == "Stable"
