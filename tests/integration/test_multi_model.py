"""Multi-model endpoints through boto3: a prefix of XGBoost models, each invoked by TargetModel."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import ROLE, XGBOOST_IMAGE
from tests.integration.endpoint_helpers import (
    create_model,
    csv_rows,
    endpoint_config,
    model_tar,
    wait_in_service,
)
from tests.support.server import RunningServer

xgboost = pytest.importorskip("xgboost")

NAMES = ("alpha.tar.gz", "beta.tar.gz", "team/gamma.tar.gz")
# Each model is ~0.3 MB: one fits in this bound, two do not.
BOUND_MB = "0.5"


def noise_booster(seed: int) -> Any:
    """A booster of deep trees on random data: ~0.3 MB saved, its own predictions."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(2000, 30)), rng.normal(size=2000)
    params = {"max_depth": 8, "seed": seed, "nthread": 1}
    return xgboost.train(params, xgboost.DMatrix(x, label=y), num_boost_round=40)


@pytest.fixture(scope="module")
def boosters(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three boosters as model.tar.gz files under s3://mme-bucket/models/ (and a local copy)."""
    work = tmp_path_factory.mktemp("mme")
    prefix = server.home / "artifacts" / "s3" / "mme-bucket" / "models"
    out = {}
    for seed, name in enumerate(NAMES):
        booster = noise_booster(seed)
        archive = model_tar(work / str(seed), {"xgboost-model": bytes(booster.save_raw("ubj"))})
        (prefix / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(archive, prefix / name)
        (work / "local" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(archive, work / "local" / name)
        out[name] = booster
    # beside the prefix: a TargetModel that climbs out of it must never reach this one
    shutil.copy(work / "0" / "model.tar.gz", prefix.parent / "secret.tar.gz")
    out["local-prefix"] = work / "local"
    return out


def create_multi_model(sm: Any, name: str, prefix: str, env: dict[str, str] | None = None,
                       cache: str | None = None) -> None:
    container: dict[str, Any] = {
        "Image": XGBOOST_IMAGE, "Mode": "MultiModel", "ModelDataUrl": prefix,
        "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1", **(env or {})},
    }
    if cache:
        container["MultiModelConfig"] = {"ModelCacheSetting": cache}
    sm.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn=ROLE)


def deploy(sm: Any, endpoint: str, model: str) -> str:
    endpoint_config(sm, f"{endpoint}-config", [("AllTraffic", model, 1.0)])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=f"{endpoint}-config")
    wait_in_service(sm, endpoint)
    return endpoint


@pytest.fixture(scope="module")
def endpoint(sm: Any, boosters: dict[str, Any]) -> str:
    bound = {"MODELYARD_MULTI_MODEL_MEMORY_MB": BOUND_MB}
    create_multi_model(sm, "mme-model", "s3://mme-bucket/models/", bound)
    return deploy(sm, "mme", "mme-model")


def invoke(server: RunningServer, endpoint: str, body: bytes, **extra: str) -> np.ndarray:
    runtime = server.client("sagemaker-runtime")
    answer = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body,
                                     **extra)
    return np.array([float(v) for v in answer["Body"].read().decode().split()])


def expected(booster: Any, x: np.ndarray) -> np.ndarray:
    return booster.predict(xgboost.DMatrix(x))


def worker_lines(server: RunningServer, endpoint: str, words: str) -> list[str]:
    """The model server's log lines containing ``words``, read through CloudWatch Logs."""
    logs = server.client("logs")
    group = f"/aws/sagemaker/Endpoints/{endpoint}"
    lines = []
    for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
        events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"],
                                     startFromHead=True)["events"]
        lines += [e["message"] for e in events if words in e["message"]]
    return lines


def loads(server: RunningServer, endpoint: str) -> dict[str, int]:
    """How often each model was loaded (``Loaded model <name> in ...`` lines)."""
    counts = dict.fromkeys(NAMES, 0)
    for line in worker_lines(server, endpoint, "Loaded model "):
        counts[line.split("Loaded model ", 1)[1].split(" in ", 1)[0]] += 1
    return counts


