"""``modelyard.Estimator``: train a script or a built-in algorithm, SageMaker-SDK style.

Where SageMaker wants S3 URIs, this accepts local paths and pandas DataFrames too. Local inputs
and code stay on this machine and are passed as absolute paths, which a server on the same
machine reads directly; ``s3://`` URIs are passed through untouched.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

from modelyard.sdk.logs import follow_training_job
from modelyard.sdk.naming import base_name, image_for, name_from_base
from modelyard.sdk.session import Session

_DEFAULT_ROLE = "arn:aws:iam::{account}:role/modelyard"


class TrainingFailed(RuntimeError):
    """The training job ended Failed or Stopped; the message carries its FailureReason."""


class Estimator:
    """A training job definition you can ``fit``.

    >>> est = Estimator(framework="xgboost", hyperparameters={"num_round": 20})  # doctest: +SKIP
    >>> est.fit({"train": "data/train.csv"})                                   # doctest: +SKIP
    >>> est.model_data                                                         # doctest: +SKIP
    """

    def __init__(
        self,
        entry_point: str | None = None,
        source_dir: str | Path | None = None,
        framework: str | None = None,
        image_uri: str | None = None,
        framework_version: str | None = None,
        instance_type: str = "ml.m5.large",
        instance_count: int = 1,
        hyperparameters: dict[str, Any] | None = None,
        metric_definitions: list[dict[str, str]] | None = None,
        output_path: str | None = None,
        role: str | None = None,
        base_job_name: str | None = None,
        environment: dict[str, str] | None = None,
        max_run: int = 86400,
        use_spot_instances: bool = False,
        max_wait: int | None = None,
        checkpoint_s3_uri: str | None = None,
        content_type: str | None = None,
        session: Session | None = None,
    ) -> None:
        if image_uri is None and framework is None:
            raise ValueError("Give either framework= ('xgboost', 'sklearn', 'pytorch') or image_uri=.")
        self.session = session or Session()
        self.entry_point = entry_point
        self.source_dir = Path(source_dir) if source_dir else None
        self.image_uri = image_uri or image_for(framework or "", framework_version, self.session.region)
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.hyperparameters = dict(hyperparameters or {})
        self.metric_definitions = list(metric_definitions or [])
        self.output_path = output_path
        self.role = role
        self.base_job_name = base_job_name or base_name(self.image_uri)
        self.environment = dict(environment or {})
        self.max_run = max_run
        self.use_spot_instances = use_spot_instances
        self.max_wait = max_wait
        self.checkpoint_s3_uri = checkpoint_s3_uri
        self.content_type = content_type
        self.latest_training_job: str | None = None
        self._description: dict[str, Any] | None = None

    # --- the job -------------------------------------------------------------------------
    def fit(
        self,
        inputs: dict[str, Any] | str | Any | None = None,
        wait: bool = True,
        logs: bool = True,
        job_name: str | None = None,
        experiment_config: dict[str, str] | None = None,
    ) -> None:
        """Create the training job; with ``wait``, block until it ends (showing its logs).

        ``experiment_config`` (``ExperimentName``, ``TrialName``, ``RunName`` ...) puts the job
        in an experiment; inside a ``with modelyard.Run(...)`` block it defaults to that run's.
        """
        name = job_name or name_from_base(self.base_job_name)
        request = self._request(name, _channels(inputs, self._scratch(name), self.content_type))
        if experiment_config is None:
            from modelyard.sdk.experiments import current_run

            run = current_run()
            experiment_config = run.experiment_config if run is not None else None
        if experiment_config:
            request["ExperimentConfig"] = dict(experiment_config)
        self.session.sagemaker.create_training_job(**request)
        self.latest_training_job = name
        self._description = None
        if wait:
            self.wait(logs=logs)

    def wait(self, logs: bool = True) -> dict[str, Any]:
        """Block until the latest job ends; raise TrainingFailed unless it Completed."""
        from modelyard.sdk.progress import JobProgress

        name = self._require_job()
        with JobProgress(name) as progress:
            for stream, event in follow_training_job(
                self.session.sagemaker, self.session.logs, name, on_status=progress.update
            ):
                if logs:
                    progress.log(stream, event["message"])
        job = self.describe()
        if job["TrainingJobStatus"] != "Completed":
            raise TrainingFailed(
                f"Training job {name} {job['TrainingJobStatus']}: {job.get('FailureReason', '')}"
            )
        return job

    def describe(self) -> dict[str, Any]:
        self._description = self.session.sagemaker.describe_training_job(
            TrainingJobName=self._require_job()
        )
        return self._description

    @property
    def model_data(self) -> str:
        """The URI of the trained ``model.tar.gz``."""
        job = self._description or self.describe()
        return str(job["ModelArtifacts"]["S3ModelArtifacts"])

    def deploy(
        self,
        initial_instance_count: int = 1,
        instance_type: str = "ml.m5.large",
        endpoint_name: str | None = None,
        serializer: Any = None,
        deserializer: Any = None,
        wait: bool = True,
        **endpoint_options: Any,
    ) -> Any:
        """Deploy the trained model to an endpoint; a Predictor for it (see
        :meth:`modelyard.Model.deploy` for ``serverless_inference_config`` and
        ``async_inference_config``, which pass through ``endpoint_options``).

        Script-mode jobs serve with the same entry point and source directory (its
        ``model_fn``/``input_fn``/... handlers); built-in algorithms with their defaults.
        """
        from modelyard.sdk.model import Model
        from modelyard.sdk.naming import inference_image

        model = Model(
            model_data=self._local_model_data(), image_uri=inference_image(self.image_uri),
            entry_point=self.entry_point, source_dir=self.source_dir, session=self.session,
        )
        return model.deploy(initial_instance_count, instance_type, endpoint_name, serializer, deserializer, wait,
                            **endpoint_options)

    def _local_model_data(self) -> str:
        """The model's URI; for the embedded store, the file it maps to (for repacking code)."""
        uri = self.model_data
        if self.entry_point and uri.startswith("s3://") and not self.session.s3_endpoint_configured():
            return str(self.session.home / "artifacts" / "s3" / uri[len("s3://"):])
        return uri

    # --- building the request ------------------------------------------------------------
    def _request(self, name: str, channels: list[dict[str, Any]]) -> dict[str, Any]:
        hyperparameters = {k: _hp_string(v) for k, v in self.hyperparameters.items()}
        if self.entry_point:
            code = self._upload_code(name)
            hyperparameters.update(
                sagemaker_program=json.dumps(Path(self.entry_point).name),
                sagemaker_submit_directory=json.dumps(code),
                sagemaker_container_log_level="20",
                sagemaker_job_name=json.dumps(name),
                sagemaker_region=json.dumps(self.session.region),
            )
        algorithm: dict[str, Any] = {"TrainingImage": self.image_uri, "TrainingInputMode": "File"}
        if self.metric_definitions:
            algorithm["MetricDefinitions"] = self.metric_definitions
        stopping: dict[str, Any] = {"MaxRuntimeInSeconds": self.max_run}
        request: dict[str, Any] = {
            "TrainingJobName": name,
            "AlgorithmSpecification": algorithm,
            "RoleArn": self.role or _DEFAULT_ROLE.format(account=self._account()),
            "HyperParameters": hyperparameters,
            "InputDataConfig": channels,
            "OutputDataConfig": {"S3OutputPath": self.output_path or self._default_output()},
            "ResourceConfig": {
                "InstanceType": self.instance_type,
                "InstanceCount": self.instance_count,
                "VolumeSizeInGB": 30,
            },
            "StoppingCondition": stopping,
        }
        if self.environment:
            request["Environment"] = self.environment
        if self.use_spot_instances:
            request["EnableManagedSpotTraining"] = True
            stopping["MaxWaitTimeInSeconds"] = self.max_wait or self.max_run
        if self.checkpoint_s3_uri:
            request["CheckpointConfig"] = {"S3Uri": self.checkpoint_s3_uri}
        if not channels:
            del request["InputDataConfig"]
        return request

    def _upload_code(self, name: str) -> str:
        """sourcedir.tar.gz of source_dir (or of the lone entry point), as a local path."""
        target = self._scratch(name) / "source" / "sourcedir.tar.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        entry = Path(self.entry_point or "")
        with tarfile.open(target, "w:gz") as tar:
            if self.source_dir:
                for path in sorted(self.source_dir.rglob("*")):
                    if path.is_file() and "__pycache__" not in path.parts:
                        tar.add(path, arcname=str(path.relative_to(self.source_dir)))
            else:
                tar.add(entry, arcname=entry.name)
        return str(target.resolve())

    def _scratch(self, name: str) -> Path:
        return self.session.home / "sdk" / name

    def _account(self) -> str:
        return str(self.session.client("sts").get_caller_identity()["Account"])

    def _default_output(self) -> str:
        return f"s3://sagemaker-{self.session.region}-{self._account()}/"

    def _require_job(self) -> str:
        if not self.latest_training_job:
            raise RuntimeError("No training job yet: call fit() first.")
        return self.latest_training_job


