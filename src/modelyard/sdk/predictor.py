"""``Predictor``: call a deployed endpoint with Python data, SageMaker-SDK style."""

from __future__ import annotations

from typing import Any

from modelyard.sdk.serializers import CSVSerializer, NumpyDeserializer
from modelyard.sdk.session import Session


class Predictor:
    """Invokes one endpoint.

    >>> predictor = Predictor("my-endpoint")             # doctest: +SKIP
    >>> predictor.predict([[1.0, 2.0, 3.0]])              # doctest: +SKIP
    array([0.73])
    """

    def __init__(self, endpoint_name: str, session: Session | None = None,
                 serializer: Any = None, deserializer: Any = None) -> None:
        self.endpoint_name = endpoint_name
        self.session = session or Session()
        self.serializer = serializer or CSVSerializer()
        self.deserializer = deserializer or NumpyDeserializer()

    def predict(self, data: Any, target_variant: str | None = None,
                custom_attributes: str | None = None, inference_id: str | None = None) -> Any:
        """Serialize ``data``, invoke the endpoint, deserialize its answer."""
        kwargs: dict[str, Any] = {
            "EndpointName": self.endpoint_name,
            "ContentType": self.serializer.CONTENT_TYPE,
            "Accept": self.deserializer.ACCEPT,
            "Body": self.serializer.serialize(data),
        }
        for key, value in (("TargetVariant", target_variant), ("CustomAttributes", custom_attributes),
                           ("InferenceId", inference_id)):
            if value is not None:
                kwargs[key] = value
        response = self.session.client("sagemaker-runtime").invoke_endpoint(**kwargs)
        self.last_variant = response.get("InvokedProductionVariant")
        return self.deserializer.deserialize(response["Body"].read(), response.get("ContentType", ""))

    def update(
        self,
        model_name: str,
        instance_type: str = "ml.m5.large",
        initial_instance_count: int = 1,
        variant_name: str | None = None,
        deployment_config: dict[str, Any] | None = None,
        wait: bool = True,
    ) -> dict[str, Any]:
        """Move the endpoint to ``model_name`` with a new endpoint config (UpdateEndpoint).

        ``deployment_config`` is SageMaker's DeploymentConfig, e.g. a canary::

            {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
                "Type": "CANARY", "WaitIntervalInSeconds": 60,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}}},
             "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "my-5xx-alarm"}]}}
        """
        from modelyard.sdk.model import wait_for_endpoint
        from modelyard.sdk.naming import name_from_base

        config = name_from_base(f"{self.endpoint_name[:24]}-config")
        self.session.sagemaker.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
            "VariantName": variant_name or model_name[:63], "ModelName": model_name,
            "InstanceType": instance_type, "InitialInstanceCount": initial_instance_count,
        }])
        kwargs: dict[str, Any] = {"EndpointName": self.endpoint_name, "EndpointConfigName": config}
        if deployment_config:
            kwargs["DeploymentConfig"] = deployment_config
        self.session.sagemaker.update_endpoint(**kwargs)
        return wait_for_endpoint(self.session, self.endpoint_name) if wait else self.endpoint()

    def endpoint(self) -> dict[str, Any]:
        """DescribeEndpoint of this endpoint."""
        return dict(self.session.sagemaker.describe_endpoint(EndpointName=self.endpoint_name))

    def delete_endpoint(self, delete_endpoint_config: bool = True) -> None:
        """Delete the endpoint (and, by default, its endpoint config)."""
        config = self.endpoint()["EndpointConfigName"]
        self.session.sagemaker.delete_endpoint(EndpointName=self.endpoint_name)
        if delete_endpoint_config:
            self.session.sagemaker.delete_endpoint_config(EndpointConfigName=config)