def wait_for_loads(server: RunningServer, endpoint: str, wanted: dict[str, int]) -> dict[str, int]:
    """The load counts once they reach ``wanted`` (log lines arrive a moment after the answer)."""
    deadline = time.monotonic() + 10
    while (counts := loads(server, endpoint)) != wanted and time.monotonic() < deadline:
        time.sleep(0.1)
    return counts


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    return err.value.response


def test_describe_model_shows_the_multi_model_fields(sm: Any, endpoint: str) -> None:
    container = sm.describe_model(ModelName="mme-model")["PrimaryContainer"]
    assert container["Mode"] == "MultiModel"
    assert container["ModelDataUrl"] == "s3://mme-bucket/models/"
    create_multi_model(sm, "mme-described", "/tmp/models/", cache="Disabled")
    described = sm.describe_model(ModelName="mme-described")["PrimaryContainer"]
    assert described["MultiModelConfig"] == {"ModelCacheSetting": "Disabled"}
    refused = error_of(sm.create_model, ModelName="mme-bad", ExecutionRoleArn=ROLE,
                       PrimaryContainer={"Image": XGBOOST_IMAGE, "Mode": "MultiModel"})
    assert refused["Error"]["Code"] == "ValidationException"
    assert "needs ModelDataUrl" in refused["Error"]["Message"]
    # InvokeEndpointAsync cannot name a target: an asynchronous config is refused up front
    refused = error_of(sm.create_endpoint_config, EndpointConfigName="mme-async", ProductionVariants=[{
        "VariantName": "v", "ModelName": "mme-described", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}], AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "/tmp/out"}})
    assert refused["Error"]["Code"] == "ValidationException"
    assert "multi-model" in refused["Error"]["Message"]
    assert sm.list_endpoint_configs(NameContains="mme-async")["EndpointConfigs"] == []


def test_each_target_answers_with_its_own_model(server: RunningServer, endpoint: str,
                                                boosters: dict[str, Any]) -> None:
    x, body = csv_rows(10)
    answers = {}
    for name in NAMES:
        answers[name] = invoke(server, endpoint, body, TargetModel=name)
        np.testing.assert_allclose(answers[name], expected(boosters[name], x), rtol=1e-5)
    assert not np.allclose(answers[NAMES[0]], answers[NAMES[1]])
    assert not np.allclose(answers[NAMES[1]], answers[NAMES[2]])


def test_target_model_errors_are_validation_errors(
    server: RunningServer, sm: Any, endpoint: str, boosters: dict[str, Any], tmp_path: Path
) -> None:
    runtime = server.client("sagemaker-runtime")
    body = csv_rows(1)[1]

    def refused(**extra: str) -> str:
        response = error_of(runtime.invoke_endpoint, EndpointName=endpoint, ContentType="text/csv",
                            Body=body, **extra)
        assert response["Error"]["Code"] == "ValidationError", response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
        return str(response["Error"]["Message"])

    assert "TargetModel is required" in refused()
    assert refused(TargetModel="nope.tar.gz").startswith(
        "Failed to download model data(bucket: mme-bucket, key: models/nope.tar.gz)")
    for name in ("../secret.tar.gz", "/models/alpha.tar.gz", "team/../../secret.tar.gz",
                 "./alpha.tar.gz"):
        assert "TargetModel" in refused(TargetModel=name), name
    assert not worker_lines(server, endpoint, "secret")  # nothing outside the prefix was fetched
    streamed = error_of(runtime.invoke_endpoint_with_response_stream, EndpointName=endpoint,
                        ContentType="text/csv", Body=body)
    assert streamed["Error"]["Code"] == "ValidationError"
    assert "cannot name a TargetModel" in streamed["Error"]["Message"]
    create_model(sm, "single-model", model_tar(tmp_path, {"xgboost-model": bytes(
        boosters[NAMES[0]].save_raw("ubj"))}))
    single = deploy(sm, "single", "single-model")
    response = error_of(runtime.invoke_endpoint, EndpointName=single, ContentType="text/csv",
                        Body=body, TargetModel=NAMES[0])
    assert response["Error"]["Code"] == "ValidationError"
    assert "not a multi-model endpoint" in response["Error"]["Message"]
    assert invoke(server, single, body).shape == (1,)


