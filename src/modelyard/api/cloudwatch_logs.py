"""The part of CloudWatch Logs that SDKs use to stream job logs.

Served on the same endpoint as the SageMaker API (``X-Amz-Target: Logs_20140328.<Op>``), so a
``logs`` client pointed at modelyard's URL works: DescribeLogStreams and GetLogEvents over the
streams of each job kind's log group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from modelyard.core.errors import ModelyardError
from modelyard.jobs.kernel import JobController
from modelyard.jobs.logs import Stream, read_events, stream_info
from modelyard.store.base import Query, RecordNotFound

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class LogsResourceNotFound(ModelyardError):
    """The log group or stream does not exist (the SDK tolerates this code)."""

    code = "ResourceNotFoundException"
    status = 400


class LogsService:
    """DescribeLogStreams and GetLogEvents over job host logs."""

    def __init__(self, controllers: Mapping[str, JobController]) -> None:
        self.controllers = dict(controllers)  # log group -> controller

    def operations(self) -> dict[str, Handler]:
        return {"DescribeLogStreams": self.describe_log_streams, "GetLogEvents": self.get_log_events}

    def describe_log_streams(self, params: dict[str, Any]) -> dict[str, Any]:
        controller = self._controller(params["logGroupName"])
        prefix = params.get("logStreamNamePrefix", "")
        streams = self._streams(controller, prefix)
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
        controller = self._controller(params["logGroupName"])
        name = params["logStreamName"]
        match = [s for s in self._streams(controller, name) if s.name == name]
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

    def _controller(self, group: str) -> JobController:
        controller = self.controllers.get(group)
        if controller is None:
            raise LogsResourceNotFound("The specified log group does not exist.")
        return controller

    def _streams(self, controller: JobController, prefix: str) -> list[Stream]:
        job = prefix.split("/", 1)[0]
        if job and "/" in prefix:
            try:
                records = [controller.store.get(controller.kind, job)]
            except RecordNotFound:
                return []
        else:
            records = controller.store.list(Query(kind=controller.kind, name_contains=job or None))
        streams = []
        for record in records:
            for s in record.state.get("_run", {}).get("streams", []):
                if s["name"].startswith(prefix):
                    created = int(s["name"].rsplit("-", 1)[-1]) * 1000
                    streams.append(Stream(s["name"], Path(s["path"]), created))
        return streams
