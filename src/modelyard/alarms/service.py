"""The CloudWatch alarm operations: PutMetricAlarm, DescribeAlarms, DeleteAlarms, SetAlarmState
and DescribeAlarmHistory. :mod:`modelyard.alarms.controller` evaluates what they store.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from modelyard.alarms import spec
from modelyard.api import pagination
from modelyard.api.cloudwatch_metrics import InvalidParameterCombination
from modelyard.core.errors import ResourceNotFound, ValidationError
from modelyard.core.settings import Settings
from modelyard.store.base import DuplicateRecord, MetadataStore, Query, Record, RecordNotFound
from modelyard.store.mutate import mutate

Handler = Callable[[dict[str, Any]], dict[str, Any]]

_PAGE = {"default_max": 50, "max_max": 100, "limit_key": "MaxRecords"}


class InvalidFormat(ValidationError):
    """A value is not in the format CloudWatch requires (StateReasonData must be JSON)."""

    code = "InvalidFormatFault"


class AlarmService:
    """Stores metric alarms; the alarm controller evaluates them."""

    def __init__(self, settings: Settings, store: MetadataStore, wake: Callable[[], None],
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.wake = wake
        self.clock = clock

    def operations(self) -> dict[str, Handler]:
        return {
            "PutMetricAlarm": self.put_metric_alarm,
            "DescribeAlarms": self.describe_alarms,
            "DeleteAlarms": self.delete_alarms,
            "SetAlarmState": self.set_alarm_state,
            "DescribeAlarmHistory": self.describe_alarm_history,
        }

    def put_metric_alarm(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["AlarmName"]
        config = spec.alarm_config(params)
        now = self.clock()
        try:
            self.store.create(self._new_record(name, config, now))
        except DuplicateRecord:
            # an update replaces the configuration and keeps the state, as in CloudWatch
            def update(state: dict[str, Any]) -> dict[str, Any]:
                history = [*state.get("history", []), _configuration_item(name, "updated", now)]
                return {**state, "config": config, "AlarmConfigurationUpdatedTimestamp": now,
                        "LastModifiedTime": now, "history": history[-spec.HISTORY_LIMIT:]}

            mutate(self.store, spec.KIND, name, update, status_key="StateValue")
        self.wake()
        return {}

    def describe_alarms(self, params: dict[str, Any]) -> dict[str, Any]:
        names, prefix = params.get("AlarmNames"), params.get("AlarmNamePrefix")
        if names and prefix:
            raise InvalidParameterCombination("AlarmNames and AlarmNamePrefix cannot be used together.")
        offset, limit = pagination.page_window(params, **_PAGE)  # type: ignore[arg-type]
        types = params.get("AlarmTypes") or ["MetricAlarm"]
        composite = params.get("ChildrenOfAlarmName") or params.get("ParentsOfAlarmName")
        records = [] if "MetricAlarm" not in types or composite else self._matching(params)
        out: dict[str, Any] = {"MetricAlarms": [_describe(r) for r in records[offset:offset + limit]]}
        if "CompositeAlarm" in types:
            out["CompositeAlarms"] = []  # modelyard has no composite alarms
        if offset + limit < len(records):
            out["NextToken"] = pagination.next_token(params, offset + limit, limit_key="MaxRecords")
        return out

    def delete_alarms(self, params: dict[str, Any]) -> dict[str, Any]:
        names = params["AlarmNames"]
        for name in names:  # all or nothing, as CloudWatch does
            self._get(name)
        for name in names:
            try:
                self.store.delete(spec.KIND, name)
            except RecordNotFound:
                pass  # deleted meanwhile
        return {}

    def set_alarm_state(self, params: dict[str, Any]) -> dict[str, Any]:
        name, value = params["AlarmName"], params["StateValue"]
        data = params.get("StateReasonData")
        if data is not None:
            try:
                json.loads(data)
            except ValueError as e:
                raise InvalidFormat("StateReasonData must be a JSON document.") from e
        self._get(name)
        now = self.clock()
        mutate(self.store, spec.KIND, name,
               lambda state: spec.transition(state, value, params["StateReason"], data, now),
               status_key="StateValue")
        return {}

    def describe_alarm_history(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("AlarmContributorId"):
            raise ValidationError("AlarmContributorId: contributor alarms are not supported by modelyard.")
        types = params.get("AlarmTypes") or ["MetricAlarm"]
        name = params.get("AlarmName")
        records = [] if "MetricAlarm" not in types else (
            [self._get(name)] if name else self.store.list(Query(kind=spec.KIND, sort_by="name")))
        start, end = params.get("StartDate", float("-inf")), params.get("EndDate", float("inf"))
        wanted = params.get("HistoryItemType")
        items = [
            {"AlarmName": r.name, "AlarmType": "MetricAlarm", **item}
            for r in records for item in r.state.get("history", [])
            if start <= item["Timestamp"] <= end and wanted in (None, item["HistoryItemType"])
        ]
        items.sort(key=lambda i: i["Timestamp"],
                   reverse=params.get("ScanBy", "TimestampDescending") == "TimestampDescending")
        offset, limit = pagination.page_window(params, **_PAGE)  # type: ignore[arg-type]
        out: dict[str, Any] = {"AlarmHistoryItems": items[offset:offset + limit]}
        if offset + limit < len(items):
            out["NextToken"] = pagination.next_token(params, offset + limit, limit_key="MaxRecords")
        return out

    # --- helpers -------------------------------------------------------------------------
    def _new_record(self, name: str, config: dict[str, Any], now: float) -> Record:
        state = {
            "config": config,
            "StateValue": "INSUFFICIENT_DATA",
            "StateReason": "Unchecked: Initial alarm creation",
            "StateUpdatedTimestamp": now,
            "StateTransitionedTimestamp": now,
            "AlarmConfigurationUpdatedTimestamp": now,
            "LastModifiedTime": now,
            "history": [_configuration_item(name, "created", now)],
        }
        arn = spec.alarm_arn(self.settings.region, self.settings.account_id, name)
        return Record(kind=spec.KIND, name=name, arn=arn, status="INSUFFICIENT_DATA", created=now,
                      modified=now, version=1, spec={}, state=state)

    def _get(self, name: str) -> Record:
        try:
            return self.store.get(spec.KIND, name)
        except RecordNotFound as e:
            raise ResourceNotFound("Alarm", name) from e

    def _matching(self, params: dict[str, Any]) -> list[Record]:
        value = params.get("StateValue")
        records = self.store.list(Query(kind=spec.KIND, status_in=[value] if value else None,
                                        sort_by="name"))
        names, prefix = params.get("AlarmNames"), params.get("AlarmNamePrefix")
        action = params.get("ActionPrefix")
        return [
            r for r in records
            if (not names or r.name in names) and (not prefix or r.name.startswith(prefix))
            and (not action or any(a.startswith(action) for a in _actions(r)))
        ]


def _actions(record: Record) -> list[str]:
    config = record.state["config"]
    return [*config["OKActions"], *config["AlarmActions"], *config["InsufficientDataActions"]]


def _configuration_item(name: str, verb: str, now: float) -> dict[str, Any]:
    return {"Timestamp": now, "HistoryItemType": "ConfigurationUpdate",
            "HistorySummary": f'Alarm "{name}" {verb}', "HistoryData": "{}"}


def _describe(record: Record) -> dict[str, Any]:
    """A MetricAlarms entry of DescribeAlarms."""
    state = record.state
    return {
        "AlarmName": record.name,
        "AlarmArn": record.arn,
        **state["config"],
        "AlarmConfigurationUpdatedTimestamp": state["AlarmConfigurationUpdatedTimestamp"],
        "StateValue": state["StateValue"],
        "StateReason": state["StateReason"],
        "StateReasonData": state.get("StateReasonData"),
        "StateUpdatedTimestamp": state["StateUpdatedTimestamp"],
        "StateTransitionedTimestamp": state["StateTransitionedTimestamp"],
    }
