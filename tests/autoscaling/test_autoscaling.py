"""Target tracking decisions, and the Application Auto Scaling operations through botocore."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.session import get_session

from modelyard.api.dispatch import JsonDispatcher
from modelyard.autoscaling import AutoScalingService
from modelyard.autoscaling.tracking import propose
from modelyard.core.settings import Settings
from modelyard.store import MetadataStore, Record, open_store
from tests.api.test_cloudwatch_metrics import Dispatching
from tests.api.wire import ACCESS_KEY, ENDPOINT, REGION, SECRET_KEY, Capture, client

POLICY = {"TargetValue": 10.0, "DisableScaleIn": False}
RESOURCE = "endpoint/ep/variant/AllTraffic"
TARGET = {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE,
          "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}


@pytest.mark.parametrize(
    ("rates", "current", "capacity"),
    [
        ([30.0, 30.0, 30.0], 1, 3),  # 3 above target: enough instances to bring it to target
        ([30.0, 30.0], 1, None),  # too few datapoints
        ([0.0, 30.0, 30.0], 1, None),  # not all above
        ([10.0, 10.0, 10.0], 2, None),  # at target: nothing
        ([0.0] * 15, 3, 0),  # idle for 15 datapoints: as low as the bounds allow
        ([0.0] * 14, 3, None),
        ([8.0] * 15, 2, 2),  # below 90 %, but proportional capacity is still 2
        ([9.5] * 15, 2, None),  # within 90 % of target
    ],
)
def test_target_tracking_proposals(rates: list[float], current: int, capacity: int | None) -> None:
    proposal = propose(POLICY, current, rates)
    assert (proposal.capacity if proposal else None) == capacity


def test_disable_scale_in() -> None:
    assert propose({**POLICY, "DisableScaleIn": True}, 3, [0.0] * 15) is None


def test_the_client_speaks_json_1_1_with_the_anyscale_target() -> None:
    capture = Capture(reply=b'{"ScalableTargets":[]}')
    client("application-autoscaling", capture).describe_scalable_targets(ServiceNamespace="sagemaker")
    [sent] = capture.sent
    assert sent.headers["x-amz-target"] == "AnyScaleFrontendService.DescribeScalableTargets"
    assert sent.headers["content-type"] == "application/x-amz-json-1.1"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetadataStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'modelyard.db'}")
    opened.create(Record(kind="Endpoint", name="ep", arn="arn:aws:sagemaker:us-east-1:000000000000:endpoint/ep",
                         status="InService", created=0.0, modified=0.0, version=1, spec={},
                         state={"target": {"config": "c", "variants": {"AllTraffic": {"count": 1, "weight": 1.0}}}}))
    yield opened
    opened.close()


@pytest.fixture
def aas(tmp_path: Path, store: MetadataStore) -> Any:
    service = AutoScalingService(Settings.load({}, home=tmp_path), store, wake=lambda: None)
    made = get_session().create_client(
        "application-autoscaling", region_name=REGION, endpoint_url=ENDPOINT,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
    )
    dispatcher = JsonDispatcher("application-autoscaling", service.operations(), strict=True)
    made.meta.events.register("before-send", Dispatching(dispatcher))
    return made


def _code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    return str(err.value.response["Error"]["Code"])


def test_targets_and_policies(aas: Any) -> None:
    arn = aas.register_scalable_target(**TARGET, MinCapacity=1, MaxCapacity=3)["ScalableTargetARN"]
    aas.register_scalable_target(**TARGET, MaxCapacity=4)  # again: changes only what it names
    [target] = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"], target["ScalableTargetARN"]) == (RESOURCE, 1, 4, arn)
    policy = aas.put_scaling_policy(
        PolicyName="ipi", **TARGET, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 70.0, "ScaleInCooldown": 60,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}},
    )
    assert policy["PolicyARN"].endswith(f":resource/sagemaker/{RESOURCE}:policyName/ipi")
    [described] = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=RESOURCE)["ScalingPolicies"]
    config = described["TargetTrackingScalingPolicyConfiguration"]
    assert (described["PolicyName"], config["TargetValue"], config["ScaleInCooldown"], config["ScaleOutCooldown"]) == ("ipi", 70.0, 60, 300)
    assert aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=RESOURCE)["ScalingActivities"] == []
    aas.delete_scaling_policy(PolicyName="ipi", **TARGET)
    assert aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    assert _code(aas.delete_scaling_policy, PolicyName="ipi", **TARGET) == "ObjectNotFoundException"
    aas.deregister_scalable_target(**TARGET)
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert _code(aas.deregister_scalable_target, **TARGET) == "ObjectNotFoundException"


def test_what_is_refused(aas: Any) -> None:
    assert _code(aas.register_scalable_target, **TARGET, MinCapacity=3, MaxCapacity=2) == "ValidationException"
    assert _code(aas.register_scalable_target, **TARGET, MinCapacity=1) == "ValidationException"
    assert _code(aas.register_scalable_target, **{**TARGET, "ResourceId": "endpoint/nope/variant/v"},
                 MinCapacity=1, MaxCapacity=2) == "ValidationException"
    assert _code(aas.register_scalable_target, **{**TARGET, "ServiceNamespace": "ecs"},
                 MinCapacity=1, MaxCapacity=2) == "ValidationException"
    assert _code(aas.put_scaling_policy, PolicyName="p", **TARGET, PolicyType="TargetTrackingScaling",
                 TargetTrackingScalingPolicyConfiguration={"TargetValue": 1.0}) == "ObjectNotFoundException"
    aas.register_scalable_target(**TARGET, MinCapacity=1, MaxCapacity=2)
    assert _code(aas.put_scaling_policy, PolicyName="p", **TARGET, PolicyType="StepScaling") == "ValidationException"
    assert _code(aas.put_scaling_policy, PolicyName="p", **TARGET, PolicyType="TargetTrackingScaling",
                 TargetTrackingScalingPolicyConfiguration={
                     "TargetValue": 1.0,
                     "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantProvisionedConcurrencyUtilization"}},
                 ) == "ValidationException"
