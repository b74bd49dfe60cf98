"""Shadow variants and rolling updates through boto3, under load where it matters."""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import SKLEARN_IMAGE
from tests.integration.endpoint_helpers import (
    Load,
    create_model,
    csv_rows,
    error_alarm,
    model_tar,
    wait_in_service,
    wait_until,
)
from tests.support.server import RunningServer, start_server

pytest.importorskip("xgboost")

BROKEN_PREDICT = (b"def model_fn(model_dir):\n    return None\n"
                  b"def predict_fn(data, model):\n    raise RuntimeError('version 2 is broken')\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("home"), {"MODELYARD_CAPTURE_FLUSH_SECONDS": "0.5"})
    yield running
    running.stop()


def variant(name: str, model: str, count: int = 1, weight: float = 1.0) -> dict[str, Any]:
    return {"VariantName": name, "ModelName": model, "InstanceType": "ml.m5.large",
            "InitialInstanceCount": count, "InitialVariantWeight": weight}


def captured(root: Path) -> dict[str, list[dict[str, Any]]]:
    """Captured records by variant (the second path component under the endpoint)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(root.rglob("*.jsonl")):
        variant_name = path.relative_to(root).parts[1]
        out.setdefault(variant_name, []).extend(json.loads(line) for line in path.read_text().splitlines())
    return out


def prometheus(server: RunningServer) -> list[str]:
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:
        return response.read().decode().splitlines()


def test_a_shadow_variant_gets_copies_and_callers_only_see_production(
    server: RunningServer, sm: Any, boosters: dict[str, tuple[Any, Path]], tmp_path: Path
) -> None:
    create_model(sm, "shadow-prod", boosters["small"][1])
    create_model(sm, "shadow-new", boosters["large"][1])
    destination = tmp_path / "capture"
    sm.create_endpoint_config(
        EndpointConfigName="shadowed", ProductionVariants=[variant("Prod", "shadow-prod")],
        ShadowProductionVariants=[variant("Shadow", "shadow-new")],
        DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": 100,
                           "DestinationS3Uri": str(destination),
                           "CaptureOptions": [{"CaptureMode": "InputAndOutput"}]})
    assert sm.describe_endpoint_config(EndpointConfigName="shadowed")["ShadowProductionVariants"][0]["VariantName"] == "Shadow"
    sm.create_endpoint(EndpointName="shadowed", EndpointConfigName="shadowed")
    described = wait_in_service(sm, "shadowed")
    assert [v["VariantName"] for v in described["ProductionVariants"]] == ["Prod"]
    assert [v["VariantName"] for v in described["ShadowProductionVariants"]] == ["Shadow"]
    assert described["ShadowProductionVariants"][0]["CurrentInstanceCount"] == 1

    runtime = server.client("sagemaker-runtime")
    x, _ = csv_rows(5)
    small, large = boosters["small"][0], boosters["large"][0]
    import xgboost

    for row in x:
        body = ",".join(repr(float(v)) for v in row).encode()
        answer = runtime.invoke_endpoint(EndpointName="shadowed", ContentType="text/csv", Body=body)
        assert answer["InvokedProductionVariant"] == "Prod"
        got = float(answer["Body"].read())
        assert got == pytest.approx(float(small.predict(xgboost.DMatrix(row[None, :]))[0]), rel=1e-5)
    # the shadow answered every copy with its own model; nobody saw those answers
    records = wait_until(lambda: (c := captured(destination)) and len(c.get("Shadow", [])) == 5
                       and len(c.get("Prod", [])) == 5 and c, 20, "the shadow's answers were not captured")
    shadow_out = sorted(float(r["captureData"]["endpointOutput"]["data"]) for r in records["Shadow"])
    expected = sorted(float(v) for v in large.predict(xgboost.DMatrix(x)))
    assert shadow_out == pytest.approx(expected, rel=1e-5)
    assert not np.allclose(shadow_out, sorted(float(v) for v in small.predict(xgboost.DMatrix(x))))
    lines = prometheus(server)
    assert 'modelyard_endpoint_invocations_total{endpoint="shadowed",variant="Shadow"} 5' in lines
    assert 'modelyard_endpoint_invocations_total{endpoint="shadowed",variant="Prod"} 5' in lines
    # a shadow cannot be asked for by name: it serves copies only
    with pytest.raises(ClientError) as e:
        runtime.invoke_endpoint(EndpointName="shadowed", ContentType="text/csv", Body=body, TargetVariant="Shadow")
    assert e.value.response["Error"]["Code"] == "ValidationError"


def test_a_failing_shadow_never_fails_the_caller(server: RunningServer, sm: Any, boosters: dict[str, tuple[Any, Path]],
                                                 tmp_path: Path) -> None:
    create_model(sm, "shadow-ok", boosters["small"][1])
    create_model(sm, "shadow-broken", model_tar(tmp_path, {"code/inference.py": BROKEN_PREDICT}),
                 image=SKLEARN_IMAGE, env={"SAGEMAKER_PROGRAM": "inference.py"})
    sm.create_endpoint_config(EndpointConfigName="shadow-fails", ProductionVariants=[variant("Prod", "shadow-ok")],
                              ShadowProductionVariants=[variant("Broken", "shadow-broken")])
    sm.create_endpoint(EndpointName="shadow-fails", EndpointConfigName="shadow-fails")
    wait_in_service(sm, "shadow-fails")
    runtime = server.client("sagemaker-runtime")
    body = csv_rows(1)[1]
    for _ in range(6):
        answer = runtime.invoke_endpoint(EndpointName="shadow-fails", ContentType="text/csv", Body=body)
        assert answer["InvokedProductionVariant"] == "Prod"
    labels = 'endpoint="shadow-fails",variant="Broken"'
    wait_until(lambda: f'modelyard_endpoint_invocation_errors_total{{{labels},status="5xx"}} 6' in prometheus(server),
             10, "the shadow's failures were not counted")


def test_shadow_variants_are_validated(sm: Any, boosters: dict[str, tuple[Any, Path]]) -> None:
    create_model(sm, "shadow-check", boosters["small"][1])
    cases = [
        ({"ShadowProductionVariants": [variant("Prod", "shadow-check")]}, "unique"),
        ({"ShadowProductionVariants": [{"VariantName": "S", "ModelName": "shadow-check",
                                        "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1}}]},
         "serverless"),
        ({"ShadowProductionVariants": [variant("S", "shadow-check")],
          "AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": "/tmp/out"}}}, "AsyncInferenceConfig"),
        ({"ShadowProductionVariants": [variant("S", "no-such-model")]}, "no-such-model"),
    ]
    for extra, message in cases:
        with pytest.raises(ClientError) as e:
            sm.create_endpoint_config(EndpointConfigName="bad-shadow", ProductionVariants=[variant("Prod", "shadow-check")],
                                      **extra)
        assert e.value.response["Error"]["Code"] == "ValidationException"
        assert message in e.value.response["Error"]["Message"]
    assert sm.list_endpoint_configs(NameContains="bad-shadow")["EndpointConfigs"] == []


def rolling(batch: int, wait: int, rollback: int | None = None) -> dict[str, Any]:
    policy: dict[str, Any] = {"MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": batch},
                              "WaitIntervalInSeconds": wait, "MaximumExecutionTimeoutInSeconds": 600}
    if rollback is not None:
        policy["RollbackMaximumBatchSize"] = {"Type": "INSTANCE_COUNT", "Value": rollback}
    return {"RollingUpdatePolicy": policy}


def test_a_rolling_update_replaces_capacity_in_batches_under_load(
    server: RunningServer, sm: Any, boosters: dict[str, tuple[Any, Path]]
) -> None:
    create_model(sm, "roll-v1", boosters["small"][1])
    create_model(sm, "roll-v2", boosters["large"][1])
    sm.create_endpoint_config(EndpointConfigName="roll-c1", ProductionVariants=[variant("Blue", "roll-v1", count=2)])
    sm.create_endpoint_config(EndpointConfigName="roll-c2", ProductionVariants=[variant("Green", "roll-v2", count=2)])
    sm.create_endpoint(EndpointName="rolling", EndpointConfigName="roll-c1")
    wait_in_service(sm, "rolling")
    with pytest.raises(ClientError) as e:  # a batch of the whole fleet is not a rolling update
        sm.update_endpoint(EndpointName="rolling", EndpointConfigName="roll-c2", DeploymentConfig=rolling(2, 1))
    assert "between 5% and 50%" in e.value.response["Error"]["Message"]
    assert sm.describe_endpoint(EndpointName="rolling")["EndpointStatus"] == "InService"

    with Load(server, "rolling", csv_rows(1)[1]) as load:
        sm.update_endpoint(EndpointName="rolling", EndpointConfigName="roll-c2", DeploymentConfig=rolling(1, 3))
        wait_in_service(sm, "rolling", timeout=180)
        time.sleep(1)
    assert load.failures == []
    variants = load.variants
    first_green = variants.index("Green")
    last_blue = len(variants) - 1 - variants[::-1].index("Blue")
    mixed = variants[first_green:last_blue + 1]
    # one batch of two: half of the traffic moved while it baked, then the rest
    assert 0.2 < mixed.count("Green") / len(mixed) < 0.8, Counter(mixed)
    assert set(variants[last_blue + 1:]) == {"Green"}
    described = sm.describe_endpoint(EndpointName="rolling")
    assert described["EndpointConfigName"] == "roll-c2" and "FailureReason" not in described
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2


def test_an_alarm_rolls_a_rolling_update_back_batch_by_batch(
    server: RunningServer, sm: Any, boosters: dict[str, tuple[Any, Path]], tmp_path: Path
) -> None:
    create_model(sm, "rb-v1", boosters["small"][1])
    create_model(sm, "rb-v2", model_tar(tmp_path, {"code/inference.py": BROKEN_PREDICT}),
                 image=SKLEARN_IMAGE, env={"SAGEMAKER_PROGRAM": "inference.py"})
    sm.create_endpoint_config(EndpointConfigName="rb-c1", ProductionVariants=[variant("Stable", "rb-v1", count=2)])
    sm.create_endpoint_config(EndpointConfigName="rb-c2", ProductionVariants=[variant("Broken", "rb-v2", count=2)])
    sm.create_endpoint(EndpointName="rollback", EndpointConfigName="rb-c1")
    wait_in_service(sm, "rollback")
    error_alarm(server, "rollback-5xx", "rollback", "Broken")
    statuses = []
    with Load(server, "rollback", csv_rows(1)[1]) as load:
        sm.update_endpoint(EndpointName="rollback", EndpointConfigName="rb-c2",
                           DeploymentConfig={**rolling(1, 60, rollback=1),
                                             "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "rollback-5xx"}]}})

        def settled() -> dict[str, Any] | None:
            endpoint = sm.describe_endpoint(EndpointName="rollback")
            statuses.append(endpoint["EndpointStatus"])
            return endpoint if endpoint["EndpointStatus"] == "InService" and len(statuses) > 1 else None

        endpoint = wait_until(settled, 120, "the update never rolled back")
    assert "RollingBack" in statuses  # blue came back while the broken batch still served
    assert endpoint["EndpointConfigName"] == "rb-c1"
    assert "rollback-5xx" in endpoint["FailureReason"]
    assert set(load.failures) == {"ModelError"}  # the broken batch's own answers, nothing lost
    runtime = server.client("sagemaker-runtime")
    for _ in range(4):
        answer = runtime.invoke_endpoint(EndpointName="rollback", ContentType="text/csv", Body=csv_rows(1)[1])
        assert answer["InvokedProductionVariant"] == "Stable"
    assert endpoint["ProductionVariants"][0]["CurrentInstanceCount"] == 2



def test_a_rollback_whose_old_fleet_cannot_start_ends_update_rollback_failed(
    server: RunningServer, sm: Any, boosters: dict[str, tuple[Any, Path]], tmp_path: Path
) -> None:
    stable = tmp_path / "stable" / "model.tar.gz"
    stable.parent.mkdir()
    stable.write_bytes(boosters["small"][1].read_bytes())
    create_model(sm, "rf-v1", stable)
    create_model(sm, "rf-v2", model_tar(tmp_path, {"code/inference.py": BROKEN_PREDICT}),
                 image=SKLEARN_IMAGE, env={"SAGEMAKER_PROGRAM": "inference.py"})
    create_model(sm, "rf-v3", boosters["large"][1])
    sm.create_endpoint_config(EndpointConfigName="rf-c1", ProductionVariants=[variant("Stable", "rf-v1", count=2)])
    sm.create_endpoint_config(EndpointConfigName="rf-c2", ProductionVariants=[variant("Broken", "rf-v2", count=2)])
    sm.create_endpoint_config(EndpointConfigName="rf-c3", ProductionVariants=[variant("Fresh", "rf-v3")])
    sm.create_endpoint(EndpointName="rollback-fails", EndpointConfigName="rf-c1")
    wait_in_service(sm, "rollback-fails")
    stable.unlink()  # the old fleet's model is gone: a rollback cannot start it again
    error_alarm(server, "rf-5xx", "rollback-fails", "Broken")
    with Load(server, "rollback-fails", csv_rows(1)[1]):
        sm.update_endpoint(EndpointName="rollback-fails", EndpointConfigName="rf-c2",
                           DeploymentConfig={**rolling(1, 60, rollback=1),
                                             "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "rf-5xx"}]}})
        endpoint = wait_until(
            lambda: (d := sm.describe_endpoint(EndpointName="rollback-fails"))["EndpointStatus"] == "UpdateRollbackFailed" and d,
            120, "the failed rollback was not reported")
    assert "rf-5xx" in endpoint["FailureReason"] and "The rollback failed" in endpoint["FailureReason"]
    # no more launches: the instances it has serve, the one that cannot start is not retried
    instances = server.home / "endpoints" / "rollback-fails"
    launched = len(list(instances.iterdir()))
    runtime = server.client("sagemaker-runtime")
    served = set()
    for _ in range(40):
        try:
            answer = runtime.invoke_endpoint(EndpointName="rollback-fails", ContentType="text/csv", Body=csv_rows(1)[1])
            served.add(answer["InvokedProductionVariant"])
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ModelError"  # the broken version's own answers
        time.sleep(0.05)
    assert served == {"Stable"}
    assert len(list(instances.iterdir())) == launched
    assert sm.describe_endpoint(EndpointName="rollback-fails")["EndpointStatus"] == "UpdateRollbackFailed"
    # an UpdateEndpoint is the way out
    sm.update_endpoint(EndpointName="rollback-fails", EndpointConfigName="rf-c3")
    endpoint = wait_in_service(sm, "rollback-fails")
    assert endpoint["EndpointConfigName"] == "rf-c3"
    answer = runtime.invoke_endpoint(EndpointName="rollback-fails", ContentType="text/csv", Body=csv_rows(1)[1])
    assert answer["InvokedProductionVariant"] == "Fresh"
    sm.delete_endpoint(EndpointName="rollback-fails")
