"""SageMaker's tuning strategies as Optuna samplers and pruners.

| Strategy  | sampler                                   | pruner                                   |
| --------- | ----------------------------------------- | ---------------------------------------- |
| Bayesian  | ``TPESampler`` (random for the first few) | ``MedianPruner`` when early stopping is Auto |
| Random    | ``RandomSampler``                         | ``MedianPruner`` when early stopping is Auto |
| Grid      | ``GridSampler`` over every combination    | ``MedianPruner`` when early stopping is Auto |
| Hyperband | ``TPESampler``                            | ``HyperbandPruner(MinResource, MaxResource)`` |

A sampler is made afresh for every trial, seeded from the tuning job's seed and the trial's
number (:func:`trial_seed`), so trial *n* of two jobs with the same ``RandomSeed`` draws from the
same random stream whatever happened to the server in between. Grid is the exception: it is
seeded with the job's seed itself, because it shuffles its grid with that seed and every trial
must see the same order.
"""

from __future__ import annotations

import hashlib
from typing import Any

import optuna
from optuna.pruners import BasePruner, HyperbandPruner, MedianPruner
from optuna.samplers import BaseSampler, GridSampler, RandomSampler, TPESampler

from modelyard.tuning.ranges import grid_search_space
from modelyard.tuning.spec import TuningPlan

__all__ = [
    "HYPERBAND_REDUCTION_FACTOR", "grid_space", "make_pruner", "make_sampler", "quiet_optuna",
    "startup_trials", "trial_seed",
]

#: Hyperband keeps the best third of the trials at each rung
HYPERBAND_REDUCTION_FACTOR = 3
#: completed trials the median rule waits for before it stops anything
MEDIAN_STARTUP_TRIALS = 3
#: TPE samples at random until this many trials (at most) have finished
MAX_STARTUP_TRIALS = 10


def trial_seed(seed: int, number: int) -> int:
    """The seed of trial ``number``'s sampler: a digest of the job's seed and the number."""
    digest = hashlib.sha256(f"{seed}:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def startup_trials(max_jobs: int) -> int:
    """Random trials before TPE models the objective: a third of the budget, 2 to 10."""
    return max(2, min(MAX_STARTUP_TRIALS, max_jobs // 3))


def make_sampler(plan: TuningPlan, seed: int, number: int) -> BaseSampler:
    """The sampler that picks trial ``number``'s hyperparameters."""
    if plan.strategy == "Grid":
        return GridSampler(grid_space(plan), seed=seed)
    if plan.strategy == "Random":
        return RandomSampler(seed=trial_seed(seed, number))
    return TPESampler(seed=trial_seed(seed, number), n_startup_trials=startup_trials(plan.max_jobs))


def grid_space(plan: TuningPlan) -> dict[str, list[Any]]:
    """Every value of every tuned parameter, the search space of a Grid strategy."""
    definition = plan.definitions[0]
    return grid_search_space((definition.key(s), s) for s in definition.spaces)


def make_pruner(plan: TuningPlan) -> BasePruner | None:
    """What stops poor trials early, or None when nothing does."""
    if plan.hyperband is not None:
        low, high = plan.hyperband
        return HyperbandPruner(
            min_resource=low, max_resource=high, reduction_factor=HYPERBAND_REDUCTION_FACTOR
        )
    if plan.early_stopping:
        return MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=0)
    return None


def quiet_optuna() -> None:
    """Keep Optuna's per-trial INFO lines out of the server log (the records say it all)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
