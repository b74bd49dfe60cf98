"""Hyperparameter tuning jobs on a live server, driven through boto3, the SDK and the CLI."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

import modelyard
from tests.integration.conftest import ROLE, SKLEARN_IMAGE, make_sourcedir
from tests.support.server import RunningServer, start_server, wait_for_status

# Two trials side by side need room for two ml.m5.large hosts, whatever this machine has.
ROOMY = {"MODELYARD_CPUS": "8", "MODELYARD_MEMORY_GIB": "32"}
SCORE = [{"Name": "score", "Regex": r"score=([-0-9.e]+)"}]

#: a trial's objective: best at xval = 3 (and kind b); scripts must not see the tuning's own HPs
SCORE_SCRIPT = """
import argparse, os, sys, time
for hidden in ("_tuning_objective_metric", "sagemaker_estimator_class_name"):
    assert not any(hidden in arg for arg in sys.argv), sys.argv
p = argparse.ArgumentParser()
p.add_argument("--xval", type=float)
p.add_argument("--kind", default="a")
p.add_argument("--offset", type=float, default=0.0)
a, _ = p.parse_known_args()
time.sleep(float(os.environ.get("NAP", "0")))
score = -(a.xval - 3.0) ** 2 + (1.0 if a.kind == "b" else 0.0) + a.offset
print(f"score={score}", flush=True)
open(os.path.join(os.environ["SM_MODEL_DIR"], "score.txt"), "w").write(str(score))
"""

#: a learning curve: one value per epoch, approaching ``quality``
EPOCH_SCRIPT = """
import argparse, time
p = argparse.ArgumentParser()
p.add_argument("--quality", type=float)
p.add_argument("--epochs", type=int)
a, _ = p.parse_known_args()
for epoch in range(1, a.epochs + 1):
    time.sleep(0.2)
    print(f"epoch={epoch} score={a.quality * (1 - 0.5 ** epoch)}", flush=True)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("home"), ROOMY)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def sm(server: RunningServer) -> Any:
    return server.client("sagemaker")


@pytest.fixture(scope="module")
def score_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sourcedir(tmp_path_factory.mktemp("score"), SCORE_SCRIPT)


def tuning_request(
    name: str, code: Path, ranges: dict[str, Any], strategy: str = "Random",
    max_jobs: int | None = 4, parallel: int = 2, static: dict[str, str] | None = None,
    environment: dict[str, str] | None = None, **config: Any,
) -> dict[str, Any]:
    """A CreateHyperParameterTuningJob request whose trials run ``code`` in script mode."""
    limits: dict[str, Any] = {"MaxParallelTrainingJobs": parallel}
    if max_jobs is not None:
        limits["MaxNumberOfTrainingJobs"] = max_jobs
    warm = config.pop("WarmStartConfig", None)
    definition: dict[str, Any] = {
        "StaticHyperParameters": {
            "sagemaker_program": '"train.py"', "sagemaker_submit_directory": f'"{code}"',
            "sagemaker_estimator_class_name": '"Estimator"', **(static or {}),
        },
        "AlgorithmSpecification": {"TrainingImage": SKLEARN_IMAGE, "TrainingInputMode": "File",
                                   "MetricDefinitions": SCORE},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://tuning/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
    }
    if environment:
        definition["Environment"] = environment
    out: dict[str, Any] = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy,
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "score"},
            "ResourceLimits": limits,
            "ParameterRanges": ranges,
            **config,
        },
        "TrainingJobDefinition": definition,
    }
    if warm:
        out["WarmStartConfig"] = warm
    return out


XVAL = {"ContinuousParameterRanges": [{"Name": "xval", "MinValue": "0", "MaxValue": "6"}]}


def wait_tuning(sm: Any, name: str, timeout: float = 60.0) -> dict[str, Any]:
    return wait_for_status(lambda: sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name),
                           "HyperParameterTuningJobStatus", timeout, interval=0.2)


def trials(sm: Any, name: str, **kwargs: Any) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=name, **kwargs)
    return [t for page in pages for t in page["TrainingJobSummaries"]]


