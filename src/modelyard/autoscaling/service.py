"""The Application Auto Scaling operations (awsJson 1.1, ``AnyScaleFrontendService.<Op>``) for
SageMaker endpoint variants. :mod:`modelyard.autoscaling.controller` acts on what they store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from modelyard.api import pagination
from modelyard.autoscaling import spec
from modelyard.core.errors import ValidationError
from modelyard.core.settings import Settings
from modelyard.serving import spec as serving_spec
from modelyard.store.base import DuplicateRecord, MetadataStore, Query, Record, RecordNotFound
from modelyard.store.mutate import mutate

Handler = Callable[[dict[str, Any]], dict[str, Any]]

_ROLE = ("arn:aws:iam::{account}:role/aws-service-role/sagemaker.application-autoscaling."
         "amazonaws.com/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint")
_SUSPENDED = ("DynamicScalingInSuspended", "DynamicScalingOutSuspended", "ScheduledScalingSuspended")


class AutoScalingService:
    """Scalable targets, target tracking policies and scaling activities."""

    def __init__(self, settings: Settings, store: MetadataStore, wake: Callable[[], None],
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.wake = wake
        self.clock = clock

    def operations(self) -> dict[str, Handler]:
        return {
            "RegisterScalableTarget": self.register,
            "DescribeScalableTargets": self.describe_targets,
            "DeregisterScalableTarget": self.deregister,
            "PutScalingPolicy": self.put_policy,
            "DescribeScalingPolicies": self.describe_policies,
            "DeleteScalingPolicy": self.delete_policy,
            "DescribeScalingActivities": self.describe_activities,
        }

    # --- targets -------------------------------------------------------------------------
    def register(self, params: dict[str, Any]) -> dict[str, Any]:
        spec.check_dimension(params)
        resource = params["ResourceId"]
        self._check_variant(resource)
        changes: dict[str, Any] = {k: params[k] for k in ("MinCapacity", "MaxCapacity", "RoleARN") if k in params}
        if "SuspendedState" in params:
            changes["SuspendedState"] = {k: bool(params["SuspendedState"].get(k, False)) for k in _SUSPENDED}
        try:
            record = None if self._exists(resource) else self._create(resource, changes)
        except DuplicateRecord:  # registered meanwhile
            record = None
        if record is None:  # registering again changes only what the call names
            record = mutate(self.store, spec.TARGET, resource,
                            lambda state: _checked({**state, **changes, "LastModifiedTime": self.clock()}))
        self.wake()
        return {"ScalableTargetARN": record.arn}

    def describe_targets(self, params: dict[str, Any]) -> dict[str, Any]:
        records = self._targets(params, params.get("ResourceIds"))
        offset, limit = pagination.page_window(params, default_max=50, max_max=50)
        out: dict[str, Any] = {"ScalableTargets": [self._describe_target(r) for r in records[offset:offset + limit]]}
        if offset + limit < len(records):
            out["NextToken"] = pagination.next_token(params, offset + limit)
        return out

    def deregister(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._target(params)
        self.store.delete(spec.TARGET, record.name)
        return {}

    # --- policies ------------------------------------------------------------------------
    def put_policy(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._target(params)
        name = params["PolicyName"]
        config = spec.tracking_config(params)
        arn = spec.policy_arn(self.settings.region, self.settings.account_id, record.name, name)
        now = self.clock()

        def put(state: dict[str, Any]) -> dict[str, Any]:
            policies = dict(state.get("policies", {}))
            created = policies.get(name, {}).get("CreationTime", now)
            # a changed policy judges afresh: only datapoints after this call count
            policies[name] = {"PolicyARN": arn, "config": config, "CreationTime": created, "since": now}
            return {**state, "policies": policies, "LastModifiedTime": now}

        mutate(self.store, spec.TARGET, record.name, put)
        self.wake()
        return {"PolicyARN": arn, "Alarms": []}

    def describe_policies(self, params: dict[str, Any]) -> dict[str, Any]:
        resource = params.get("ResourceId")
        names = params.get("PolicyNames")
        policies = [
            _describe_policy(r.name, name, policy)
            for r in self._targets(params, [resource] if resource else None)
            for name, policy in sorted(r.state.get("policies", {}).items())
            if not names or name in names
        ]
        offset, limit = pagination.page_window(params, default_max=50, max_max=50)
        out: dict[str, Any] = {"ScalingPolicies": policies[offset:offset + limit]}
        if offset + limit < len(policies):
            out["NextToken"] = pagination.next_token(params, offset + limit)
        return out

    def delete_policy(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["PolicyName"]
        try:
            record = self._target(params)
        except spec.ObjectNotFound:
            record = None
        if record is None or name not in record.state.get("policies", {}):
            raise spec.ObjectNotFound(
                f"No scaling policy found for service namespace: {params['ServiceNamespace']}, "
                f"resource ID: {params['ResourceId']}, scalable dimension: "
                f"{params['ScalableDimension']}, policy name: {name}"
            )

        def drop(state: dict[str, Any]) -> dict[str, Any]:
            policies = {k: v for k, v in state.get("policies", {}).items() if k != name}
            return {**state, "policies": policies, "LastModifiedTime": self.clock()}

        mutate(self.store, spec.TARGET, record.name, drop)
        return {}

    def describe_activities(self, params: dict[str, Any]) -> dict[str, Any]:
        resource = params.get("ResourceId")
        activities = sorted(
            (_public(a) for r in self._targets(params, [resource] if resource else None)
             for a in r.state.get("activities", [])),
            key=lambda a: a["StartTime"], reverse=True,
        )
        offset, limit = pagination.page_window(params, default_max=50, max_max=50)
        out: dict[str, Any] = {"ScalingActivities": activities[offset:offset + limit]}
        if offset + limit < len(activities):
            out["NextToken"] = pagination.next_token(params, offset + limit)
        return out

    # --- helpers -------------------------------------------------------------------------
    def _create(self, resource: str, changes: dict[str, Any]) -> Record:
        now = self.clock()
        if "MinCapacity" not in changes or "MaxCapacity" not in changes:
            raise ValidationError("MinCapacity and MaxCapacity are required to register a new "
                                  "scalable target.")
        state = _checked({
            "Status": "Registered", "RoleARN": _ROLE.format(account=self.settings.account_id),
            "SuspendedState": dict.fromkeys(_SUSPENDED, False), "policies": {}, "activities": [],
            "LastModifiedTime": now, **changes,
        })
        arn = spec.target_arn(self.settings.region, self.settings.account_id, resource)
        record = Record(kind=spec.TARGET, name=resource, arn=arn, status="Registered",
                        created=now, modified=now, version=1, spec={}, state=state)
        return self.store.create(record)

    def _exists(self, resource: str) -> bool:
        try:
            self.store.get(spec.TARGET, resource)
        except RecordNotFound:
            return False
        return True

    def _check_variant(self, resource: str) -> None:
        endpoint, variant = spec.parse_resource_id(resource)
        try:
            record = self.store.get(serving_spec.ENDPOINT, endpoint)
        except RecordNotFound as e:
            raise ValidationError(f"The endpoint {endpoint} does not exist.") from e
        if variant not in record.state.get("target", {}).get("variants", {}):
            raise ValidationError(f"The variant {variant} does not exist in endpoint {endpoint}.")

    def _target(self, params: dict[str, Any]) -> Record:
        spec.check_dimension(params)
        try:
            return self.store.get(spec.TARGET, params["ResourceId"])
        except RecordNotFound as e:
            raise spec.ObjectNotFound(
                f"No scalable target registered for service namespace: {params['ServiceNamespace']}, "
                f"resource ID: {params['ResourceId']}, scalable dimension: {params['ScalableDimension']}"
            ) from e

    def _targets(self, params: dict[str, Any], resources: Iterable[str] | None) -> list[Record]:
        """The targets a Describe call selects; none outside the namespace modelyard scales."""
        if params["ServiceNamespace"] != spec.SERVICE_NAMESPACE:
            return []
        if params.get("ScalableDimension", spec.DIMENSION) != spec.DIMENSION:
            return []
        records = self.store.list(Query(kind=spec.TARGET, sort_by="name"))
        wanted = set(resources) if resources else None
        return [r for r in records if wanted is None or r.name in wanted]

    def _describe_target(self, record: Record) -> dict[str, Any]:
        state = record.state
        return {
            "ServiceNamespace": spec.SERVICE_NAMESPACE, "ResourceId": record.name,
            "ScalableDimension": spec.DIMENSION, "MinCapacity": state["MinCapacity"],
            "MaxCapacity": state["MaxCapacity"], "RoleARN": state["RoleARN"],
            "CreationTime": record.created, "SuspendedState": state["SuspendedState"],
            "ScalableTargetARN": record.arn,
        }


def _checked(state: dict[str, Any]) -> dict[str, Any]:
    if not 0 <= state["MinCapacity"] <= state["MaxCapacity"]:
        raise ValidationError("Minimum capacity cannot be greater than maximum capacity.")
    if state["MinCapacity"] < 1:
        raise ValidationError("MinCapacity must be at least 1 for a SageMaker variant "
                              "(modelyard does not scale instance-based variants to zero).")
    return state


def _describe_policy(resource: str, name: str, policy: dict[str, Any]) -> dict[str, Any]:
    return {
        "PolicyARN": policy["PolicyARN"], "PolicyName": name,
        "ServiceNamespace": spec.SERVICE_NAMESPACE, "ResourceId": resource,
        "ScalableDimension": spec.DIMENSION, "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": policy["config"], "Alarms": [],
        "CreationTime": policy["CreationTime"],
    }


def _public(activity: dict[str, Any]) -> dict[str, Any]:
    """An activity without the controller's own bookkeeping members."""
    return {k: v for k, v in activity.items() if k[0].isupper()}
