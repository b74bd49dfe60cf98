"""botocore service models: the schema of every API modelyard speaks.

The models ship inside botocore, so request validation and response shaping follow exactly the
version of the API that the installed clients send. Loading a model parses a multi-megabyte JSON
file, so each is loaded once per process.
"""

from __future__ import annotations

from functools import cache, lru_cache

from botocore.exceptions import UnknownServiceError
from botocore.loaders import Loader, create_loader
from botocore.model import OperationModel, ServiceModel

from modelyard.core.errors import UnknownOperation, ValidationError

#: The botocore service names modelyard serves (or partly serves).
SERVED_SERVICES: tuple[str, ...] = (
    "sagemaker",
    "sagemaker-runtime",
    "sagemaker-metrics",
    "sagemaker-featurestore-runtime",
    "logs",
    "cloudwatch",
    "application-autoscaling",
    "sts",
)


@cache
def service_model(name: str) -> ServiceModel:
    """Return botocore's model of service ``name`` (e.g. ``"sagemaker"``), loaded once.

    Raises :class:`ValidationError` for a service botocore does not know.
    """
    # A bare loader is enough: a full botocore Session would also read AWS config files and
    # environment variables, which have no business influencing the server's schema.
    loader = _loader()
    try:
        data = loader.load_service_model(name, "service-2")
    except UnknownServiceError as e:
        raise ValidationError(f"Unknown service {name!r}.") from e
    return ServiceModel(data, service_name=name)


@cache
def operation(service: str, op_name: str) -> OperationModel:
    """Return the model of operation ``op_name`` (e.g. ``"CreateTrainingJob"``) of ``service``.

    Raises :class:`UnknownOperation` when the service has no such operation.
    """
    model = service_model(service)
    if op_name not in model.operation_names:
        raise UnknownOperation(f"{model.metadata.get('targetPrefix', service)}.{op_name}")
    return model.operation_model(op_name)


@lru_cache(maxsize=1)
def _loader() -> Loader:
    return create_loader()