def value(trial: dict[str, Any]) -> float:
    return float(trial["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])


@pytest.mark.parametrize("strategy", ["Random", "Bayesian"])
def test_search_runs_trials_as_training_jobs_and_finds_the_best(
    sm: Any, score_code: Path, strategy: str,
) -> None:
    name = f"search-{strategy.lower()}"
    ranges = {**XVAL, "CategoricalParameterRanges": [{"Name": "kind", "Values": ["a", "b"]}]}
    arn = sm.create_hyper_parameter_tuning_job(
        **tuning_request(name, score_code, ranges, strategy, max_jobs=4, RandomSeed=3)
    )["HyperParameterTuningJobArn"]
    assert sm.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name)["HyperParameterTuningJobStatus"] == "InProgress"
    job = wait_tuning(sm, name)
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    assert job["TrainingJobStatusCounters"]["Completed"] == 4
    assert job["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 0}
    statics = job["TrainingJobDefinition"]["StaticHyperParameters"]
    assert statics["_tuning_objective_metric"] == "score"
    listed = trials(sm, name, SortBy="FinalObjectiveMetricValue", SortOrder="Descending")
    assert [value(t) for t in listed] == sorted((value(t) for t in listed), reverse=True)
    best = job["BestTrainingJob"]
    assert best["TrainingJobName"] == listed[0]["TrainingJobName"]
    assert value(best) == value(listed[0])
    for trial in listed:
        assert re.fullmatch(rf"{name}-00[1-4]-[0-9a-f]{{8}}", trial["TrainingJobName"])
        described = sm.describe_training_job(TrainingJobName=trial["TrainingJobName"])
        assert described["TuningJobArn"] == arn
        hps = described["HyperParameters"]
        assert hps["_tuning_objective_metric"] == "score"
        assert hps["sagemaker_estimator_class_name"] == '"Estimator"'
        assert {k: hps[k] for k in ("xval", "kind")} == trial["TunedHyperParameters"]
        # the objective is the training job's own final metric, from its log
        assert described["FinalMetricDataList"][0]["Value"] == value(trial)
        expected = -(float(hps["xval"]) - 3) ** 2 + (1.0 if hps["kind"] == "b" else 0.0)
        assert value(trial) == pytest.approx(expected)
    children = sm.list_training_jobs(NameContains=f"{name}-", MaxResults=100)["TrainingJobSummaries"]
    assert len(children) == 4  # ordinary training jobs, listed as such
    summaries = sm.list_hyper_parameter_tuning_jobs(NameContains=name)["HyperParameterTuningJobSummaries"]
    assert [(s["HyperParameterTuningJobName"], s["Strategy"]) for s in summaries] == [(name, strategy)]


def test_grid_runs_every_combination(sm: Any, score_code: Path) -> None:
    ranges = {"IntegerParameterRanges": [{"Name": "xval", "MinValue": "2", "MaxValue": "3"}],
              "CategoricalParameterRanges": [{"Name": "kind", "Values": ["a", "b"]}]}
    sm.create_hyper_parameter_tuning_job(
        **tuning_request("grid", score_code, ranges, "Grid", max_jobs=None))
    job = wait_tuning(sm, "grid")
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    combos = sorted((t["TunedHyperParameters"]["xval"], t["TunedHyperParameters"]["kind"])
                    for t in trials(sm, "grid"))
    assert combos == sorted(itertools.product(["2", "3"], ["a", "b"]))
    assert job["BestTrainingJob"]["TunedHyperParameters"] == {"xval": "3", "kind": "b"}


def test_hyperband_stops_poor_trials_early(sm: Any, tmp_path: Path) -> None:
    code = make_sourcedir(tmp_path / "code", EPOCH_SCRIPT)
    ranges = {"ContinuousParameterRanges": [{"Name": "quality", "MinValue": "0", "MaxValue": "1"}]}
    sm.create_hyper_parameter_tuning_job(**tuning_request(
        "hyperband", code, ranges, "Hyperband", max_jobs=6, parallel=1, static={"epochs": "9"},
        RandomSeed=4,
    ))
    job = wait_tuning(sm, "hyperband", timeout=90)
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    listed = trials(sm, "hyperband")
    stopped = [t for t in listed if t["TrainingJobStatus"] == "Stopped"]
    assert stopped, [(t["TrainingJobStatus"], t["TunedHyperParameters"]) for t in listed]
    best = job["BestTrainingJob"]
    assert best["TrainingJobStatus"] == "Completed"
    for trial in stopped:
        quality = float(trial["TunedHyperParameters"]["quality"])
        assert quality < float(best["TunedHyperParameters"]["quality"])
        # it ended with the value of an epoch before the last: stopped early, objective kept
        curve = [quality * (1 - 0.5 ** epoch) for epoch in range(1, 10)]
        assert trial["ObjectiveStatus"] == "Succeeded"
        assert any(value(trial) == pytest.approx(v) for v in curve[:-1])
        described = sm.describe_training_job(TrainingJobName=trial["TrainingJobName"])
        assert described["SecondaryStatus"] == "Stopped"
    assert job["TrainingJobStatusCounters"]["Stopped"] == len(stopped)


def test_warm_start_starts_from_the_parents_results(sm: Any, score_code: Path) -> None:
    sm.create_hyper_parameter_tuning_job(
        **tuning_request("warm-parent", score_code, XVAL, max_jobs=4, RandomSeed=1))
    parent = wait_tuning(sm, "warm-parent")
    assert parent["HyperParameterTuningJobStatus"] == "Completed"
    warm = {"WarmStartType": "TransferLearning",
            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "warm-parent"}]}
    # the child's trials score 100 lower: only the parent's results can be the overall best
    sm.create_hyper_parameter_tuning_job(**tuning_request(
        "warm-child", score_code, XVAL, "Bayesian", max_jobs=2, static={"offset": "-100"},
        WarmStartConfig=warm, RandomSeed=1,
    ))
    child = wait_tuning(sm, "warm-child")
    assert child["HyperParameterTuningJobStatus"] == "Completed", child.get("FailureReason")
    assert child["WarmStartConfig"] == warm
    assert child["BestTrainingJob"]["TuningJobName"] == "warm-child"
    assert value(child["BestTrainingJob"]) < -90
    overall = child["OverallBestTrainingJob"]
    assert overall["TuningJobName"] == "warm-parent"
    assert overall["TrainingJobName"] == parent["BestTrainingJob"]["TrainingJobName"]
    assert value(overall) == value(parent["BestTrainingJob"])
    assert len(trials(sm, "warm-child")) == 2  # the parent's trials are not re-run


