"""Automatic lineage, recorded as SageMaker records it for jobs, models and endpoints.

- A training job, once its trial component exists: a ``DataSet`` artifact per input channel
  (by S3 URI) and an ``Image`` artifact for its image, each ``ContributedTo`` the component.
  When the job completes: a ``Model`` artifact for ``model.tar.gz``, which the component
  ``Produced``.
- CreateModel: the ``Model`` artifact of each container's model data and the ``Image`` artifact
  of its image (the same vertices a training job recorded, when the model came from one).
- CreateEndpoint and UpdateEndpoint: an ``Endpoint`` context for the endpoint (source: its ARN)
  and a ``ModelDeployment`` action for the config deployed (source: the config's ARN); each
  variant's model and image artifacts ``ContributedTo`` the action, which is ``AssociatedWith``
  the context.

So ``QueryLineage`` from an endpoint's context, ``Ascendants``, reaches the deployment, the
model, the training job and its datasets; from a dataset, ``Descendants``, it reaches the
endpoint. Recording never fails the operation that caused it: problems are logged.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any

from modelyard.jobs import status as js
from modelyard.lineage import spec
from modelyard.lineage.associations import AssociationService, endpoint_context_name
from modelyard.lineage.service import LineageService
from modelyard.serving import spec as serving_spec
from modelyard.store.base import MetadataStore, Record, RecordNotFound
from modelyard.training import spec as training_spec

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class LineageRecorder:
    """Records the lineage of training jobs, models and endpoints as they happen."""

    def __init__(self, store: MetadataStore, entities: LineageService,
                 associations: AssociationService) -> None:
        self.store = store
        self.entities = entities
        self.associations = associations
        # training job -> steps recorded ("inputs", "model") while the job is unfinished
        self._jobs: dict[str, set[str]] = {}

    # --- training jobs -------------------------------------------------------------------
    def on_training_job(self, job: Record, component: Record) -> None:
        """A training job changed; ``component`` is its trial component."""
        done = self._jobs.setdefault(job.name, set())
        if "inputs" not in done:
            for uri, kind in _job_inputs(job):
                artifact = self.entities.ensure_artifact(uri, kind)
                self.associations.associate(artifact, component, "ContributedTo")
            done.add("inputs")
        if job.state.get("Status") == "Completed" and "model" not in done:
            uri = training_spec.model_artifacts_uri(dict(job.spec), job.name)
            model = self.entities.ensure_artifact(uri, spec.MODEL)
            self.associations.associate(component, model, "Produced")
            done.add("model")
        if js.is_terminal(dict(job.state)):
            self._jobs.pop(job.name, None)

    # --- models and endpoints ------------------------------------------------------------
    def wrap(self, operations: dict[str, Handler]) -> dict[str, Handler]:
        """``operations`` with CreateModel, CreateEndpoint and UpdateEndpoint recording
        lineage after they succeed."""
        wrapped = dict(operations)
        for name, record in (("CreateModel", self._model_created),
                             ("CreateEndpoint", self._endpoint_deployed),
                             ("UpdateEndpoint", self._endpoint_deployed)):
            if name in wrapped:
                wrapped[name] = self._after(wrapped[name], record)
        return wrapped

    @staticmethod
    def _after(
        handler: Handler, record: Callable[[dict[str, Any], dict[str, Any]], None]
    ) -> Handler:
        @functools.wraps(handler)
        def run(params: dict[str, Any]) -> dict[str, Any]:
            result = handler(params)
            try:
                record(params, result)
            except Exception:  # lineage must never fail the operation itself
                log.exception("recording lineage after %s failed", handler.__name__)
            return result
        return run

    def _model_created(self, params: dict[str, Any], result: dict[str, Any]) -> None:
        for _ in self._model_artifacts(params["ModelName"]):
            pass  # recording them is the point

    def _endpoint_deployed(self, params: dict[str, Any], result: dict[str, Any]) -> None:
        endpoint_arn = result["EndpointArn"]
        config = self.store.get(serving_spec.ENDPOINT_CONFIG, params["EndpointConfigName"])
        context = self.entities.ensure_context(endpoint_context_name(endpoint_arn), {
            "Source": {"SourceUri": endpoint_arn, "SourceType": "ARN"},
            "ContextType": spec.ENDPOINT,
            "Properties": {"EndpointName": params["EndpointName"]},
        })
        action_name = f"{params['EndpointName']}-{spec.short_hash(endpoint_arn, config.arn)}"
        action = self.entities.ensure_action(action_name, {
            "Source": {"SourceUri": config.arn, "SourceType": "ARN"},
            "ActionType": spec.MODEL_DEPLOYMENT,
            "Status": "Completed",
            "Properties": {"EndpointName": params["EndpointName"],
                           "EndpointConfigName": config.name},
        })
        for variant in config.spec.get("ProductionVariants", []):
            for artifact in self._model_artifacts(variant["ModelName"]):
                self.associations.associate(artifact, action, "ContributedTo")
        self.associations.associate(action, context, "AssociatedWith")

    def _model_artifacts(self, model_name: str) -> Iterator[Record]:
        """The Model and Image artifacts of a model's containers, recorded if new."""
        try:
            model = self.store.get(serving_spec.MODEL, model_name)
        except RecordNotFound:
            return
        spec_doc = model.spec
        containers = list(spec_doc.get("Containers") or [])
        if spec_doc.get("PrimaryContainer"):
            containers.insert(0, spec_doc["PrimaryContainer"])
        for container in containers:
            data = container.get("ModelDataUrl") or \
                container.get("ModelDataSource", {}).get("S3DataSource", {}).get("S3Uri")
            if data:
                yield self.entities.ensure_artifact(data, spec.MODEL)
            if container.get("Image"):
                yield self.entities.ensure_artifact(container["Image"], spec.IMAGE)


def _job_inputs(job: Record) -> list[tuple[str, str]]:
    """(URI, artifact type) of what a training job reads: its channels and its image."""
    inputs = []
    for channel in job.spec.get("InputDataConfig", []):
        uri = channel.get("DataSource", {}).get("S3DataSource", {}).get("S3Uri")
        if uri:
            inputs.append((uri, spec.DATASET))
    image = job.spec.get("AlgorithmSpecification", {}).get("TrainingImage")
    if image:
        inputs.append((image, spec.IMAGE))
    return inputs
