"""What lineage entities are: artifacts, actions, contexts and the associations between them.

SageMaker's lineage graph has four kinds of vertex (``LineageType``): artifacts (a URI-addressed
object: a dataset, an image, a model), actions (something done: a model deployment), contexts
(a logical grouping: an endpoint) and trial components (a job). Each vertex also has a ``Type``:
the artifact's ``ArtifactType`` (``DataSet``, ``Image``, ``Model`` ...), the action's
``ActionType`` (``ModelDeployment``), the context's ``ContextType`` (``Endpoint``), and
``TrainingJob`` for a training job's trial component. Associations are directed edges with an
``AssociationType`` (``ContributedTo``, ``AssociatedWith``, ``DerivedFrom``, ``Produced``,
``SameAs``); they are stored as links of relation :data:`LINEAGE`.

In the store, an artifact is named by the id at the end of its ARN (``artifact/<32 hex>``); the
status column holds an artifact's or context's type and an action's status, so that lists can
filter on them without reading documents.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from modelyard.experiments import spec as experiments_spec
from modelyard.store.base import Record

ARTIFACT = "Artifact"
ACTION = "Action"
CONTEXT = "Context"

#: the link relation of lineage associations
LINEAGE = "lineage"
DEFAULT_ASSOCIATION = "AssociatedWith"

#: store kind -> LineageType
LINEAGE_TYPES = {
    ARTIFACT: "Artifact",
    ACTION: "Action",
    CONTEXT: "Context",
    experiments_spec.TRIAL_COMPONENT: "TrialComponent",
}

# The Types SageMaker gives the entities it records itself (the SDK's LineageSourceEnum).
DATASET = "DataSet"
IMAGE = "Image"
MODEL = "Model"
MODEL_DEPLOYMENT = "ModelDeployment"
ENDPOINT = "Endpoint"
TRAINING_JOB = "TrainingJob"


def new_artifact_id() -> str:
    """A fresh artifact id: 32 hex digits, as SageMaker's artifact ARNs end."""
    return uuid.uuid4().hex


def artifact_id_for(source_uri: str, artifact_type: str) -> str:
    """The id of the artifact the platform records for a URI of a type: the same URI gives the
    same artifact, so a dataset two jobs read is one vertex with two edges."""
    return hashlib.sha256(f"{artifact_type}\n{source_uri}".encode()).hexdigest()[:32]


def short_hash(*parts: str) -> str:
    """Eight hex digits identifying ``parts`` (names of recorded actions and contexts)."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:8]


def vertex_type(record: Record) -> str | None:
    """A vertex's ``Type``: the entity's own type, ``TrainingJob`` for a job's component."""
    if record.kind == ARTIFACT:
        return str(record.spec.get("ArtifactType"))
    if record.kind == ACTION:
        return str(record.spec.get("ActionType"))
    if record.kind == CONTEXT:
        return str(record.spec.get("ContextType"))
    source = record.spec.get("Source", {}).get("SourceType")
    return TRAINING_JOB if source == experiments_spec.TRAINING_JOB_SOURCE_TYPE else None


def display_name(record: Record) -> str | None:
    """The name an association summary shows for an entity (an artifact's may be absent)."""
    if record.kind == ARTIFACT:
        name = record.state.get("ArtifactName") or record.spec.get("ArtifactName")
        return str(name) if name else None
    return record.name


def properties(record: Record) -> Mapping[str, Any]:
    """An entity's ``Properties`` as they are now (trial components have none)."""
    return record.state.get("Properties") or {}
