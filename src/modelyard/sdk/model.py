"""``Model``: a model artifact plus the image that serves it, deployable to an endpoint."""

from __future__ import annotations

import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from modelyard.sdk.async_inference import (
    AsyncInferenceConfig,
    AsyncPredictor,
    ServerlessInferenceConfig,
)
from modelyard.sdk.naming import base_name, image_for, name_from_base
from modelyard.sdk.predictor import Predictor
from modelyard.sdk.session import Session

_ROLE = "arn:aws:iam::000000000000:role/modelyard"
_WAIT_TIMEOUT = 600.0


class EndpointFailed(RuntimeError):
    """The endpoint ended Failed; the message carries its FailureReason."""


class Model:
    """Deploy a ``model.tar.gz`` with a framework image, optionally with your own handlers.

    With ``entry_point`` (and ``source_dir``), the code is repacked into the archive under
    ``code/``, as the SageMaker SDK does, and the server loads it as the inference script.
    """

    def __init__(
        self,
        model_data: str | Path,
        image_uri: str | None = None,
        framework: str | None = None,
        framework_version: str | None = None,
        entry_point: str | None = None,
        source_dir: str | Path | None = None,
        env: dict[str, str] | None = None,
        name: str | None = None,
        role: str | None = None,
        session: Session | None = None,
    ) -> None:
        if image_uri is None and framework is None:
            raise ValueError("Give either framework= ('xgboost', 'sklearn', 'pytorch') or image_uri=.")
        self.session = session or Session()
        self.model_data = str(model_data)
        self.image_uri = image_uri or image_for(framework or "", framework_version, self.session.region, inference=True)
        self.entry_point = entry_point
        self.source_dir = Path(source_dir) if source_dir else None
        self.env = dict(env or {})
        self.name = name
        self.role = role or _ROLE

    def create(self) -> str:
        """Register the model (CreateModel) once; its name."""
        if self.name is None:
            self.name = name_from_base(base_name(self.image_uri))
        data, env = self.model_data, dict(self.env)
        if self.entry_point:
            data = self._repack()
            env.setdefault("SAGEMAKER_PROGRAM", Path(self.entry_point).name)
            env.setdefault("SAGEMAKER_SUBMIT_DIRECTORY", "/opt/ml/model/code")
        if not data.startswith(("s3://", "file://")):
            data = str(Path(data).resolve())
        container: dict[str, Any] = {"Image": self.image_uri, "ModelDataUrl": data}
        if env:
            container["Environment"] = env
        self.session.sagemaker.create_model(ModelName=self.name, PrimaryContainer=container, ExecutionRoleArn=self.role)
        return self.name

    def deploy(
        self,
        initial_instance_count: int = 1,
        instance_type: str = "ml.m5.large",
        endpoint_name: str | None = None,
        serializer: Any = None,
        deserializer: Any = None,
        wait: bool = True,
        serverless_inference_config: ServerlessInferenceConfig | None = None,
        async_inference_config: AsyncInferenceConfig | None = None,
    ) -> Predictor | AsyncPredictor:
        """CreateModel, CreateEndpointConfig and CreateEndpoint; with ``wait``, until InService.

        ``serverless_inference_config`` makes the variant serverless (no instances while
        idle); ``async_inference_config`` makes the endpoint asynchronous and returns an
        :class:`~modelyard.sdk.async_inference.AsyncPredictor`.
        """
        model = self.name or self.create()
        endpoint = endpoint_name or model  # model names are already unique (timestamped)
        variant: dict[str, Any] = {"VariantName": "AllTraffic", "ModelName": model, "InitialVariantWeight": 1.0}
        if serverless_inference_config is not None:
            variant["ServerlessConfig"] = serverless_inference_config.to_request()
        else:
            variant.update(InstanceType=instance_type, InitialInstanceCount=initial_instance_count)
        config: dict[str, Any] = {"EndpointConfigName": endpoint, "ProductionVariants": [variant]}
        if async_inference_config is not None:
            default_output = f"{self.session.default_bucket_uri()}/async-endpoint-outputs/{endpoint}"
            config["AsyncInferenceConfig"] = async_inference_config.to_request(default_output)
        self.session.sagemaker.create_endpoint_config(**config)
        self.session.sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=endpoint)
        if wait:
            wait_for_endpoint(self.session, endpoint)
        predictor = Predictor(endpoint, self.session, serializer, deserializer)
        return AsyncPredictor(predictor) if async_inference_config is not None else predictor

    def _repack(self) -> str:
        """A copy of model.tar.gz (local only) with the inference code under ``code/``."""
        if self.model_data.startswith("s3://"):
            raise ValueError("Repacking code into a model on S3 is not supported yet; pass a local model.tar.gz.")
        source = Path(self.model_data.removeprefix("file://"))
        target = Path(tempfile.mkdtemp(prefix="modelyard-repack-", dir=self.session.home)) / "model.tar.gz"
        with tarfile.open(source) as original, tarfile.open(target, "w:gz") as repacked:
            for member in original.getmembers():
                if not member.name.startswith("code/"):
                    repacked.addfile(member, original.extractfile(member) if member.isfile() else None)
            for path in self._code_files():
                repacked.add(path[0], arcname=f"code/{path[1]}")
        return str(target)

    def _code_files(self) -> list[tuple[Path, str]]:
        entry = Path(self.entry_point or "")
        if self.source_dir is None:
            return [(entry, entry.name)]
        return [(p, str(p.relative_to(self.source_dir))) for p in sorted(self.source_dir.rglob("*"))
                if p.is_file() and "__pycache__" not in p.parts]


def wait_for_endpoint(session: Session, endpoint: str, timeout: float = _WAIT_TIMEOUT) -> dict[str, Any]:
    """Poll DescribeEndpoint until the endpoint leaves Creating/Updating."""
    deadline = time.monotonic() + timeout
    while True:
        described = session.sagemaker.describe_endpoint(EndpointName=endpoint)
        status = described["EndpointStatus"]
        if status == "InService":
            return dict(described)
        if status not in ("Creating", "Updating"):
            raise EndpointFailed(f"Endpoint {endpoint} is {status}: {described.get('FailureReason', '')}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"Endpoint {endpoint} is still {status} after {timeout:.0f} s")
        time.sleep(0.2)
