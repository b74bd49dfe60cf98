"""``modelyard.Transformer``: batch transform of a model over files, SageMaker-SDK style.

Where SageMaker wants S3 URIs, ``data`` and ``output_path`` may also be local paths, which a
server on the same machine reads and writes directly; ``s3://`` URIs pass through untouched.

>>> t = Transformer("my-model", output_path="/tmp/preds", strategy="MultiRecord",
...                 assemble_with="Line", accept="text/csv")                    # doctest: +SKIP
>>> t.transform("data/batch/", content_type="text/csv", split_type="Line")    # doctest: +SKIP
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from modelyard.sdk.logs import follow_job
from modelyard.sdk.naming import name_from_base
from modelyard.sdk.session import Session

LOG_GROUP = "/aws/sagemaker/TransformJobs"
_PROGRESS = re.compile(r"progress records=(\d+) objects=(\d+)/(\d+)")


class TransformFailed(RuntimeError):
    """The transform job ended Failed or Stopped; the message carries its FailureReason."""


class Transformer:
    """A transform job definition for one model; :meth:`transform` runs it over some data."""

    def __init__(
        self,
        model_name: str,
        instance_count: int = 1,
        instance_type: str = "ml.m5.large",
        output_path: str | Path | None = None,
        strategy: str | None = None,
        assemble_with: str | None = None,
        accept: str | None = None,
        max_payload: int | None = None,
        max_concurrent_transforms: int | None = None,
        env: dict[str, str] | None = None,
        base_transform_job_name: str | None = None,
        session: Session | None = None,
    ) -> None:
        self.session = session or Session()
        self.model_name = model_name
        self.instance_count = instance_count
        self.instance_type = instance_type
        self.output_path = _uri(output_path) if output_path else None
        self.strategy = strategy
        self.assemble_with = assemble_with
        self.accept = accept
        self.max_payload = max_payload
        self.max_concurrent_transforms = max_concurrent_transforms
        self.env = dict(env or {})
        self.base_transform_job_name = base_transform_job_name or model_name
        self.latest_transform_job: str | None = None

    def transform(
        self,
        data: str | Path,
        content_type: str | None = None,
        split_type: str | None = None,
        compression_type: str | None = None,
        input_filter: str | None = None,
        join_source: str | None = None,
        output_filter: str | None = None,
        job_name: str | None = None,
        wait: bool = True,
        logs: bool = True,
    ) -> None:
        """Create the transform job over ``data``; with ``wait``, block until it ends."""
        name = job_name or name_from_base(self.base_transform_job_name)
        request = self._request(name, _uri(data), content_type, split_type, compression_type)
        processing = {k: v for k, v in (("InputFilter", input_filter), ("JoinSource", join_source),
                                        ("OutputFilter", output_filter)) if v}
        if processing:
            request["DataProcessing"] = processing
        self.session.sagemaker.create_transform_job(**request)
        self.latest_transform_job = name
        if wait:
            self.wait(logs=logs)

    def wait(self, logs: bool = True) -> dict[str, Any]:
        """Block until the latest job ends; raise TransformFailed unless it Completed."""
        from modelyard.sdk.progress import JobProgress

        name = self._require_job()
        with JobProgress(name, "TransformJobStatus", "TransformJobStatus") as progress:
            for stream, event in follow_job(self.describe, "TransformJobStatus", self.session.logs,
                                            LOG_GROUP, name, on_status=progress.update):
                if logs:
                    progress.log(stream, event["message"])
        job = self.describe()
        if job["TransformJobStatus"] != "Completed":
            raise TransformFailed(f"Transform job {name} {job['TransformJobStatus']}: {job.get('FailureReason', '')}")
        return job

    def describe(self) -> dict[str, Any]:
        return dict(self.session.sagemaker.describe_transform_job(TransformJobName=self._require_job()))

    @property
    def output(self) -> str:
        """Where the ``.out`` objects of the latest job are."""
        return str(self.describe()["TransformOutput"]["S3OutputPath"])

    def _request(self, name: str, data: str, content_type: str | None, split_type: str | None,
                 compression_type: str | None) -> dict[str, Any]:
        transform_input: dict[str, Any] = {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": data}},
        }
        for key, value in (("ContentType", content_type), ("SplitType", split_type),
                           ("CompressionType", compression_type)):
            if value:
                transform_input[key] = value
        output: dict[str, Any] = {"S3OutputPath": self.output_path or self._default_output(name)}
        for key, value in (("AssembleWith", self.assemble_with), ("Accept", self.accept)):
            if value:
                output[key] = value
        request: dict[str, Any] = {
            "TransformJobName": name, "ModelName": self.model_name,
            "TransformInput": transform_input, "TransformOutput": output,
            "TransformResources": {"InstanceType": self.instance_type, "InstanceCount": self.instance_count},
        }
        optional: dict[str, Any] = {
            "BatchStrategy": self.strategy, "MaxPayloadInMB": self.max_payload,
            "MaxConcurrentTransforms": self.max_concurrent_transforms, "Environment": self.env,
        }
        request.update({k: v for k, v in optional.items() if v})
        return request

    def _default_output(self, name: str) -> str:
        return f"{self.session.default_bucket_uri()}/{name}"

    def _require_job(self) -> str:
        if not self.latest_transform_job:
            raise RuntimeError("No transform job yet: call transform() first.")
        return self.latest_transform_job


def _uri(value: str | Path) -> str:
    """``s3://`` and ``file://`` URIs as they are; a local path made absolute."""
    text = str(value)
    if text.startswith(("s3://", "file://")):
        return text
    local = Path(text).resolve()
    return str(local) + ("/" if local.is_dir() else "")


def transform_progress(logs: Any, job_name: str) -> dict[str, int] | None:
    """Records and objects written so far, summed over hosts, from each host's last progress
    line in the job's log (DescribeTransformJob has no member for progress); None before any."""
    streams = logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{job_name}/")
    latest = [_last_progress(logs, s["logStreamName"]) for s in streams["logStreams"]]
    found = [f for f in latest if f is not None]
    if not found:
        return None
    return {key: sum(f[key] for f in found) for key in ("records", "objects", "total_objects")}


def _last_progress(logs: Any, stream: str) -> dict[str, int] | None:
    events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, limit=100)["events"]
    for event in reversed(events):
        match = _PROGRESS.search(event["message"])
        if match:
            records, objects, total = (int(g) for g in match.groups())
            return {"records": records, "objects": objects, "total_objects": total}
    return None
