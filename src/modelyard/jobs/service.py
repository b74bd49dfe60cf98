"""What every job kind's API shares: submit, look up, stop, list a page — written once.

A capability's service subclasses :class:`JobService`, names its kind, ARN type and the
wording SageMaker uses for a missing job, and keeps only what is its own (request rules,
describe and summary views).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from modelyard.api.listing import list_page
from modelyard.core.arns import make_arn, name_from_arn
from modelyard.core.errors import LegacyNotFound, ResourceInUse, ValidationError
from modelyard.core.settings import Settings
from modelyard.jobs import status as js
from modelyard.jobs.kernel import JobController
from modelyard.store.base import DuplicateRecord, MetadataStore, Record, RecordNotFound


class JobService:
    """The shared half of a job kind's operations."""

    #: ARN resource type, e.g. ``training-job``
    arn_type = ""
    #: as SageMaker words the kind in messages, e.g. ``training job``
    noun = ""

    def __init__(self, settings: Settings, store: MetadataStore, controller: JobController,
                 wake: Callable[[], None]) -> None:
        self.settings = settings
        self.store = store
        self.controller = controller
        self.wake = wake

    def arn(self, name: str) -> str:
        return make_arn(self.settings.region, self.settings.account_id, self.arn_type, name)

    def submit(self, name: str, spec: Mapping[str, Any], tags: list[dict[str, str]] | None) -> Record:
        """Store a new job's desired state and wake the controller. ResourceInUse if the name is taken."""
        now = time.time()
        record = Record(
            kind=self.controller.kind, name=name, arn=self.arn(name), status="InProgress",
            created=now, modified=now, version=1, spec=dict(spec), state=js.initial(now),
        )
        try:
            self.store.create(record)
        except DuplicateRecord as e:
            raise ResourceInUse(
                "Job name must be unique within an AWS account and region, and a job with this "
                f"name already exists ({record.arn})"
            ) from e
        if tags:
            self.store.set_tags(record.arn, {t["Key"]: t["Value"] for t in tags})
        self.wake()
        return record

    def get(self, name_or_arn: str) -> Record:
        name = name_from_arn(name_or_arn)
        try:
            return self.store.get(self.controller.kind, name)
        except RecordNotFound as e:
            raise LegacyNotFound(self.noun, self.arn(name), self.missing_message(name)) from e

    def missing_message(self, name: str) -> str:
        """The message a missing job gets (SageMaker's wording differs per kind)."""
        return f"Could not find requested job with name {name}"

    def stop_job(self, name_or_arn: str) -> None:
        record = self.get(name_or_arn)
        if record.status != "InProgress":
            raise ValidationError(
                f"The request was rejected because the {self.noun} is in status {record.status}."
            )
        self.controller.request_stop(record.name)
        self.wake()

    def page(self, params: dict[str, Any]) -> tuple[list[Record], str | None]:
        return list_page(self.store, self.controller.kind, params)
