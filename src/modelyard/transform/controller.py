"""The transform-job controller: the job kernel plus what is particular to batch transform.

Each host runs ``python -m modelyard.runtime.transform`` with a
:class:`~modelyard.runtime.transform.plan.TransformPlan`: the model's container (copied from
the model record at create time, so deleting the model later does not break the job) and this
host's place among ``InstanceCount`` hosts, which split the input objects between them.
"""

from __future__ import annotations

from modelyard.compute.isolation import isolation_mode
from modelyard.compute.resources import Slot, instance_slot
from modelyard.jobs.kernel import JobController
from modelyard.runtime.transform.plan import TransformPlan
from modelyard.store.base import Record
from modelyard.transform import spec as transform_spec

KIND = transform_spec.KIND


class TransformJobController(JobController):
    """Runs transform jobs on the executor and keeps their records current."""

    kind = KIND
    log_group = "/aws/sagemaker/TransformJobs"
    runtime_module = "modelyard.runtime.transform"

    def host_plans(self, record: Record, attempt: int) -> list[TransformPlan]:
        spec = record.spec
        count = int(spec["TransformResources"].get("InstanceCount", 1))
        return [self._plan(record, index, count) for index in range(count)]

    def _plan(self, record: Record, index: int, count: int) -> TransformPlan:
        spec, model = record.spec, record.spec["_model"]
        source = spec["TransformInput"]["DataSource"]["S3DataSource"]
        transform_input, output = spec["TransformInput"], spec["TransformOutput"]
        client = spec.get("ModelClientConfig") or {}
        processing = spec.get("DataProcessing") or {}
        return TransformPlan(
            job_name=record.name,
            job_arn=record.arn,
            host=f"algo-{index + 1}",
            host_index=index,
            host_count=count,
            model_name=spec["ModelName"],
            framework=model["framework"],
            model_data_url=model["model_data"],
            model_data_compressed=model["compressed"],
            environment={**model["environment"], **spec.get("Environment", {})},
            instance_type=spec["TransformResources"]["InstanceType"],
            input_uri=source["S3Uri"],
            output_uri=output["S3OutputPath"],
            content_type=transform_input.get("ContentType"),
            compression=transform_input.get("CompressionType", "None"),
            split_type=transform_input.get("SplitType", "None"),
            accept=output.get("Accept"),
            assemble_with=output.get("AssembleWith", "None"),
            batch_strategy=spec.get("BatchStrategy"),
            max_payload_mb=spec.get("MaxPayloadInMB"),
            max_concurrent=spec.get("MaxConcurrentTransforms") or None,
            timeout_seconds=float(client.get("InvocationsTimeoutInSeconds", transform_spec.DEFAULT_TIMEOUT_SECONDS)),
            max_retries=int(client.get("InvocationsMaxRetries", transform_spec.DEFAULT_MAX_RETRIES)),
            input_filter=processing.get("InputFilter", "$"),
            output_filter=processing.get("OutputFilter", "$"),
            join_source=processing.get("JoinSource", "None"),
            region=self.settings.region,
            isolation=isolation_mode(self.settings),
        )

    def slots(self, record: Record) -> list[Slot]:
        resources = record.spec["TransformResources"]
        return [instance_slot(resources["InstanceType"])] * int(resources.get("InstanceCount", 1))
