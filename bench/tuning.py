"""A modelyard tuning job against an in-process Optuna loop running the same XGBoost training.

Both sides tune the same four hyperparameters of the same XGBoost training (binary
classification on synthetic data, ``--rounds`` boosting rounds, one thread per trial) with the
same sampler (TPE, the same number of random startup trials, the same seed) and the same
parallelism:

- **modelyard**: one server on 127.0.0.1 (``tests/support/server.py``) and a
  ``HyperparameterTuner`` over the built-in XGBoost algorithm (``Strategy=Bayesian``); every
  trial is a training job (a job process, the ``/opt/ml`` layout, CSV channels, log metrics,
  model upload). Time is the server's record: CreationTime → HyperParameterTuningEndTime.
  One plain training job runs first, unrecorded, so that bytecode caches are warm.
- **in-process**: ``optuna.create_study(...).optimize(objective, n_jobs=parallel)`` where the
  objective calls ``xgboost.train`` on data loaded once. This is the floor: no isolation, no
  process start, no data loading per trial.

Reported: the wall-time ratio; the orchestration overhead per trial,
``(modelyard − in-process) × parallel / trials``; the median gap between a trial's slot freeing
and the next trial's training job being created (the tuning controller's own latency); and the
best objective each side reached. A final check trains the modelyard best trial's
hyperparameters in-process and compares the AUC, to show both sides run the same training.

Usage::

    .venv/bin/python bench/tuning.py --trials 40 --parallel 2 --out bench/results/tuning.json

Timing is measured, never asserted; this file is not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # the server harness lives in the test tree
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import optuna  # noqa: E402
import xgboost  # noqa: E402
from training_overhead import bytecode_env, environment_info  # noqa: E402

import modelyard  # noqa: E402
from modelyard.tuning.strategies import startup_trials  # noqa: E402
from tests.support.server import start_server  # noqa: E402

OBJECTIVE = "validation:auc"
STATIC = {"objective": "binary:logistic", "eval_metric": "auc", "nthread": "1"}
RANGES = {
    "eta": ("continuous", 0.01, 0.5, "Logarithmic"),
    "max_depth": ("integer", 2, 8, "Linear"),
    "min_child_weight": ("continuous", 1.0, 10.0, "Linear"),
    "subsample": ("continuous", 0.5, 1.0, "Linear"),
}


def make_data(rows: int, features: int, seed: int, folder: Path) -> dict[str, Path]:
    """Synthetic binary classification, label first, as CSV files for the two channels."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    logits = x[:, 0] - 0.8 * x[:, 1] + 0.5 * x[:, 2] * x[:, 3] + rng.normal(scale=0.8, size=rows)
    y = (logits > 0).astype(float)
    data = np.column_stack([y, x])
    cut = int(rows * 0.75)
    paths = {}
    for channel, part in (("train", data[:cut]), ("validation", data[cut:])):
        path = folder / channel / f"{channel}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savetxt(path, part, delimiter=",", fmt="%.6f")
        paths[channel] = path
    return paths


def train_auc(params: dict[str, Any], rounds: int, dtrain: Any, dvalid: Any) -> float:
    """The validation AUC after ``rounds`` rounds: what one trial computes."""
    booster_params = {**STATIC, **params}
    booster_params["nthread"] = int(booster_params["nthread"])
    log: dict[str, Any] = {}
    xgboost.train(booster_params, dtrain, num_boost_round=rounds, evals=[(dvalid, "validation")],
                  evals_result=log, verbose_eval=False)
    return float(log["validation"]["auc"][-1])


def run_in_process(args: argparse.Namespace, paths: dict[str, Path]) -> dict[str, Any]:
    """The floor: the same search with Optuna in this process."""
    dtrain = xgboost.DMatrix(str(paths["train"]) + "?format=csv&label_column=0")
    dvalid = xgboost.DMatrix(str(paths["validation"]) + "?format=csv&label_column=0")
    durations: list[float] = []
    lock = threading.Lock()

    def objective(trial: optuna.Trial) -> float:
        start = time.perf_counter()
        params = {
            "eta": trial.suggest_float("eta", 0.01, 0.5, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, 8),
            "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 10.0),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        }
        value = train_auc(params, args.rounds, dtrain, dvalid)
        with lock:
            durations.append(time.perf_counter() - start)
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=args.seed, n_startup_trials=startup_trials(args.trials))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    start = time.perf_counter()
    study.optimize(objective, n_trials=args.trials, n_jobs=args.parallel)
    wall = time.perf_counter() - start
    return {"wall_s": wall, "best": study.best_value, "trial_median_s": statistics.median(durations),
            "dtrain": dtrain, "dvalid": dvalid}


