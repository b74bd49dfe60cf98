"""The platform: every store, backend, controller and service of one server, wired together."""

from __future__ import annotations

import logging
import os

import psutil

from modelyard.alarms import AlarmController, AlarmService, firing_alarms
from modelyard.api.cloudwatch_logs import EndpointStreams, JobStreams, LogsService
from modelyard.api.cloudwatch_metrics import MetricsService
from modelyard.api.tags import TagService
from modelyard.artifacts import Artifacts
from modelyard.autoscaling import AutoScalingService, ScalingController
from modelyard.compute.isolation import isolation_mode
from modelyard.compute.local import LocalExecutor
from modelyard.compute.resources import Capacity
from modelyard.core.credentials import load_or_create_credentials, lookup_secret
from modelyard.core.settings import Settings
from modelyard.experiments.components import TrialComponentService
from modelyard.experiments.metrics import MetricsApi
from modelyard.experiments.service import Catalogs, ExperimentService
from modelyard.experiments.tracking import TrainingJobTracker
from modelyard.jobs.loop import ReconcileLoop
from modelyard.lineage.associations import AssociationService
from modelyard.lineage.service import LineageService
from modelyard.lineage.tracking import LineageRecorder
from modelyard.search.resources import builtin_searchables, described
from modelyard.search.service import SearchService
from modelyard.serving import spec as serving_spec
from modelyard.serving.async_controller import AsyncInvocationController
from modelyard.serving.async_invocations import AsyncInvocationHandler
from modelyard.serving.capture import Capturer
from modelyard.serving.controller import EndpointController
from modelyard.serving.endpoints import EndpointService
from modelyard.serving.fleet import Fleet
from modelyard.serving.metrics import EndpointMetrics, ready_instances
from modelyard.serving.router import ASYNC_SUFFIX, STREAM_SUFFIX, Router
from modelyard.serving.routes import RoutingTable
from modelyard.serving.serverless import Demand
from modelyard.serving.service import ModelService
from modelyard.serving.streaming import ResponseStreamHandler
from modelyard.store import open_store
from modelyard.training.controller import TrainingJobController
from modelyard.training.service import TrainingService
from modelyard.transform.controller import TransformJobController
from modelyard.transform.service import TransformService
from modelyard.tuning.controller import TuningJobController
from modelyard.tuning.service import TuningService
from modelyard.tuning.spec import KIND as TUNING_JOB

log = logging.getLogger(__name__)


