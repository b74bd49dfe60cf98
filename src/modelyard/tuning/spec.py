"""What a tuning job is: the rules of a CreateHyperParameterTuningJob request, and its plan.

botocore's service model already checked types, lengths, patterns and enums (a name of more than
32 characters never gets here). These are the rules that span fields: ranges against their
scaling, Grid against continuous ranges, an objective that some MetricDefinition reports,
Hyperband's resource, and a trial request that CreateTrainingJob itself would accept.

:func:`plan_of` turns a stored spec into a :class:`TuningPlan`, the typed view the controller
works from; :func:`validate_create` builds one too, so a request that passes can always be run.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelyard.api.models import operation
from modelyard.api.validation import validate_input
from modelyard.artifacts.uris import join_uri
from modelyard.core.errors import ValidationError
from modelyard.training import spec as training_spec
from modelyard.tuning.ranges import ParameterSpace, grid_size, parameter_spaces

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution, CategoricalDistribution

KIND = "HyperParameterTuningJob"
ARN_TYPE = "hyper-parameter-tuning-job"
#: the Optuna parameter that picks one of several TrainingJobDefinitions
DEFINITION_KEY = "__definition__"
#: static hyperparameters Hyperband reads its MaxResource from, as SageMaker does
EPOCH_KEYS = ("epochs", "numepochs", "n-epochs", "n_epochs", "num_epochs")
OBJECTIVE_HP = "_tuning_objective_metric"

# Fields of a HyperParameterTrainingJobDefinition that are not CreateTrainingJob fields.
_TUNING_FIELDS = frozenset({
    "DefinitionName", "TuningObjective", "HyperParameterRanges", "StaticHyperParameters",
    "HyperParameterTuningResourceConfig",
})


@dataclasses.dataclass(frozen=True)
class Objective:
    """``HyperParameterTuningJobObjective``: which metric, and which way is better."""

    type: str
    metric: str

    @property
    def maximize(self) -> bool:
        return self.type == "Maximize"

    def better(self, a: float, b: float) -> bool:
        """Whether objective value ``a`` beats ``b``."""
        return a > b if self.maximize else a < b


@dataclasses.dataclass(frozen=True)
class Definition:
    """One training job definition: what every trial of it shares, and what is tuned."""

    name: str | None
    training: Mapping[str, Any]
    static: Mapping[str, str]
    objective: Objective
    spaces: tuple[ParameterSpace, ...]
    keyed: bool

    def key(self, space: ParameterSpace) -> str:
        """The Optuna parameter name of ``space``: namespaced when there are several definitions."""
        return f"{self.name}:{space.name}" if self.keyed else space.name

    def tuned(self, params: Mapping[str, Any]) -> dict[str, str]:
        """The tuned hyperparameters (``TunedHyperParameters``) of a trial's Optuna params."""
        return {s.name: s.hyperparameter(params[self.key(s)]) for s in self.spaces if self.key(s) in params}

    def request(self, child: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """The CreateTrainingJob request of one trial."""
        request = {k: _copy(v) for k, v in self.training.items()}
        request["TrainingJobName"] = child
        request["HyperParameters"] = {**self.static, **self.tuned(params)}
        checkpoint = request.get("CheckpointConfig")
        if checkpoint:
            # trials must not resume from each other's checkpoints
            checkpoint["S3Uri"] = join_uri(checkpoint["S3Uri"], child)
        return request


@dataclasses.dataclass(frozen=True)
class Completion:
    """``TuningJobCompletionCriteria``."""

    target: float | None = None
    not_improving: int | None = None
    convergence: bool = False


@dataclasses.dataclass(frozen=True)
class TuningPlan:
    """A tuning job's spec, parsed: the controller's view of what to run."""

    name: str
    strategy: str
    definitions: tuple[Definition, ...]
    max_jobs: int
    max_parallel: int
    max_runtime: float | None
    early_stopping: bool
    hyperband: tuple[int, int] | None
    completion: Completion
    random_seed: int | None

    @property
    def objective(self) -> Objective:
        """The first definition's objective; every definition shares its Type."""
        return self.definitions[0].objective

    def definition(self, params: Mapping[str, Any]) -> Definition:
        """The definition a trial's params belong to."""
        if len(self.definitions) == 1:
            return self.definitions[0]
        chosen = params[DEFINITION_KEY]
        return next(d for d in self.definitions if d.name == chosen)

    def distributions(self, params: Mapping[str, Any]) -> dict[str, BaseDistribution]:
        """The Optuna distribution of each of a trial's params."""
        out: dict[str, BaseDistribution] = {}
        if DEFINITION_KEY in params:
            out[DEFINITION_KEY] = self.definition_distribution()
        definition = self.definition(params)
        for space in definition.spaces:
            if definition.key(space) in params:
                out[definition.key(space)] = space.distribution
        return out

    def definition_distribution(self) -> CategoricalDistribution:
        from optuna.distributions import CategoricalDistribution

        return CategoricalDistribution(tuple(d.name for d in self.definitions))


def validate_create(request: Mapping[str, Any]) -> dict[str, Any]:
    """Check a CreateHyperParameterTuningJob request; return the spec to store.

    The stored spec echoes the request with ``_tuning_objective_metric`` added to each
    definition's StaticHyperParameters (DescribeHyperParameterTuningJob shows it there, and the
    SageMaker SDK's ``attach`` expects it).
    """
    config = request["HyperParameterTuningJobConfig"]
    single, several = request.get("TrainingJobDefinition"), request.get("TrainingJobDefinitions")
    if (single is None) == (several is None):
        raise ValidationError(
            "Give exactly one of TrainingJobDefinition and TrainingJobDefinitions."
        )
    if request.get("Autotune"):
        raise ValidationError("Autotune is not supported by modelyard; give a Strategy and ranges.")
    spec = {k: _copy(v) for k, v in request.items() if k not in ("Tags", "Autotune")}
    for definition in _definitions_of(spec):
        objective = definition.get("TuningObjective") or config.get("HyperParameterTuningJobObjective")
        if objective is None:
            raise ValidationError(
                "HyperParameterTuningJobConfig.HyperParameterTuningJobObjective is required "
                "(or a TuningObjective in each training job definition)."
            )
        statics = dict(definition.get("StaticHyperParameters", {}))
        statics[OBJECTIVE_HP] = objective["MetricName"]
        definition["StaticHyperParameters"] = statics
    plan = plan_of(spec)
    _validate_plan(plan, spec)
    return spec


def plan_of(spec: Mapping[str, Any]) -> TuningPlan:
    """The plan of a stored (or just validated) spec. Raises ValidationError on a broken rule."""
    config = spec["HyperParameterTuningJobConfig"]
    raw = _definitions_of(spec)
    several = "TrainingJobDefinitions" in spec
    if several and config.get("ParameterRanges"):
        raise ValidationError(
            "With TrainingJobDefinitions, give HyperParameterRanges in each definition, not "
            "HyperParameterTuningJobConfig.ParameterRanges."
        )
    definitions = tuple(_definition(d, config, several, i) for i, d in enumerate(raw))
    _check_definition_names(definitions, several)
    limits = config["ResourceLimits"]
    strategy = config["Strategy"]
    return TuningPlan(
        name=spec["HyperParameterTuningJobName"],
        strategy=strategy,
        definitions=definitions,
        max_jobs=_max_jobs(strategy, limits, definitions),
        max_parallel=int(limits["MaxParallelTrainingJobs"]),
        max_runtime=float(limits["MaxRuntimeInSeconds"]) if limits.get("MaxRuntimeInSeconds") else None,
        early_stopping=config.get("TrainingJobEarlyStoppingType", "Off") == "Auto",
        hyperband=_hyperband(config, definitions) if strategy == "Hyperband" else None,
        completion=_completion(config.get("TuningJobCompletionCriteria") or {}),
        random_seed=config.get("RandomSeed"),
    )


def child_name(tuning_name: str, created: float, number: int) -> str:
    """``<tuning>-<NNN>-<8 hex>``, as SageMaker names a tuning job's training jobs.

    The hex part is a digest of the tuning job's creation time and the trial number, so it is
    the same on every computation (a restart names the trial it had planned identically), and
    differs from the trials of an earlier tuning job of the same name.
    """
    digest = hashlib.sha256(f"{tuning_name}:{created!r}:{number}".encode()).hexdigest()[:8]
    return f"{tuning_name}-{number:03d}-{digest}"


# --- parsing ---------------------------------------------------------------------------------
def _definitions_of(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    if "TrainingJobDefinitions" in spec:
        return list(spec["TrainingJobDefinitions"])
    return [spec["TrainingJobDefinition"]]


def _definition(raw: Mapping[str, Any], config: Mapping[str, Any], keyed: bool, index: int) -> Definition:
    where = f"TrainingJobDefinitions.{index + 1}" if keyed else "TrainingJobDefinition"
    if raw.get("HyperParameterRanges") and config.get("ParameterRanges"):
        raise ValidationError(
            f"{where}.HyperParameterRanges and HyperParameterTuningJobConfig.ParameterRanges "
            "cannot both be given."
        )
    ranges = raw.get("HyperParameterRanges") or config.get("ParameterRanges")
    spaces = tuple(parameter_spaces(ranges, f"{where}.HyperParameterRanges" if keyed else "ParameterRanges"))
    if not spaces:
        raise ValidationError(f"{where}: give at least one hyperparameter range to tune.")
    objective = raw.get("TuningObjective") or config["HyperParameterTuningJobObjective"]
    static = dict(raw.get("StaticHyperParameters", {}))
    overlap = sorted(set(static) & {s.name for s in spaces})
    if overlap:
        raise ValidationError(
            f"{where}: hyperparameters {', '.join(overlap)} are both static and tuned."
        )
    return Definition(
        name=raw.get("DefinitionName"),
        training=_training_fields(raw),
        static=static,
        objective=Objective(objective["Type"], objective["MetricName"]),
        spaces=spaces,
        keyed=keyed,
    )


def _training_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    fields = {k: _copy(v) for k, v in raw.items() if k not in _TUNING_FIELDS}
    tuning_resources = raw.get("HyperParameterTuningResourceConfig")
    if "ResourceConfig" not in fields and tuning_resources:
        configs = tuning_resources.get("InstanceConfigs") or [{}]
        first = {**configs[0], **{k: v for k, v in tuning_resources.items() if k in (
            "InstanceType", "InstanceCount", "VolumeSizeInGB", "VolumeKmsKeyId")}}
        fields["ResourceConfig"] = {k: v for k, v in first.items() if k in (
            "InstanceType", "InstanceCount", "VolumeSizeInGB", "VolumeKmsKeyId")}
    if "ResourceConfig" not in fields:
        raise ValidationError(
            "A training job definition needs ResourceConfig or HyperParameterTuningResourceConfig."
        )
    return fields


def _check_definition_names(definitions: tuple[Definition, ...], several: bool) -> None:
    if not several:
        return
    names = [d.name for d in definitions]
    if any(n is None for n in names) or len(set(names)) != len(names):
        raise ValidationError(
            "Each of several TrainingJobDefinitions needs its own DefinitionName."
        )
    if len({d.objective.type for d in definitions}) > 1:
        raise ValidationError(
            "Every training job definition of one tuning job must Maximize, or every one Minimize."
        )


def _max_jobs(strategy: str, limits: Mapping[str, Any], definitions: tuple[Definition, ...]) -> int:
    given = limits.get("MaxNumberOfTrainingJobs")
    if strategy != "Grid":
        if given is None:
            raise ValidationError(
                f"ResourceLimits.MaxNumberOfTrainingJobs is required for the {strategy} strategy."
            )
        return int(given)
    if len(definitions) > 1:
        raise ValidationError("The Grid strategy takes one training job definition.")
    size = grid_size(definitions[0].spaces)
    if size > 100_000:
        raise ValidationError(f"The grid has {size} combinations; at most 100000 are allowed.")
    if given is not None and given > size:
        raise ValidationError(
            f"ResourceLimits.MaxNumberOfTrainingJobs ({given}) exceeds the number of grid "
            f"combinations ({size})."
        )
    return int(given) if given is not None else size


def _hyperband(config: Mapping[str, Any], definitions: tuple[Definition, ...]) -> tuple[int, int]:
    if config.get("TrainingJobEarlyStoppingType", "Off") != "Off":
        raise ValidationError(
            "The Hyperband strategy stops training jobs itself; TrainingJobEarlyStoppingType "
            "must be Off."
        )
    given = (config.get("StrategyConfig") or {}).get("HyperbandStrategyConfig") or {}
    low = int(given.get("MinResource", 1))
    high = given.get("MaxResource")
    if high is None:
        high = _inferred_max_resource(definitions)
    if low > high:
        raise ValidationError(
            f"HyperbandStrategyConfig: MinResource ({low}) is greater than MaxResource ({high})."
        )
    return low, int(high)


def _inferred_max_resource(definitions: tuple[Definition, ...]) -> int:
    for definition in definitions:
        for key in EPOCH_KEYS:
            if key in definition.static:
                try:
                    return int(float(definition.static[key].strip('"')))
                except ValueError:
                    break
    raise ValidationError(
        "HyperbandStrategyConfig.MaxResource is required unless a static hyperparameter "
        f"({', '.join(EPOCH_KEYS)}) gives the number of epochs."
    )


def _completion(criteria: Mapping[str, Any]) -> Completion:
    not_improving = criteria.get("BestObjectiveNotImproving") or {}
    convergence = criteria.get("ConvergenceDetected") or {}
    return Completion(
        target=criteria.get("TargetObjectiveMetricValue"),
        not_improving=not_improving.get("MaxNumberOfTrainingJobsNotImproving"),
        convergence=convergence.get("CompleteOnConvergence") == "Enabled",
    )


# --- rules across fields ---------------------------------------------------------------------
def _validate_plan(plan: TuningPlan, spec: Mapping[str, Any]) -> None:
    if plan.strategy == "Grid":
        for space in plan.definitions[0].spaces:
            space.grid_values()  # raises for a continuous range
    warm = spec.get("WarmStartConfig")
    if warm and plan.strategy == "Grid":
        raise ValidationError("The Grid strategy does not support WarmStartConfig.")
    for definition in plan.definitions:
        _validate_trial_request(plan, definition)


def _validate_trial_request(plan: TuningPlan, definition: Definition) -> None:
    """A trial request must pass CreateTrainingJob's own checks, objective metric included."""
    sample = {definition.key(s): s.sample() for s in definition.spaces}
    longest = child_name(plan.name, 0.0, max(plan.max_jobs, 1))
    request = definition.request(longest, sample)
    where = f"training job definition {definition.name}" if definition.name else "TrainingJobDefinition"
    try:
        validate_input(operation("sagemaker", "CreateTrainingJob"), request)
        training_spec.validate_create(request)
    except ValidationError as e:
        raise ValidationError(f"{where}: {e.message}") from e
    names = {d["Name"] for d in training_spec.metric_definitions(request)}
    if definition.objective.metric not in names:
        raise ValidationError(
            f"{where}: the objective metric {definition.objective.metric} is not among the "
            f"metrics of the training job (MetricDefinitions: {', '.join(sorted(names)) or 'none'})."
        )


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
