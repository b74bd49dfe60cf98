"""The Optuna study of a tuning job, rebuilt from the job's record whenever it is needed.

Nothing of Optuna's lives only in memory: the study is an in-memory Optuna study filled from the
record (warm-start trials first, then the job's own trials in the order they were planned), used
for one decision — which hyperparameters come next, or whether a running trial should stop — and
thrown away. Optuna's system attributes (a grid point's id, the rungs a Hyperband trial
completed) are copied back into the record, so the next rebuild sees exactly what this one did.

Trial states map as follows: a running training job is a RUNNING trial (with its objective's
values so far as intermediate values), a completed one is COMPLETE with its final objective, one
stopped early is PRUNED at the step it reached, and one without an objective is FAIL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import FrozenTrial, TrialState, create_trial

from modelyard.tuning import trials as tr
from modelyard.tuning.spec import DEFINITION_KEY, TuningPlan
from modelyard.tuning.strategies import grid_space, quiet_optuna

__all__ = ["Rebuilt", "ask", "judge", "rebuild"]

#: intermediate values of a trial, by step (1 = the first value the job reported)
Series = dict[int, float]

_STATES = {
    None: TrialState.RUNNING,
    "complete": TrialState.COMPLETE,
    "pruned": TrialState.PRUNED,
    "fail": TrialState.FAIL,
}


@dataclasses.dataclass
class Rebuilt:
    """A rebuilt study and where the job's own trials start in it."""

    study: optuna.Study
    offset: int

    def number_of(self, position: int) -> int:
        """The study's trial number of the job's trial at ``position`` (0-based) in its record."""
        return self.offset + position


def rebuild(
    plan: TuningPlan,
    entries: Sequence[tr.Entry],
    warm: Sequence[tr.Entry] = (),
    series: Callable[[tr.Entry], Series | None] = lambda entry: None,
) -> Rebuilt:
    """An in-memory study holding the warm-start trials and then ``entries``, in order.

    ``series(entry)`` gives a trial's intermediate values where a pruner needs them (running
    trials, and completed ones for the median rule); None leaves them out.
    """
    quiet_optuna()
    study = optuna.create_study(
        study_name=plan.name,
        direction="maximize" if plan.objective.maximize else "minimize",
        # replaced before every ask; a fixed one keeps create_study from seeding from the clock
        sampler=RandomSampler(seed=0),
    )
    seeded = [t for t in (_warm_trial(plan, w) for w in warm) if t is not None]
    own = [_own_trial(plan, e, series(e)) for e in entries]
    study.add_trials(seeded + own)
    return Rebuilt(study=study, offset=len(seeded))


def ask(rebuilt: Rebuilt, plan: TuningPlan, sampler: BaseSampler) -> tuple[dict[str, Any], dict[str, Any]]:
    """The next trial's params and the system attributes the sampler gave it.

    The trial stays RUNNING in the study, so a further ``ask`` on the same study knows it is
    taken (TPE's constant liar, Grid's visited points).
    """
    study = rebuilt.study
    study.sampler = sampler
    trial = study.ask()
    definition = plan.definitions[0]
    if len(plan.definitions) > 1:
        chosen = trial.suggest_categorical(DEFINITION_KEY, [d.name for d in plan.definitions])
        definition = next(d for d in plan.definitions if d.name == chosen)
    for space in definition.spaces:
        _suggest(trial, definition.key(space), space.distribution)
    frozen = study.get_trials(deepcopy=True)[trial.number]
    return dict(frozen.params), _persisted(frozen.system_attrs)


def judge(
    rebuilt: Rebuilt, pruner: BasePruner, position: int, series: Series,
) -> tuple[int | None, dict[str, Any]]:
    """Show the pruner a running trial's new values one step at a time.

    The trial at ``position`` holds the values judged before; each later step of ``series`` is
    reported and judged in order, as if the job had been watched step by step, so a pruner's
    decision never depends on how many values arrived between two reads. Returns the step at
    which the trial should stop (None: go on) and its system attributes afterwards (Hyperband
    records there the rungs a trial passed and the value it passed them with).
    """
    study = rebuilt.study
    study.pruner = pruner
    number = rebuilt.number_of(position)
    frozen = study.get_trials(deepcopy=False)[number]
    # the trial object of a RUNNING trial, as ``study.ask`` would hand it to an objective
    trial = optuna.Trial(study, frozen._trial_id)
    stop_at = None
    for step in sorted(s for s in series if s not in frozen.intermediate_values):
        trial.report(series[step], step)
        if trial.should_prune():
            stop_at = step
            break
    after = study.get_trials(deepcopy=True)[number]
    return stop_at, _persisted(after.system_attrs)


def _own_trial(plan: TuningPlan, entry: tr.Entry, series: Series | None) -> FrozenTrial:
    outcome = tr.outcome(entry)
    state = _STATES[outcome]
    intermediate = dict(series or {})
    if outcome == "pruned" and not intermediate:
        # TPE ranks pruned trials by how far they got and their last value there
        intermediate = {max(1, int(entry.get("steps") or 1)): float(entry["objective"])}
    params = dict(entry["params"])
    attrs = dict(entry.get("attrs") or {})
    if "grid_id" in attrs:
        attrs["search_space"] = grid_space(plan)
    return create_trial(
        state=state,
        value=float(entry["objective"]) if state == TrialState.COMPLETE else None,
        params=params,
        distributions=plan.distributions(params),
        system_attrs=attrs,
        intermediate_values=intermediate,
    )


def _warm_trial(plan: TuningPlan, entry: tr.Entry) -> FrozenTrial | None:
    """A parent job's trial in this job's search space; None when none of its values fit."""
    outcome = tr.outcome(entry)
    if outcome not in ("complete", "pruned"):
        return None
    params = warm_params(plan, entry.get("definition"), entry.get("tuned") or {})
    if params is None:
        return None
    value = float(entry["objective"])
    return create_trial(
        state=_STATES[outcome],
        value=value if outcome == "complete" else None,
        params=params,
        distributions=plan.distributions(params),
        intermediate_values={} if outcome == "complete" else {max(1, int(entry.get("steps") or 1)): value},
    )


def warm_params(
    plan: TuningPlan, definition_name: str | None, tuned: Mapping[str, str]
) -> dict[str, Any] | None:
    """A parent trial's hyperparameter strings as this plan's Optuna params (those that fit)."""
    if len(plan.definitions) > 1:
        matches = [d for d in plan.definitions if d.name == definition_name]
        if not matches:
            return None
        definition = matches[0]
    else:
        definition = plan.definitions[0]
    params: dict[str, Any] = {}
    for space in definition.spaces:
        if space.name in tuned:
            value = space.value_of(tuned[space.name])
            if value is not None:
                params[definition.key(space)] = value
    if not params:
        return None
    if definition.keyed:
        params[DEFINITION_KEY] = definition.name
    return params


def _suggest(trial: optuna.Trial, key: str, distribution: BaseDistribution) -> Any:
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(key, list(distribution.choices))
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(key, distribution.low, distribution.high, log=distribution.log)
    assert isinstance(distribution, FloatDistribution)
    return trial.suggest_float(key, distribution.low, distribution.high, log=distribution.log)


def _persisted(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The system attributes worth keeping in the record, as JSON stores them.

    Grid's ``search_space`` is the plan's own grid (put back on rebuild), and TPE's
    ``tpe:relative_params`` repeat a running trial's params; both would only bloat the record.
    """
    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        return value
    return {
        str(k): plain(v) for k, v in attrs.items()
        if k != "search_space" and not str(k).startswith("tpe:")
    }
