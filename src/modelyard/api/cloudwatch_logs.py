"""The part of CloudWatch Logs that SDKs use to stream job logs.

Served on the same endpoint as the SageMaker API (``X-Amz-Target: Logs_20140328.<Op>``), so a
``logs`` client pointed at modelyard's URL works: DescribeLogStreams and GetLogEvents over the
streams of each job kind's log group and of each endpoint's group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from modelyard.core.errors import ModelyardError
from modelyard.jobs.kernel import JobController
from modelyard.jobs.logs import Stream, read_events, stream_info
from modelyard.store.base import MetadataStore, Query, Record, RecordNotFound

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class LogsResourceNotFound(ModelyardError):
    """The log group or stream does not exist (the SDK tolerates this code)."""

    code = "ResourceNotFoundException"
    status = 400


class StreamSource(Protocol):
    """Where the streams of some log groups come from."""

    def streams(self, group: str, prefix: str) -> list[Stream] | None:
        """The streams of ``group`` whose names start with ``prefix``; None: not my group."""


class JobStreams:
    """``/aws/sagemaker/<Kind>Jobs``: one stream per host and attempt of each job."""

    def __init__(self, controller: JobController) -> None:
        self.controller = controller

    def streams(self, group: str, prefix: str) -> list[Stream] | None:
        if group != self.controller.log_group:
            return None
        return [s for record in self._records(prefix) for s in recorded_streams(record.state.get("_run", {}))
                if s.name.startswith(prefix)]

    def _records(self, prefix: str) -> list[Record]:
        store, kind = self.controller.store, self.controller.kind
        job = prefix.split("/", 1)[0]
        if job and "/" in prefix:
            try:
                return [store.get(kind, job)]
            except RecordNotFound:
                return []
        return store.list(Query(kind=kind, name_contains=job or None))


class EndpointStreams:
    """``/aws/sagemaker/Endpoints/<endpoint>``: one stream per model-server instance."""

    group_prefix = "/aws/sagemaker/Endpoints/"

    def __init__(self, store: MetadataStore, kind: str) -> None:
        self.store = store
        self.kind = kind

    def streams(self, group: str, prefix: str) -> list[Stream] | None:
        if not group.startswith(self.group_prefix):
            return None
        try:
            record = self.store.get(self.kind, group[len(self.group_prefix):])
        except RecordNotFound:
            return None
        return [s for s in recorded_streams(record.state) if s.name.startswith(prefix)]


def recorded_streams(state: Mapping[str, Any]) -> list[Stream]:
    """The streams a record lists under ``streams``: ``[{"name", "path", "created"}]``."""
    return [Stream(s["name"], Path(s["path"]), int(float(s.get("created", 0)) * 1000))
            for s in state.get("streams", [])]


class LogsService:
    """DescribeLogStreams and GetLogEvents over job and endpoint logs."""

    def __init__(self, sources: Sequence[StreamSource]) -> None:
        self.sources = list(sources)

    def operations(self) -> dict[str, Handler]:
        return {"DescribeLogStreams": self.describe_log_streams, "GetLogEvents": self.get_log_events}

    def describe_log_streams(self, params: dict[str, Any]) -> dict[str, Any]:
        streams = self._streams(params["logGroupName"], params.get("logStreamNamePrefix", ""))
        if params.get("orderBy") == "LastEventTime":
            streams.sort(key=lambda s: stream_info(s)["lastEventTimestamp"])
        else:
            streams.sort(key=lambda s: s.name)
        if params.get("descending"):
            streams.reverse()
        start = int(params["nextToken"]) if str(params.get("nextToken", "")).isdigit() else 0
        limit = int(params.get("limit", 50))
        page = streams[start : start + limit]
        out: dict[str, Any] = {"logStreams": [stream_info(s) for s in page]}
        if start + limit < len(streams):
            # only when more remain: the SDK loops while nextToken is present
            out["nextToken"] = str(start + limit)
        return out

    def get_log_events(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["logStreamName"]
        match = [s for s in self._streams(params["logGroupName"], name) if s.name == name]
        if not match:
            raise LogsResourceNotFound("The specified log stream does not exist.")
        page = read_events(
            match[0],
            params.get("nextToken"),
            limit=int(params.get("limit", 10000)),
            start_from_head=bool(params.get("startFromHead", False)),
            start_ms=params.get("startTime"),
            end_ms=params.get("endTime"),
        )
        return {
            "events": page.events,
            "nextForwardToken": page.next_forward,
            "nextBackwardToken": page.next_backward,
        }

    def _streams(self, group: str, prefix: str) -> list[Stream]:
        for source in self.sources:
            found = source.streams(group, prefix)
            if found is not None:
                return found
        raise LogsResourceNotFound("The specified log group does not exist.")