def test_stopping_a_tuning_job_stops_its_trials(sm: Any, score_code: Path) -> None:
    sm.create_hyper_parameter_tuning_job(**tuning_request(
        "stop-me", score_code, XVAL, max_jobs=6, environment={"NAP": "60"}))
    deadline = time.monotonic() + 30
    while True:
        running = [t for t in trials(sm, "stop-me") if t["TrainingJobStatus"] == "InProgress"]
        statuses = [sm.describe_training_job(TrainingJobName=t["TrainingJobName"])["SecondaryStatus"]
                    for t in running]
        if statuses.count("Training") == 2:
            break
        assert time.monotonic() < deadline, statuses
        time.sleep(0.2)
    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="stop-me")
    assert sm.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="stop-me")["HyperParameterTuningJobStatus"] in ("Stopping", "Stopped")
    job = wait_tuning(sm, "stop-me", timeout=40)
    assert job["HyperParameterTuningJobStatus"] == "Stopped"
    assert job["TrainingJobStatusCounters"]["Stopped"] == 2
    listed = trials(sm, "stop-me")
    assert [t["TrainingJobStatus"] for t in listed] == ["Stopped", "Stopped"]
    with pytest.raises(ClientError) as stopped_again:
        sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="stop-me")
    assert stopped_again.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(HyperParameterTuningJobName="t" * 33), "hyperParameterTuningJobName"),
        (lambda r: r["HyperParameterTuningJobConfig"].update(ParameterRanges={
            "IntegerParameterRanges": [{"Name": "xval", "MinValue": "9", "MaxValue": "1"}]}),
         "MinValue"),
        (lambda r: r["HyperParameterTuningJobConfig"].update(Strategy="Grid"), "no grid"),
        (lambda r: r["HyperParameterTuningJobConfig"]["ParameterRanges"]["ContinuousParameterRanges"][0]
         .update(ScalingType="Logarithmic"), "Logarithmic scaling needs a range above 0"),
        (lambda r: r["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
         .update(MetricName="accuracy"), "objective metric accuracy"),
    ],
)
def test_invalid_requests_are_validation_errors(sm: Any, score_code: Path, change: Any, message: str) -> None:
    request = tuning_request("invalid", score_code, json.loads(json.dumps(XVAL)))
    change(request)
    with pytest.raises(ClientError) as error:
        sm.create_hyper_parameter_tuning_job(**request)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert message in error.value.response["Error"]["Message"]


