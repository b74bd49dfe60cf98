"""The platform's multi-model rules: CreateModel fields and the router's TargetModel checks."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.core.errors import ValidationError
from modelyard.serving import multimodel, spec
from modelyard.serving.routes import VariantRoute

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def model(**container: Any) -> dict[str, Any]:
    return {"ModelName": "m", "PrimaryContainer": {"Image": IMAGE, **container}}


@pytest.mark.parametrize("url", ["s3://bucket/models/", "file:///data/models/", "/data/models"])
def test_a_multi_model_container_takes_a_prefix(url: str) -> None:
    assert spec.validate_model(model(Mode="MultiModel", ModelDataUrl=url)).framework == "xgboost"
    disabled = model(Mode="MultiModel", ModelDataUrl=url,
                     MultiModelConfig={"ModelCacheSetting": "Disabled"})
    spec.validate_model(disabled)


@pytest.mark.parametrize(("container", "words"), [
    ({"Mode": "MultiModel"}, "needs ModelDataUrl"),
    ({"Mode": "MultiModel", "ModelDataSource": {"S3DataSource": {
        "S3Uri": "s3://b/p/", "S3DataType": "S3Prefix", "CompressionType": "None"}}},
     "ModelDataSource is not supported"),
    ({"ModelDataUrl": "s3://b/m.tar.gz", "MultiModelConfig": {"ModelCacheSetting": "Enabled"}},
     "applies only to a container with Mode MultiModel"),
    ({"Mode": "MultiModel", "ModelDataUrl": "relative/models/"}, "is not a valid URI"),
])
def test_invalid_multi_model_containers_are_refused(container: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        spec.validate_model(model(**container))


def test_variant_fields_and_memory() -> None:
    enabled = multimodel.variant_fields({"Mode": "MultiModel"})
    assert enabled == {"multi_model": True, "model_cache": True}
    disabled = {"Mode": "MultiModel", "MultiModelConfig": {"ModelCacheSetting": "Disabled"}}
    assert multimodel.variant_fields(disabled) == {"multi_model": True, "model_cache": False}
    assert multimodel.variant_fields({"Mode": "SingleModel"})["multi_model"] is False
    instance = {"instance_type": "ml.m5.large", "serverless": None}
    assert multimodel.instance_memory_mb(instance) == 8192
    serverless = {"instance_type": "ml.t2.medium", "serverless": {"MemorySizeInMB": 2048}}
    assert multimodel.instance_memory_mb(serverless) == 2048


MULTI = VariantRoute("AllTraffic", 1.0, (1,), multi_model=True)
SINGLE = VariantRoute("AllTraffic", 1.0, (1,))


def test_the_router_requires_a_target_on_multi_model_variants_only() -> None:
    multimodel.check_target("ep", MULTI, b"team/a.tar.gz")
    multimodel.check_target("ep", SINGLE, None)
    with pytest.raises(ValidationError, match="TargetModel is required"):
        multimodel.check_target("ep", MULTI, None)
    with pytest.raises(ValidationError, match="not a multi-model endpoint"):
        multimodel.check_target("ep", SINGLE, b"a.tar.gz")


def test_operations_without_a_target_are_refused_on_multi_model_variants() -> None:
    multimodel.refuse_untargeted("ep", SINGLE, "InvokeEndpointWithResponseStream")
    with pytest.raises(ValidationError, match="cannot name a TargetModel"):
        multimodel.refuse_untargeted("ep", MULTI, "InvokeEndpointWithResponseStream")


@pytest.mark.parametrize("raw", [b"../a.tar.gz", b"/abs/a.tar.gz", b"a/../../b", b"", b"\xff"])
def test_the_router_refuses_targets_outside_the_prefix(raw: bytes) -> None:
    with pytest.raises(ValidationError, match="TargetModel"):
        multimodel.check_target("ep", MULTI, raw)


def test_only_marked_model_server_answers_become_validation_errors() -> None:
    marked = {b"x-modelyard-error-code": b"ValidationError"}
    error = multimodel.refusal(marked, b"Failed to download model data(bucket: b, key: k)")
    assert isinstance(error, ValidationError) and error.message.startswith("Failed to download")
    assert multimodel.refusal({}, b"a model's own 400") is None
    assert multimodel.refusal({b"x-modelyard-error-code": b"Other"}, b"x") is None
