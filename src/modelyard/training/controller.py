"""The training-job controller: the job kernel plus what is particular to training."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from typing import Any

from modelyard.artifacts.uris import join_uri
from modelyard.compute.isolation import isolation_mode
from modelyard.compute.ports import free_port
from modelyard.compute.resources import Slot, instance_slot
from modelyard.jobs.kernel import JobController
from modelyard.jobs.metrics import MetricMatcher
from modelyard.runtime.entrypoint import is_builtin_algorithm
from modelyard.runtime.plan import ChannelPlan, HostPlan, PlanFile
from modelyard.store.base import MetricPoint, Record
from modelyard.store.mutate import Mutation
from modelyard.training import spec as training_spec

log = logging.getLogger(__name__)

KIND = "TrainingJob"

# Lines per host and per attempt are numbered apart so that metric points never collide.
_SEQ_HOST = 10**9
_SEQ_ATTEMPT = 10**11


class TrainingJobController(JobController):
    """Runs training jobs on the executor and keeps their records current."""

    kind = KIND
    log_group = "/aws/sagemaker/TrainingJobs"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._matchers: dict[str, MetricMatcher] = {}
        #: called with the new record after every change of a job (experiment tracking and
        #: lineage hang off here); must be quick and must not raise
        self.observers: list[Callable[[Record], None]] = []

    def mutate(self, name: str, fn: Mutation) -> Record:
        """Change a job's state (see the kernel), then tell the observers if it changed."""
        changed = [False]

        def tracked(state: dict[str, Any]) -> dict[str, Any] | None:
            new = fn(state)
            changed[0] = new is not None  # of the attempt that won the compare-and-swap
            return new

        record = super().mutate(name, tracked)
        if changed[0]:
            self.track(record)
        return record

    def track(self, record: Record) -> None:
        """Hand a job's current record to every observer (a failing one is logged)."""
        for observer in self.observers:
            try:
                observer(record)
            except Exception:
                log.exception("an observer of training job %s failed", record.name)

    def host_plans(self, record: Record, attempt: int) -> list[HostPlan]:
        spec = record.spec
        resources = spec["ResourceConfig"]
        count = int(resources.get("InstanceCount", 1))
        hosts = [f"algo-{i}" for i in range(1, count + 1)]
        algorithm = spec["AlgorithmSpecification"]
        framework = training_spec.framework_of(spec)
        output = training_spec.output_prefix(spec, record.name)
        checkpoint = spec.get("CheckpointConfig") or {}
        master_port = free_port() if count > 1 else 0
        isolation = isolation_mode(self.settings)
        channels = [_channel_plan(c, algorithm) for c in spec.get("InputDataConfig", [])]
        return [
            HostPlan(
                job_name=record.name,
                job_arn=record.arn,
                host=host,
                hosts=hosts,
                instance_type=resources["InstanceType"],
                framework=framework,
                hyperparameters=dict(spec.get("HyperParameters", {})),
                channels=channels,
                environment=dict(spec.get("Environment", {})),
                model_uri=training_spec.model_artifacts_uri(spec, record.name).rstrip("/"),
                output_uri=join_uri(output, "output.tar.gz"),
                compress_model=training_spec.compresses_model(spec),
                upload_outputs=index == 0,
                checkpoint_uri=checkpoint.get("S3Uri"),
                checkpoint_local_path=checkpoint.get("LocalPath", "/opt/ml/checkpoints"),
                region=self.settings.region,
                isolation=isolation,
                master_port=master_port,
                attempt=attempt,
            )
            for index, host in enumerate(hosts)
        ]

    def warm_start(self, plan: PlanFile) -> bool:
        # a built-in algorithm runs no user code; a script keeps its fresh interpreter
        return isinstance(plan, HostPlan) and is_builtin_algorithm(
            plan.framework, plan.hyperparameters
        )

    def slots(self, record: Record) -> list[Slot]:
        resources = record.spec["ResourceConfig"]
        slot = instance_slot(resources["InstanceType"])
        return [slot] * int(resources.get("InstanceCount", 1))

    def max_runtime(self, record: Record) -> float | None:
        return float(record.spec.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))

    def max_wait(self, record: Record) -> float | None:
        if not self.restartable(record):
            return None
        return float(record.spec["StoppingCondition"]["MaxWaitTimeInSeconds"])

    def restartable(self, record: Record) -> bool:
        return bool(record.spec.get("EnableManagedSpotTraining"))

    def on_log_lines(
        self, record: Record, host_index: int, first_line: int, lines: list[dict[str, Any]]
    ) -> None:
        matcher = self._matcher(record)
        if not matcher:
            return
        attempt = int(record.state.get("_run", {}).get("attempt", 1))
        base = attempt * _SEQ_ATTEMPT + host_index * _SEQ_HOST + first_line
        points = []
        for i, line in enumerate(lines):
            for obs in matcher.match(str(line.get("m", "")), float(line.get("t", 0)) / 1000.0):
                points.append(MetricPoint(obs.name, obs.value, obs.timestamp, base + i))
        if points:
            self.store.add_metric_points(record.arn, points)

    def on_finished(self, record: Record, state: dict[str, Any]) -> dict[str, Any]:
        self._matchers.pop(record.name, None)
        run = state.get("_run", {})
        started = run.get("started")
        if started is not None:
            training = max(1, round(float(run.get("ended", time.time())) - float(started)))
            state["TrainingTimeInSeconds"] = training
            state["BillableTimeInSeconds"] = max(1, min(training, round(float(run.get("billable", training)))))
        state["FinalMetricDataList"] = final_metrics(self.store.get_metric_points(record.arn))
        return state

    def delete_files(self, name: str) -> None:
        shutil.rmtree(self.job_dir(name), ignore_errors=True)

    def _matcher(self, record: Record) -> MetricMatcher:
        matcher = self._matchers.get(record.name)
        if matcher is None:
            matcher = MetricMatcher(training_spec.metric_definitions(record.spec))
            self._matchers[record.name] = matcher
        return matcher



def final_metrics(points: list[MetricPoint]) -> list[dict[str, Any]]:
    """SageMaker's FinalMetricDataList: the last observed value of each metric."""
    last: dict[str, MetricPoint] = {}
    for point in points:
        last[point.name] = point
    return [
        {"MetricName": p.name, "Value": p.value, "Timestamp": p.timestamp}
        for p in sorted(last.values(), key=lambda p: p.name)
    ]


def _channel_plan(channel: dict[str, Any], algorithm: dict[str, Any]) -> ChannelPlan:
    source = channel["DataSource"]["S3DataSource"]
    return ChannelPlan(
        name=channel["ChannelName"],
        source_uri=source["S3Uri"],
        data_type=source.get("S3DataType", "S3Prefix"),
        input_mode=channel.get("InputMode") or algorithm.get("TrainingInputMode", "File"),
        distribution=source.get("S3DataDistributionType", "FullyReplicated"),
        content_type=channel.get("ContentType"),
        compression=channel.get("CompressionType"),
        record_wrapper=channel.get("RecordWrapperType", "None"),
    )

