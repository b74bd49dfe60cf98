"""Service models load once and expose the operations modelyard serves."""

from __future__ import annotations

import pytest

from modelyard.api.models import SERVED_SERVICES, operation, service_model
from modelyard.core.errors import UnknownOperation, ValidationError


@pytest.mark.parametrize(
    ("name", "protocol", "signing_name"),
    [
        ("sagemaker", "json", "sagemaker"),
        ("sagemaker-runtime", "rest-json", "sagemaker"),
        ("sagemaker-metrics", "rest-json", "sagemaker"),
        ("sagemaker-featurestore-runtime", "rest-json", "sagemaker"),
        ("logs", "json", "logs"),
        ("sts", "query", "sts"),
    ],
)
def test_service_model_metadata(name: str, protocol: str, signing_name: str) -> None:
    model = service_model(name)
    assert model.service_name == name
    assert model.protocol == protocol
    assert model.signing_name == signing_name
    assert name in SERVED_SERVICES


def test_service_model_is_cached() -> None:
    assert service_model("sagemaker") is service_model("sagemaker")
    first = operation("sagemaker", "CreateTrainingJob")
    assert operation("sagemaker", "CreateTrainingJob") is first


def test_operation_model_has_input_shape() -> None:
    op = operation("sagemaker", "CreateTrainingJob")
    assert op.name == "CreateTrainingJob"
    assert "TrainingJobName" in op.input_shape.required_members


def test_unknown_operation_and_service() -> None:
    with pytest.raises(UnknownOperation) as info:
        operation("sagemaker", "LaunchRocket")
    assert info.value.code == "UnknownOperationException"
    assert "SageMaker.LaunchRocket" in info.value.message
    with pytest.raises(ValidationError):
        service_model("no-such-service")