def _hp_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _channels(inputs: Any, scratch: Path, content_type: str | None) -> list[dict[str, Any]]:
    if inputs is None:
        return []
    if not isinstance(inputs, dict):
        inputs = {"training": inputs}
    return [_channel(name, value, scratch, content_type) for name, value in inputs.items()]


def _channel(name: str, value: Any, scratch: Path, content_type: str | None) -> dict[str, Any]:
    if hasattr(value, "to_csv"):  # a pandas DataFrame: label first, no header, as CSV
        path = scratch / "input" / name / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.StringIO()
        value.to_csv(buffer, header=False, index=False)
        path.write_text(buffer.getvalue())
        uri, content_type = str(path.parent.resolve()) + "/", content_type or "text/csv"
    else:
        uri = str(value)
        if not uri.startswith(("s3://", "file://")):
            local = Path(uri).resolve()
            # a directory's files land directly in the channel, as with an S3 prefix ending in /
            uri = str(local) + ("/" if local.is_dir() else "")
        if content_type is None and uri.endswith(".csv"):
            content_type = "text/csv"
    channel: dict[str, Any] = {
        "ChannelName": name,
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                        "S3DataDistributionType": "FullyReplicated"}},
    }
    if content_type:
        channel["ContentType"] = content_type
    return channel
