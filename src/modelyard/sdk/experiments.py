"""``modelyard.Run``: track parameters, metrics and artifacts of a piece of work.

Like ``sagemaker.experiments.Run``, a run is a trial component in a trial of an experiment:

>>> with Run(experiment_name="churn", run_name="lr-0-1") as run:      # doctest: +SKIP
...     run.log_parameters({"lr": 0.1, "optimizer": "adam"})
...     for step, loss in enumerate(losses):
...         run.log_metric("train:loss", loss, step=step)
...     run.log_artifact("model", "s3://bucket/model.tar.gz")

Naming follows the SageMaker SDK, so runs made by either look the same: the component is
``<experiment>-<run>``, its trial ``Default-Run-Group-<experiment>``, and it is tagged
``sagemaker:trial-component-source=run``. The experiment, trial and component are created when
missing and reused when present. Entering the ``with`` block marks the run InProgress with a
start time; leaving it records the end time and Completed (or Failed, with the exception's text).

Metrics are buffered and sent through ``sagemaker-metrics`` BatchPutMetrics, ten values per call
(the most one call takes), and whatever is left when the run closes. Parameters and artifacts
are sent with UpdateTrialComponent when the run closes (or on :meth:`Run.flush`).

Inside a training job, ``Run()`` without names finds its run from the job, as the SageMaker
SDK's ``load_run()`` does: it reads the job's name from ``TRAINING_JOB_NAME`` (the platform sets
it, with ``TRAINING_JOB_ARN``), asks DescribeTrainingJob for its ``ExperimentConfig`` and logs to
the component named by ``RunName``. A modelyard extension: when the job has no ``RunName``, the
run is the job's own component, ``<job>-aws-training-job``, so metrics logged from any training
script land next to the job's. A loaded run leaves the component's status and times alone (the
job, or the run that started the job, owns them). An :class:`~modelyard.Estimator` fitted inside
a ``with Run(...)`` block passes the run's ``ExperimentConfig`` to its job, so ``Run()`` inside
the script logs to that same run.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import threading
import time
from numbers import Number
from typing import Any

from modelyard.sdk.naming import name_from_base
from modelyard.sdk.session import Session

log = logging.getLogger(__name__)

RUN_TAG = {"Key": "sagemaker:trial-component-source", "Value": "run"}
TRIAL_NAME_TEMPLATE = "Default-Run-Group-{}"
JOB_COMPONENT_SUFFIX = "-aws-training-job"
_BATCH = 10  # BatchPutMetrics takes at most ten values per call
_MAX_NAME = 59  # SageMaker SDK: run and experiment names leave room for "<exp>-<run>" in 120

_current = threading.local()


class Run:
    """A trial component that collects a piece of work's parameters, metrics and artifacts.

    ``experiment_name`` and ``run_name`` name the run (``run_name`` defaults to a timestamped
    one); with neither, inside a training job, the run is loaded from the job (see the module
    docstring). ``session`` defaults to a :class:`~modelyard.Session` (inside a job: the server
    that runs the job).
    """

    def __init__(
        self,
        experiment_name: str | None = None,
        run_name: str | None = None,
        session: Session | None = None,
        run_display_name: str | None = None,
        tags: list[dict[str, str]] | None = None,
    ) -> None:
        if run_name and not experiment_name:
            raise ValueError("Give experiment_name together with run_name.")
        in_job = bool(os.environ.get("TRAINING_JOB_NAME") or os.environ.get("TRAINING_JOB_ARN"))
        #: the experiment and trial the run is in (a run loaded from a job may have none)
        self.experiment_name: str | None = None
        self.run_group_name: str | None = None
        self.run_name = ""
        self.trial_component_name = ""
        self.session = session or Session(start_server=not in_job)
        self._sm = self.session.sagemaker
        self._metrics_client = self.session.client("sagemaker-metrics")
        self._parameters: dict[str, dict[str, Any]] = {}
        self._artifacts: dict[str, dict[str, dict[str, str]]] = {"Input": {}, "Output": {}}
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        if experiment_name:
            self.loaded = False
            self._init(experiment_name, run_name or name_from_base("run"), run_display_name,
                       tags)
        elif in_job:
            self.loaded = True
            self._load_from_job()
        else:
            raise ValueError(
                "Give experiment_name (and run_name), or call Run() inside a training job."
            )

    # --- naming --------------------------------------------------------------------------
    def _init(self, experiment_name: str, run_name: str, display_name: str | None,
              tags: list[dict[str, str]] | None) -> None:
        for what, value in (("experiment_name", experiment_name), ("run_name", run_name)):
            if len(value) > _MAX_NAME:
                raise ValueError(f"{what} must be at most {_MAX_NAME} characters: {value!r}")
        self.experiment_name = experiment_name
        self.run_name = run_name
        self.run_group_name = TRIAL_NAME_TEMPLATE.format(experiment_name)
        self.trial_component_name = f"{experiment_name}-{run_name}"
        extra = {"Tags": list(tags)} if tags else {}
        _create_or_keep(self._sm.create_experiment, ExperimentName=experiment_name, **extra)
        _create_or_keep(self._sm.create_trial, TrialName=self.run_group_name,
                        ExperimentName=experiment_name, **extra)
        _create_or_keep(
            self._sm.create_trial_component, TrialComponentName=self.trial_component_name,
            DisplayName=display_name or run_name, Tags=[*(tags or []), RUN_TAG],
        )
        self._sm.associate_trial_component(
            TrialComponentName=self.trial_component_name, TrialName=self.run_group_name
        )
        self._describe()

    def _load_from_job(self) -> None:
        job_name = os.environ.get("TRAINING_JOB_NAME") or \
            os.environ["TRAINING_JOB_ARN"].rsplit("/", 1)[-1]
        job = self._sm.describe_training_job(TrainingJobName=job_name)
        config = job.get("ExperimentConfig") or {}
        self.experiment_name = config.get("ExperimentName")
        self.run_group_name = config.get("TrialName")
        if config.get("RunName"):
            self.trial_component_name = config["RunName"]
            prefix = f"{self.experiment_name}-" if self.experiment_name else ""
            self.run_name = self.trial_component_name.removeprefix(prefix)
        else:
            self.trial_component_name = f"{job['TrainingJobName']}{JOB_COMPONENT_SUFFIX}"
            self.run_name = self.trial_component_name
        # the platform creates the job's component as the job starts; give it a moment
        deadline = time.monotonic() + 30
        while True:
            try:
                self._describe()
                return
            except self._sm.exceptions.ResourceNotFound:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _describe(self) -> None:
        component = self._sm.describe_trial_component(TrialComponentName=self.trial_component_name)
        self.trial_component_arn: str = component["TrialComponentArn"]
        self._started = "StartTime" in component

    @property
    def experiment_config(self) -> dict[str, str]:
        """The ``ExperimentConfig`` that puts a training job in this run (for CreateTrainingJob)."""
        config = {"RunName": self.trial_component_name}
        if self.experiment_name:
            config["ExperimentName"] = self.experiment_name
        if self.run_group_name:
            config["TrialName"] = self.run_group_name
        return config

    # --- logging -------------------------------------------------------------------------
    def log_parameter(self, name: str, value: str | float | int | bool) -> None:
        """Record one parameter (a later value for the same name replaces it)."""
        if _bad_number(value):
            log.warning("Not logging parameter %s: %r is not a finite number", name, value)
            return
        if isinstance(value, Number) and not isinstance(value, bool):
            self._parameters[name] = {"NumberValue": float(value)}  # type: ignore[arg-type]
        else:
            self._parameters[name] = {"StringValue": str(value)}

    def log_parameters(self, parameters: dict[str, str | float | int | bool]) -> None:
        """Record several parameters."""
        for name, value in parameters.items():
            self.log_parameter(name, value)

    def log_metric(self, name: str, value: float, step: int | None = None,
                   timestamp: dt.datetime | float | None = None) -> None:
        """Record one value of a metric (at ``step``, at ``timestamp`` or now)."""
        if _bad_number(value):
            log.warning("Not logging metric %s: %r is not a finite number", name, value)
            return
        if isinstance(timestamp, dt.datetime):
            moment = timestamp.timestamp()
        else:
            moment = time.time() if timestamp is None else float(timestamp)
        datum: dict[str, Any] = {"MetricName": name, "Value": float(value), "Timestamp": moment}
        if step is not None:
            datum["Step"] = int(step)
        with self._lock:
            self._buffer.append(datum)
            full = len(self._buffer) >= _BATCH
        if full:
            self._send_metrics()

    def log_artifact(self, name: str, value: str, media_type: str | None = None,
                     is_output: bool = True) -> None:
        """Record an artifact: a URI (or any value up to 2048 characters) by name."""
        artifact = {"Value": value, **({"MediaType": media_type} if media_type else {})}
        self._artifacts["Output" if is_output else "Input"][name] = artifact

    # --- sending -------------------------------------------------------------------------
    def flush(self) -> None:
        """Send every buffered metric, parameter and artifact now."""
        self._send_metrics()
        update: dict[str, Any] = {}
        if self._parameters:
            update["Parameters"] = self._parameters
        for side, artifacts in self._artifacts.items():
            if artifacts:
                update[f"{side}Artifacts"] = artifacts
        if update:
            self._sm.update_trial_component(TrialComponentName=self.trial_component_name, **update)
            self._parameters = {}
            self._artifacts = {"Input": {}, "Output": {}}

    def _send_metrics(self) -> None:
        with self._lock:
            pending, self._buffer = self._buffer, []
        name = self.trial_component_name.lower()  # the metrics API wants the lower-case name
        for start in range(0, len(pending), _BATCH):
            batch = pending[start : start + _BATCH]
            answer = self._metrics_client.batch_put_metrics(
                TrialComponentName=name, MetricData=batch
            )
            for error in answer.get("Errors") or []:
                log.warning("metric %s was not stored: %s",
                            batch[error.get("MetricIndex", 0)]["MetricName"], error.get("Code"))

    def close(self) -> None:
        """Send everything still buffered."""
        self.flush()

    # --- context ------------------------------------------------------------------------
    def __enter__(self) -> Run:
        if not self.loaded and not self._started:
            self._sm.update_trial_component(
                TrialComponentName=self.trial_component_name, StartTime=time.time(),
                Status={"PrimaryStatus": "InProgress"},
            )
            self._started = True
        _current.run = self
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> None:
        _current.run = None
        try:
            self.flush()
        finally:
            if not self.loaded:
                status: dict[str, str] = {"PrimaryStatus": "Completed" if exc is None else "Failed"}
                if exc is not None:
                    status["Message"] = f"{type(exc).__name__}: {exc}"[:1024]
                self._sm.update_trial_component(
                    TrialComponentName=self.trial_component_name, EndTime=time.time(),
                    Status=status,
                )


def current_run() -> Run | None:
    """The run whose ``with`` block this thread is in, if any."""
    return getattr(_current, "run", None)


def _create_or_keep(create: Any, **request: Any) -> None:
    """Create a resource, or keep the one that exists (the SageMaker SDK's load-or-create)."""
    try:
        create(**request)
    except Exception as e:  # botocore's ClientError, without importing botocore here
        error = getattr(e, "response", {}).get("Error", {})
        if error.get("Code") != "ValidationException" or "already exists" not in error.get(
            "Message", ""
        ):
            raise


def _bad_number(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)
