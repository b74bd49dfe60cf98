"""The async-invocation controller's decisions that need no model: expiry, re-queueing, capacity."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.artifacts import Artifacts
from modelyard.core.errors import ValidationError
from modelyard.core.settings import Settings
from modelyard.serving import async_spec
from modelyard.serving.async_controller import AsyncInvocationController, free_instance
from modelyard.serving.async_spec import AsyncRequest
from modelyard.serving.routes import Route, RoutingTable, VariantRoute
from modelyard.store import open_store
from modelyard.store.base import MetadataStore, Record


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[MetadataStore, Artifacts]]:
    settings = Settings.load(env={}, home=str(tmp_path))
    store = open_store(settings.db_url)
    yield store, Artifacts(settings)
    store.close()


def _enqueue(store: MetadataStore, name: str, status: str, enqueued_at: float) -> AsyncRequest:
    request = AsyncRequest(
        endpoint="ep", inference_id=name, input_location="s3://b/in.csv", headers=(("content-type", "text/csv"),),
        output_location=f"s3://b/out/{name}.out", failure_location=f"s3://b/fail/{name}-error.out",
        ttl_seconds=60, timeout_seconds=900, max_concurrent=1, enqueued_at=enqueued_at,
    )
    store.create(Record(kind=async_spec.ASYNC_INVOCATION, name=name, arn=f"arn:{name}", status=status,
                        created=enqueued_at, modified=enqueued_at, version=1, spec=request.to_spec(),
                        state={"Status": status}))
    return request


def test_an_old_queued_request_expires_with_a_failure_object(parts: tuple[MetadataStore, Artifacts]) -> None:
    store, artifacts = parts
    request = _enqueue(store, "old", async_spec.QUEUED, enqueued_at=1000.0)
    controller = AsyncInvocationController(store, artifacts, RoutingTable(), "000000000000", clock=lambda: 1061.0)
    assert controller.reconcile_all() == 1
    record = store.get(async_spec.ASYNC_INVOCATION, "old")
    assert record.status == async_spec.EXPIRED
    assert b"RequestTTLSeconds (60 s)" in artifacts.get_bytes(request.failure_location)
    assert not artifacts.exists(request.output_location)
    assert controller.reconcile_all() == 0


def test_a_running_request_of_a_previous_server_is_queued_again(parts: tuple[MetadataStore, Artifacts]) -> None:
    store, artifacts = parts
    _enqueue(store, "interrupted", async_spec.RUNNING, enqueued_at=1000.0)
    controller = AsyncInvocationController(store, artifacts, RoutingTable(), "000000000000", clock=lambda: 1001.0)
    controller.reconcile_all()
    assert store.get(async_spec.ASYNC_INVOCATION, "interrupted").status == async_spec.QUEUED


def test_free_instance_respects_the_per_instance_limit() -> None:
    route = Route("ep", (VariantRoute("a", 1.0, (1, 2)), VariantRoute("b", 0.0, (3,))))
    busy = collections.Counter({1: 2, 2: 1})
    assert free_instance(route, busy, limit=2) == ("a", 2)
    busy[2] = 2
    assert free_instance(route, busy, limit=2) == ("b", 3)  # a is full: b, despite weight 0
    busy[3] = 2
    assert free_instance(route, busy, limit=2) is None


def test_async_config_rules() -> None:
    async_spec.validate_async_config({"OutputConfig": {"S3OutputPath": "s3://b/out"}})
    with pytest.raises(ValidationError, match="MaxConcurrentInvocationsPerInstance"):
        async_spec.validate_async_config({"OutputConfig": {"S3OutputPath": "s3://b/out"},
                                          "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 0}})
    config = {"OutputConfig": {"S3OutputPath": "s3://b/out/"}}
    assert async_spec.locations(config, "u1", None, None) == ("s3://b/out/u1.out", "s3://b/out/u1-error.out")
    assert async_spec.locations(config, "u1", "x/y", "f.json")[0] == "s3://b/out/x/y/f.json"