def run_modelyard(args: argparse.Namespace, paths: dict[str, Path], home: Path, env: dict[str, str]) -> dict[str, Any]:
    """The same search as a modelyard tuning job, timed by the server's own record."""
    # two trials side by side need room for two ml.m5.large hosts, whatever this machine has
    server = start_server(home, {**env, "MODELYARD_CPUS": str(max(2 * args.parallel, os.cpu_count() or 1)),
                                 "MODELYARD_MEMORY_GIB": "64"})
    try:
        session = modelyard.Session(endpoint_url=server.url, home=home)
        estimator = modelyard.Estimator(framework="xgboost", hyperparameters={**STATIC, "num_round": args.rounds},
                                        session=session, content_type="text/csv")
        inputs = {"train": str(paths["train"]), "validation": str(paths["validation"])}
        # one plain job first: bytecode caches fill, as on an installed platform
        estimator.fit(inputs, logs=False)
        ranges = {name: _parameter(*spec) for name, spec in RANGES.items()}
        tuner = modelyard.HyperparameterTuner(
            estimator, OBJECTIVE, ranges, strategy="Bayesian", max_jobs=args.trials,
            max_parallel_jobs=args.parallel, random_seed=args.seed, base_tuning_job_name="bench",
        )
        tuner.fit(inputs, wait=False)
        while (job := tuner.describe())["HyperParameterTuningJobStatus"] in ("InProgress", "Stopping"):
            time.sleep(0.2)
        if job["HyperParameterTuningJobStatus"] != "Completed":
            raise RuntimeError(f"the tuning job ended {job['HyperParameterTuningJobStatus']}: "
                               f"{job.get('FailureReason')}")
        trials = tuner.analytics().training_job_summaries()
        children = [session.sagemaker.describe_training_job(TrainingJobName=t["TrainingJobName"])
                    for t in trials]
    finally:
        server.stop()
    wall = (job["HyperParameterTuningEndTime"] - job["CreationTime"]).total_seconds()
    best = job["BestTrainingJob"]
    return {
        "wall_s": wall,
        "best": best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
        "best_params": best["TunedHyperParameters"],
        "trial_median_s": statistics.median(
            (c["TrainingEndTime"] - c["CreationTime"]).total_seconds() for c in children),
        "slot_gap_median_s": _slot_gap(children, args.parallel),
        "statuses": sorted({c["TrainingJobStatus"] for c in children}),
        "trials": len(children),
    }


def _slot_gap(children: list[dict[str, Any]], parallel: int) -> float | None:
    """Median time from a slot freeing (a trial ending) to the next trial's job being created."""
    created = sorted(c["CreationTime"] for c in children)
    ended = sorted(c["TrainingEndTime"] for c in children)
    gaps = [(created[k] - ended[k - parallel]).total_seconds() for k in range(parallel, len(created))]
    return statistics.median(gaps) if gaps else None


def _parameter(kind: str, low: float, high: float, scaling: str) -> Any:
    if kind == "integer":
        return modelyard.IntegerParameter(int(low), int(high), scaling)
    return modelyard.ContinuousParameter(low, high, scaling)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=40, help="trials on each side (default 40)")
    parser.add_argument("--parallel", type=int, default=2, help="trials at once (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    parser.add_argument("--rounds", type=int, default=20, help="boosting rounds per trial (default 20)")
    parser.add_argument("--rows", type=int, default=4000, help="rows of synthetic data (default 4000)")
    parser.add_argument("--bytecode", choices=("cached", "inherit"), default="cached",
                        help="as in training_overhead.py (default cached)")
    parser.add_argument("--out", type=Path, help="write the JSON results here")
    args = parser.parse_args(argv)
    before = environment_info()
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-tuning-") as tmp:
        scratch = Path(tmp)
        paths = make_data(args.rows, 10, args.seed, scratch / "data")
        floor = run_in_process(args, paths)
        ours = run_modelyard(args, paths, scratch / "home", bytecode_env(args.bytecode, scratch))
    check = train_auc({k: _number(v) for k, v in ours["best_params"].items()}, args.rounds,
                      floor.pop("dtrain"), floor.pop("dvalid"))
    summary = {
        "trials": args.trials, "parallel": args.parallel,
        "modelyard_wall_s": ours["wall_s"], "in_process_wall_s": floor["wall_s"],
        "wall_ratio": ours["wall_s"] / floor["wall_s"],
        "overhead_per_trial_s": (ours["wall_s"] - floor["wall_s"]) * args.parallel / args.trials,
        "slot_gap_median_s": ours["slot_gap_median_s"],
        "trial_median_s": {"modelyard": ours["trial_median_s"], "in_process": floor["trial_median_s"]},
        "best_objective": {"modelyard": ours["best"], "in_process": floor["best"]},
        "same_training_check": {"modelyard_best_reported": ours["best"], "in_process_retrained": check},
        "trial_statuses": ours["statuses"],
    }
    print(markdown(summary))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        environment = before | {"loadavg_1m_after": os.getloadavg()[0]}
        results = {"settings": vars(args) | {"out": str(args.out)}, "environment": environment,
                   "summary": summary}
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _number(text: str) -> float | int:
    return int(text) if text.lstrip("-").isdigit() else float(text)


def markdown(s: dict[str, Any]) -> str:
    """The summary as the table docs/benchmarks.md shows."""
    gap = s["slot_gap_median_s"]
    rows = [
        ("wall time, modelyard (server record)", f"{s['modelyard_wall_s']:.2f} s"),
        ("wall time, in-process Optuna", f"{s['in_process_wall_s']:.2f} s"),
        ("ratio", f"{s['wall_ratio']:.2f}x"),
        ("orchestration overhead per trial", f"{s['overhead_per_trial_s'] * 1000:.0f} ms"),
        ("slot freed -> next trial created (median)", "n/a" if gap is None else f"{gap * 1000:.0f} ms"),
        ("trial median, modelyard / in-process",
         f"{s['trial_median_s']['modelyard'] * 1000:.0f} / {s['trial_median_s']['in_process'] * 1000:.0f} ms"),
        ("best validation:auc, modelyard / in-process",
         f"{s['best_objective']['modelyard']:.4f} / {s['best_objective']['in_process']:.4f}"),
        ("best trial retrained in-process", f"{s['same_training_check']['in_process_retrained']:.4f}"),
    ]
    lines = [f"| {s['trials']} trials, parallelism {s['parallel']} | value |", "|---|---:|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
