"""The lineage-entity operations of the SageMaker API: artifacts, actions and contexts.

Create, Describe, List, Update and Delete for each. Deleting an entity deletes the
associations that start or end at it. :meth:`LineageService.ensure_artifact` and friends are
what automatic recording (:mod:`modelyard.lineage.tracking`) uses: they reuse the entity the
platform recorded before for the same thing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from modelyard.api.entities import Entities, describe, filtered_page, list_query
from modelyard.core.arns import name_from_arn
from modelyard.core.errors import ResourceNotFound, ValidationError
from modelyard.core.settings import Settings
from modelyard.experiments import spec as experiments_spec
from modelyard.lineage import spec
from modelyard.store.base import MetadataStore, Query, Record

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class LineageService:
    """Artifacts, actions and contexts."""

    def __init__(self, settings: Settings, store: MetadataStore) -> None:
        self.store = store
        self.artifacts = Entities(settings, store, spec.ARTIFACT, "artifact", "Artifact")
        self.actions = Entities(settings, store, spec.ACTION, "action", "Action")
        self.contexts = Entities(settings, store, spec.CONTEXT, "context", "Context")
        self.components = Entities(settings, store, experiments_spec.TRIAL_COMPONENT,
                                   "experiment-trial-component", "Trial component")

    def operations(self) -> dict[str, Handler]:
        return {
            "CreateArtifact": self.create_artifact,
            "DescribeArtifact": self.describe_artifact,
            "ListArtifacts": self.list_artifacts,
            "UpdateArtifact": self.update_artifact,
            "DeleteArtifact": self.delete_artifact,
            "CreateAction": self.create_action,
            "DescribeAction": self.describe_action,
            "ListActions": self.list_actions,
            "UpdateAction": self.update_action,
            "DeleteAction": self.delete_action,
            "CreateContext": self.create_context,
            "DescribeContext": self.describe_context,
            "ListContexts": self.list_contexts,
            "UpdateContext": self.update_context,
            "DeleteContext": self.delete_context,
        }

    # --- artifacts -----------------------------------------------------------------------
    def create_artifact(
        self, params: dict[str, Any], artifact_id: str | None = None
    ) -> dict[str, Any]:
        state: dict[str, Any] = {
            k: params[k] for k in ("ArtifactName", "Properties") if k in params
        }
        record = self.artifacts.create(
            artifact_id or spec.new_artifact_id(), _request(params), state,
            status=params["ArtifactType"], tags=params.get("Tags"),
        )
        return {"ArtifactArn": record.arn}

    def describe_artifact(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.document(self.artifacts.get(params["ArtifactArn"]))

    def list_artifacts(self, params: dict[str, Any]) -> dict[str, Any]:
        query = list_query(spec.ARTIFACT, params)
        if params.get("ArtifactType"):
            query = _with_status(query, params["ArtifactType"])
        uri = params.get("SourceUri")
        keep = None if uri is None else (lambda r: r.spec["Source"]["SourceUri"] == uri)
        records, token = filtered_page(self.store, query, params, keep)
        return {"ArtifactSummaries": [self._summary(r, "Artifact") for r in records],
                "NextToken": token}

    def update_artifact(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.artifacts.get(params["ArtifactArn"])
        record = self.artifacts.change(record, _updater(params, ("ArtifactName",)))
        return {"ArtifactArn": record.arn}

    def delete_artifact(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("ArtifactArn"):
            record = self.artifacts.get(params["ArtifactArn"])
        elif params.get("Source"):
            record = self._artifact_by_source(params["Source"]["SourceUri"])
        else:
            raise ValidationError("DeleteArtifact needs ArtifactArn or Source.")
        self.artifacts.delete(record)
        return {"ArtifactArn": record.arn}

    def ensure_artifact(self, source_uri: str, artifact_type: str,
                        properties: Mapping[str, str] | None = None) -> Record:
        """The artifact the platform keeps for ``source_uri`` as ``artifact_type``."""
        artifact_id = spec.artifact_id_for(source_uri, artifact_type)
        found = self.artifacts.find(artifact_id)
        if found is not None:
            return found
        request: dict[str, Any] = {"Source": {"SourceUri": source_uri},
                                   "ArtifactType": artifact_type}
        if properties:
            request["Properties"] = dict(properties)
        try:
            self.create_artifact(request, artifact_id)
        except ValidationError:
            pass  # recorded meanwhile by another thread
        return self.artifacts.get(artifact_id)

    # --- actions -------------------------------------------------------------------------
    def create_action(self, params: dict[str, Any]) -> dict[str, Any]:
        state: dict[str, Any] = {k: params[k] for k in ("Description", "Properties") if k in params}
        state["Status"] = params.get("Status", "Unknown")
        record = self.actions.create(params["ActionName"], _request(params), state,
                                     status=state["Status"], tags=params.get("Tags"))
        return {"ActionArn": record.arn}

    def describe_action(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.document(self.actions.get(params["ActionName"]))

    def list_actions(self, params: dict[str, Any]) -> dict[str, Any]:
        action_type, uri = params.get("ActionType"), params.get("SourceUri")

        def keep(record: Record) -> bool:
            return (action_type is None or record.spec["ActionType"] == action_type) and \
                (uri is None or record.spec["Source"]["SourceUri"] == uri)

        records, token = filtered_page(self.store, list_query(spec.ACTION, params), params,
                                       None if action_type is None and uri is None else keep)
        return {"ActionSummaries": [self._summary(r, "Action") for r in records],
                "NextToken": token}

    def update_action(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.actions.get(params["ActionName"])
        record = self.actions.change(record, _updater(params, ("Description", "Status")),
                                     status=lambda state: str(state["Status"]))
        return {"ActionArn": record.arn}

    def delete_action(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.actions.get(params["ActionName"])
        self.actions.delete(record)
        return {"ActionArn": record.arn}

    def ensure_action(self, name: str, request: dict[str, Any]) -> Record:
        """The action ``name``, created from ``request`` (a CreateAction body) if missing."""
        found = self.actions.find(name)
        if found is not None:
            return found
        try:
            self.create_action({**request, "ActionName": name})
        except ValidationError:
            pass
        return self.actions.get(name)

    # --- contexts ------------------------------------------------------------------------
    def create_context(self, params: dict[str, Any]) -> dict[str, Any]:
        state: dict[str, Any] = {k: params[k] for k in ("Description", "Properties") if k in params}
        record = self.contexts.create(params["ContextName"], _request(params), state,
                                      status=params["ContextType"], tags=params.get("Tags"))
        return {"ContextArn": record.arn}

    def describe_context(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.document(self.contexts.get(params["ContextName"]))

    def list_contexts(self, params: dict[str, Any]) -> dict[str, Any]:
        query = list_query(spec.CONTEXT, params)
        if params.get("ContextType"):
            query = _with_status(query, params["ContextType"])
        uri = params.get("SourceUri")
        keep = None if uri is None else (lambda r: r.spec["Source"]["SourceUri"] == uri)
        records, token = filtered_page(self.store, query, params, keep)
        return {"ContextSummaries": [self._summary(r, "Context") for r in records],
                "NextToken": token}

    def update_context(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.contexts.get(params["ContextName"])
        record = self.contexts.change(record, _updater(params, ("Description",)))
        return {"ContextArn": record.arn}

    def delete_context(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.contexts.get(params["ContextName"])
        self.contexts.delete(record)
        return {"ContextArn": record.arn}

    def ensure_context(self, name: str, request: dict[str, Any]) -> Record:
        """The context ``name``, created from ``request`` (a CreateContext body) if missing."""
        found = self.contexts.find(name)
        if found is not None:
            return found
        try:
            self.create_context({**request, "ContextName": name})
        except ValidationError:
            pass
        return self.contexts.get(name)

    # --- views ---------------------------------------------------------------------------
    def document(self, record: Record) -> dict[str, Any]:
        """Describe{Artifact,Action,Context}'s answer for a record of that kind."""
        noun = spec.LINEAGE_TYPES[record.kind]
        out = describe(record)
        out.update({
            f"{noun}Arn": record.arn,
            "CreationTime": record.created,
            "LastModifiedTime": record.state.get("LastModifiedTime", record.modified),
        })
        if record.kind != spec.ARTIFACT:
            out[f"{noun}Name"] = record.name
        return out

    def _summary(self, record: Record, noun: str) -> dict[str, Any]:
        document = self.document(record)
        keys = (f"{noun}Arn", f"{noun}Name", "Source", f"{noun}Type", "Status", "CreationTime",
                "LastModifiedTime")
        return {k: document[k] for k in keys if k in document}

    def _artifact_by_source(self, uri: str) -> Record:
        query = list_query(spec.ARTIFACT, {"SortOrder": "Ascending"})
        matches = filtered_page(self.store, query, {"MaxResults": 2},
                                lambda r: r.spec["Source"]["SourceUri"] == uri)[0]
        if not matches:
            raise ResourceNotFound("Artifact with source", uri)
        if len(matches) > 1:
            raise ValidationError(
                f"Several artifacts have the source {uri}; give the ArtifactArn to delete one."
            )
        return matches[0]

    def entity(self, arn: str) -> Record:
        """The lineage entity (artifact, action, context or trial component) with ``arn``."""
        record = self.store.by_arn([arn.lower()]).get(arn.lower())
        if record is None or record.kind not in spec.LINEAGE_TYPES:
            raise ResourceNotFound("Lineage entity", name_from_arn(arn) if arn else arn)
        return record


def _request(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != "Tags"}


def _with_status(query: Query, status: str) -> Query:
    """``query`` narrowed to one type (artifacts and contexts keep their type as status)."""
    return dataclasses.replace(query, status_in=[status])


def _updater(
    params: Mapping[str, Any], fields: tuple[str, ...]
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The state change of an Update*: plain fields replaced, Properties merged."""
    def change(state: dict[str, Any]) -> dict[str, Any]:
        new = {**state, **{k: params[k] for k in fields if k in params}}
        properties = {**(state.get("Properties") or {}), **(params.get("Properties") or {})}
        for key in params.get("PropertiesToRemove") or []:
            properties.pop(key, None)
        new["Properties"] = properties
        return new
    return change