def test_memory_bound_evicts_and_reloads(server: RunningServer, endpoint: str,
                                         boosters: dict[str, Any]) -> None:
    alpha, beta, gamma = NAMES
    x, body = csv_rows(5)
    invoke(server, endpoint, body, TargetModel=gamma)  # now gamma is the one model in memory
    before = loads(server, endpoint)
    evictions_before = len(worker_lines(server, endpoint, "Evicted model "))
    for name in (alpha, alpha, beta, alpha):
        np.testing.assert_allclose(invoke(server, endpoint, body, TargetModel=name),
                                   expected(boosters[name], x), rtol=1e-5)
    wanted = {**before, alpha: before[alpha] + 2, beta: before[beta] + 1}
    assert wait_for_loads(server, endpoint, wanted) == wanted  # the second alpha was a cache hit
    evicted = worker_lines(server, endpoint, "Evicted model ")[evictions_before:]
    names = [line.split("Evicted model ", 1)[1].split()[0] for line in evicted]
    assert names == [gamma, alpha, beta]


def test_cache_disabled_loads_for_every_invocation(server: RunningServer, sm: Any,
                                                   boosters: dict[str, Any]) -> None:
    prefix = boosters["local-prefix"]
    create_multi_model(sm, "mme-nocache-model", prefix.as_uri() + "/", cache="Disabled")
    endpoint = deploy(sm, "mme-nocache", "mme-nocache-model")
    x, body = csv_rows(3)
    for name in (NAMES[1], NAMES[1], NAMES[2]):
        np.testing.assert_allclose(invoke(server, endpoint, body, TargetModel=name),
                                   expected(boosters[name], x), rtol=1e-5)
    wanted = {NAMES[0]: 0, NAMES[1]: 2, NAMES[2]: 1}
    assert wait_for_loads(server, endpoint, wanted) == wanted
    assert len(worker_lines(server, endpoint, "(ModelCacheSetting is Disabled)")) == 3
    # every call was a miss that loaded and unloaded its model; each model was fetched once
    samples = {metric: loading_metric(server, endpoint, metric)
               for metric in ("ModelCacheHit", "ModelLoadingTime", "ModelUnloadingTime",
                              "ModelDownloadingTime", "ModelLoadingWaitTime")}
    assert samples["ModelCacheHit"] == (3.0, 0.0)
    assert samples["ModelLoadingTime"][0] == samples["ModelUnloadingTime"][0] == 3.0
    assert samples["ModelDownloadingTime"][0] == 2.0
    assert samples["ModelLoadingWaitTime"][0] == 3.0
    assert samples["ModelLoadingWaitTime"][1] >= samples["ModelLoadingTime"][1] > 0


def test_model_cache_hits_are_counted(server: RunningServer, endpoint: str) -> None:
    _, body = csv_rows(1)
    before = loading_metric(server, endpoint, "ModelCacheHit")
    for _ in range(3):  # the first call may load it, the next two find it in memory
        invoke(server, endpoint, body, TargetModel=NAMES[0])
    count, hits = loading_metric(server, endpoint, "ModelCacheHit")
    assert count - before[0] == 3
    assert hits - before[1] >= 2


def loading_metric(server: RunningServer, endpoint: str, metric: str) -> tuple[float, float]:
    """SampleCount and Sum of one of the endpoint's model-loading metrics over the last hour."""
    now = time.time()
    points = server.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName=metric, StartTime=now - 3600, EndTime=now + 60,
        Period=3660, Statistics=["SampleCount", "Sum"],
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}],
    )["Datapoints"]
    return (sum(p["SampleCount"] for p in points), sum(p["Sum"] for p in points))