def test_missing_and_duplicate_tuning_jobs(sm: Any, score_code: Path) -> None:
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="no-such-tuning")
    sm.create_hyper_parameter_tuning_job(**tuning_request("twice", score_code, XVAL, max_jobs=1))
    with pytest.raises(sm.exceptions.ResourceInUse):
        sm.create_hyper_parameter_tuning_job(**tuning_request("twice", score_code, XVAL, max_jobs=1))
    wait_tuning(sm, "twice")
    sm.delete_hyper_parameter_tuning_job(HyperParameterTuningJobName="twice")
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="twice")


def test_a_crashed_server_resumes_tuning_without_losing_or_repeating_trials(
    tmp_path: Path, score_code: Path,
) -> None:
    server = start_server(tmp_path / "home", ROOMY)
    try:
        sm = server.client("sagemaker")
        sm.create_hyper_parameter_tuning_job(**tuning_request(
            "crash", score_code, XVAL, max_jobs=5, environment={"NAP": "1.5"}, RandomSeed=5))
        deadline = time.monotonic() + 40
        while True:  # kill it with trials done, running and still to come
            counters = sm.describe_hyper_parameter_tuning_job(
                HyperParameterTuningJobName="crash")["TrainingJobStatusCounters"]
            if counters["Completed"] >= 1 and counters["InProgress"] >= 1:
                break
            assert time.monotonic() < deadline, counters
            time.sleep(0.05)
        server.kill()
        server = start_server(tmp_path / "home", ROOMY)
        sm = server.client("sagemaker")
        job = wait_tuning(sm, "crash", timeout=60)
        assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
        assert job["TrainingJobStatusCounters"]["Completed"] == 5
        names = sorted(t["TrainingJobName"] for t in trials(sm, "crash"))
        assert [n.split("-")[1] for n in names] == ["001", "002", "003", "004", "005"]
        jobs = sm.list_training_jobs(NameContains="crash-", MaxResults=100)["TrainingJobSummaries"]
        assert sorted(j["TrainingJobName"] for j in jobs) == names
    finally:
        server.stop()


def _cli(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args, "--home", str(server.home), "--endpoint-url", server.url],
        capture_output=True, text=True, timeout=60, env=server.env,
    )


def test_sdk_tuner_and_cli(server: RunningServer, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(SCORE_SCRIPT)
    session = modelyard.Session(endpoint_url=server.url, home=server.home)
    estimator = modelyard.Estimator(entry_point="train.py", source_dir=source, framework="sklearn",
                                    hyperparameters={"offset": 1}, session=session)
    tuner = modelyard.HyperparameterTuner(
        estimator, "score",
        {"xval": modelyard.ContinuousParameter(0, 6), "kind": modelyard.CategoricalParameter(["a", "b"])},
        metric_definitions=SCORE, strategy="Random", max_jobs=3, max_parallel_jobs=2, random_seed=2,
        base_tuning_job_name="sdk",
    )
    tuner.fit()
    described = tuner.describe()
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    frame = tuner.analytics().dataframe()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 3
    assert set(frame.columns) >= {"xval", "kind", "TrainingJobName", "TrainingJobStatus",
                                  "FinalObjectiveValue", "TrainingElapsedTimeSeconds"}
    best_row = frame.loc[frame["FinalObjectiveValue"].idxmax()]
    assert tuner.best_training_job() == best_row["TrainingJobName"]
    assert best_row["FinalObjectiveValue"] == pytest.approx(
        -(best_row["xval"] - 3) ** 2 + (best_row["kind"] == "b") + 1)
    best = tuner.best_estimator()
    assert best.latest_training_job == best_row["TrainingJobName"]
    assert best.hyperparameters["kind"] == best_row["kind"]
    assert f"/{best_row['TrainingJobName']}/output/model.tar.gz" in best.model_data

    name = tuner.latest_tuning_job
    listed = _cli(server, "tuning-jobs", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert name in [j["HyperParameterTuningJobName"] for j in json.loads(listed.stdout)]
    as_json = _cli(server, "tuning-jobs", "describe", name, "-o", "json")
    assert json.loads(as_json.stdout)["BestTrainingJob"]["TrainingJobName"] == best_row["TrainingJobName"]
    table = _cli(server, "tuning-jobs", "describe", name)
    assert table.returncode == 0, table.stderr
    assert "Best training job:" in table.stdout and best_row["TrainingJobName"] in table.stdout
    stopped = _cli(server, "tuning-jobs", "stop", name)
    assert stopped.returncode == 1  # it has ended already
    assert "ValidationException" in stopped.stderr