class Platform:
    """Owns the metadata store, the artifact store, the executor and the controllers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self.credentials = load_or_create_credentials(settings.home)
        self.lookup_secret = lookup_secret(settings.home)
        self.store = open_store(settings.db_url)
        self.artifacts = Artifacts(settings)
        # warm starts: built-in algorithm jobs fork from a preloaded runtime (compute/warm.py)
        self.executor = LocalExecutor(settings.home / "zygote.log" if settings.warm_starts else None)
        self.capacity = Capacity(
            cpus=settings.cpus or (os.cpu_count() or 1),
            memory_gib=settings.memory_gib or psutil.virtual_memory().total / 2**30,
            gpus=settings.gpus,
        )
        self.training_controller = TrainingJobController(
            settings, self.store, self.executor, self.capacity
        )
        self.transform_controller = TransformJobController(
            settings, self.store, self.executor, self.capacity
        )
        self.routes = RoutingTable()
        demand = Demand()  # serverless use, shared by the router and the endpoint controller
        self.endpoint_controller = EndpointController(
            self.store, Fleet(settings, self.executor, isolation_mode(settings)), self.routes,
            firing_alarms=firing_alarms(self.store), demand=demand,
        )
        self.async_controller = AsyncInvocationController(
            self.store, self.artifacts, self.routes, settings.account_id
        )
        self.loop = ReconcileLoop(
            [self.training_controller, self.transform_controller, self.endpoint_controller,
             self.async_controller]
        )
        self.training = TrainingService(
            settings, self.store, self.training_controller, self.loop.wake
        )
        # after the training controller in each pass: a trial that just ended frees its slot
        # for the next one in the same pass
        self.tuning_controller = TuningJobController(self.store, self.training)
        self.loop.controllers.append(self.tuning_controller)
        self.tuning = TuningService(settings, self.store, self.loop.wake)
        self.models = ModelService(settings, self.store)
        self.transform = TransformService(
            settings, self.store, self.models.models, self.transform_controller, self.loop.wake
        )
        self.endpoints = EndpointService(settings, self.store, self.models, self.loop.wake)
        self.router = Router(settings, self.routes, self.lookup_secret)
        self.router.demand, self.router.wake = demand, self.loop.wake
        self.capturer = Capturer(self.artifacts)
        self.router.capturer = self.capturer
        self.router.extra_routes[ASYNC_SUFFIX] = AsyncInvocationHandler(
            self.router, self.store, self.artifacts, self.loop.wake
        )
        self.router.extra_routes[STREAM_SUFFIX] = ResponseStreamHandler(self.router)
        self.tags = TagService(settings, self.store)
        self.logs = LogsService([
            JobStreams(self.training_controller), JobStreams(self.transform_controller),
            EndpointStreams(self.store, serving_spec.ENDPOINT),
        ])
        self.endpoint_metrics = EndpointMetrics(ready_instances(self.routes))
        self.router.observer = self.endpoint_metrics
        self.metrics = MetricsService(self.store, sources=[self.endpoint_metrics])
        self.alarms = AlarmService(settings, self.store, self.loop.wake)
        self.autoscaling = AutoScalingService(settings, self.store, self.loop.wake)
        # added last: they read the metrics and scale through the endpoint service
        self.loop.controllers += [
            AlarmController(self.store, self.metrics),
            ScalingController(settings, self.store, self.metrics, self.endpoints),
        ]
        self._track_experiments_and_lineage(settings)

    def _track_experiments_and_lineage(self, settings: Settings) -> None:
        """Experiments, trial components, their metrics, lineage and Search.

        Training jobs are tracked as they change (the controller's observers); models and
        endpoints record their lineage after their Create/Update operations succeed.
        Capabilities add their own resources to Search with ``self.search.register``.
        """
        catalogs = Catalogs.open(settings, self.store)
        self.experiments = ExperimentService(settings, self.store, catalogs)
        self.trial_components = TrialComponentService(self.store, catalogs)
        self.experiment_metrics = MetricsApi(
            self.store, self.trial_components.component_arn, self.trial_components.series_of
        )
        self.lineage = LineageService(settings, self.store)
        self.associations = AssociationService(self.store, self.lineage)
        self.lineage_recorder = LineageRecorder(self.store, self.lineage, self.associations)
        self.job_tracker = TrainingJobTracker(catalogs, self.experiments)
        self.job_tracker.listeners.append(self.lineage_recorder.on_training_job)
        self.training_controller.observers.append(self.job_tracker.observe)
        self.search = SearchService(self.store)
        for searchable in builtin_searchables(self.store, self.training, self.trial_components):
            self.search.register(searchable)
        self.search.register(described(
            self.store, "HyperParameterTuningJob", "HyperParameterTuningJob", TUNING_JOB,
            self.tuning.description,
            {"HyperParameterTuningJobName": "name", "CreationTime": "created"},
        ))

    def sagemaker_operations(self) -> dict:
        return self.lineage_recorder.wrap({
            **self.training.operations(),
            **self.tuning.operations(),
            **self.models.operations(),
            **self.transform.operations(),
            **self.endpoints.operations(),
            **self.tags.operations(),
            **self.experiments.operations(),
            **self.trial_components.operations(),
            **self.lineage.operations(),
            **self.associations.operations(),
            **self.search.operations(),
        })

    def cloudwatch_operations(self) -> dict:
        return {**self.metrics.operations(), **self.alarms.operations()}

    def start(self) -> None:
        self.capturer.start()
        self.loop.start()
        log.info("modelyard platform started: %s", self.settings.redacted())

    def close(self) -> None:
        self.loop.stop()
        self.executor.close()
        self.async_controller.shutdown()
        self.endpoint_controller.shutdown()
        self.capturer.close()
        self.store.close()
