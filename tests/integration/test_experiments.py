"""Experiments, trials, trial components, sagemaker-metrics and Search through boto3."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import make_sourcedir, script_job
from tests.support.server import RunningServer, wait_for_job

SCRIPT = """
import argparse, os
p = argparse.ArgumentParser()
p.add_argument("--eta", type=float)
args, _ = p.parse_known_args()
for loss in (1.0, 0.5, args.eta):
    print(f"loss={loss}", flush=True)
open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w").write("m")
"""
DEFINITIONS = [{"Name": "train:loss", "Regex": "loss=([0-9.]+)"}]
ETAS = {"track-a": "0.3", "track-b": "0.1", "track-c": "0.2"}


def code(exc: ClientError) -> str:
    return str(exc.response["Error"]["Code"])


@pytest.fixture(scope="module")
def metrics(server: RunningServer) -> Any:
    return server.client("sagemaker-metrics")


@pytest.fixture(scope="module")
def jobs(
    server: RunningServer, sm: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Three finished jobs with different eta; track-a and track-b name an experiment."""
    root = tmp_path_factory.mktemp("jobs")
    sourcedir = make_sourcedir(root / "code", SCRIPT)
    data = root / "data"
    data.mkdir()
    (data / "train.csv").write_text("1,2\n")
    created = {}
    for name, eta in ETAS.items():
        extra: dict[str, Any] = {
            "AlgorithmSpecification": {"MetricDefinitions": DEFINITIONS},
            "InputDataConfig": [{
                "ChannelName": "train" if name != "track-c" else "other",
                "ContentType": "text/csv",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"{data}/"}},
            }],
            "Tags": [{"Key": "team", "Value": "red" if name == "track-a" else "blue"}],
        }
        if name != "track-c":
            extra["ExperimentConfig"] = {"ExperimentName": "tracked", "TrialName": f"{name}-trial"}
        sm.create_training_job(**script_job(name, sourcedir, "s3://bucket/out",
                                            {"eta": eta}, **extra))
        # the component exists as soon as the job does, before it runs
        found = sm.list_trial_components(SourceArn=sm.describe_training_job(
            TrainingJobName=name)["TrainingJobArn"])["TrialComponentSummaries"]
        assert [c["TrialComponentName"] for c in found] == [f"{name}-aws-training-job"]
        created[name] = found[0]
    finished = {name: wait_for_job(sm, name, timeout=180) for name in ETAS}
    for job in finished.values():
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return {"jobs": finished, "data": f"{data}/", "first": created}


# --- experiments, trials, components ------------------------------------------------------
def test_experiment_trial_and_component_lifecycle(sm: Any) -> None:
    arn = sm.create_experiment(ExperimentName="life", Description="first")["ExperimentArn"]
    assert arn.endswith(":experiment/life")
    with pytest.raises(ClientError) as duplicate:
        sm.create_experiment(ExperimentName="LIFE")
    assert code(duplicate.value) == "ValidationException"
    assert "already exists" in str(duplicate.value)
    sm.update_experiment(ExperimentName="life", DisplayName="Life", Description="second")
    described = sm.describe_experiment(ExperimentName="life")
    assert (described["DisplayName"], described["Description"]) == ("Life", "second")
    assert described["LastModifiedTime"] >= described["CreationTime"]

    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.create_trial(TrialName="orphan", ExperimentName="no-such-experiment")
    sm.create_trial(TrialName="life-trial", ExperimentName="life")
    start = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    sm.create_trial_component(
        TrialComponentName="life-step", DisplayName="Step",
        Status={"PrimaryStatus": "InProgress", "Message": "going"}, StartTime=start,
        Parameters={"lr": {"NumberValue": 0.1}, "opt": {"StringValue": "adam"},
                    "gone": {"StringValue": "x"}},
        InputArtifacts={"data": {"Value": "s3://b/data.csv", "MediaType": "text/csv"}},
        Tags=[{"Key": "k", "Value": "v"}],
    )
    sm.update_trial_component(
        TrialComponentName="life-step", Parameters={"lr": {"NumberValue": 0.2}},
        ParametersToRemove=["gone"], OutputArtifacts={"model": {"Value": "s3://b/model"}},
        Status={"PrimaryStatus": "Completed"}, EndTime=start + dt.timedelta(minutes=1),
    )
    component = sm.describe_trial_component(TrialComponentName="life-step")
    assert component["Parameters"] == {"lr": {"NumberValue": 0.2}, "opt": {"StringValue": "adam"}}
    assert component["InputArtifacts"]["data"] == {
        "Value": "s3://b/data.csv", "MediaType": "text/csv",
    }
    assert component["OutputArtifacts"] == {"model": {"Value": "s3://b/model"}}
    assert component["Status"] == {"PrimaryStatus": "Completed"}
    assert component["StartTime"] == start
    assert component["EndTime"] == start + dt.timedelta(minutes=1)
    with pytest.raises(ClientError) as backwards:
        sm.update_trial_component(TrialComponentName="life-step", EndTime=start - dt.timedelta(1))
    assert code(backwards.value) == "ValidationException"

    association = sm.associate_trial_component(TrialComponentName="life-step",
                                               TrialName="life-trial")
    assert association["TrialArn"].endswith(":experiment-trial/life-trial")
    by_trial = sm.list_trial_components(TrialName="life-trial")["TrialComponentSummaries"]
    assert [(c["TrialComponentName"], c["DisplayName"]) for c in by_trial] == [
        ("life-step", "Step"),
    ]
    by_experiment = sm.list_trial_components(ExperimentName="life")["TrialComponentSummaries"]
    assert [c["TrialComponentName"] for c in by_experiment] == ["life-step"]
    trials = sm.list_trials(TrialComponentName="life-step")["TrialSummaries"]
    assert [t["TrialName"] for t in trials] == ["life-trial"]
    assert sm.describe_trial(TrialName="life-trial")["ExperimentName"] == "life"

    # SageMaker's order of deletion: disassociate components, then trials, then the experiment
    for call, kwargs in ((sm.delete_experiment, {"ExperimentName": "life"}),
                         (sm.delete_trial, {"TrialName": "life-trial"}),
                         (sm.delete_trial_component, {"TrialComponentName": "life-step"})):
        with pytest.raises(ClientError) as refused:
            call(**kwargs)
        assert code(refused.value) == "ValidationException"
    sm.disassociate_trial_component(TrialComponentName="life-step", TrialName="life-trial")
    assert sm.list_trial_components(TrialName="life-trial")["TrialComponentSummaries"] == []
    sm.delete_trial_component(TrialComponentName="life-step")
    sm.delete_trial(TrialName="life-trial")
    assert sm.delete_experiment(ExperimentName="life")["ExperimentArn"] == arn
    for call, kwargs in ((sm.describe_experiment, {"ExperimentName": "life"}),
                         (sm.describe_trial, {"TrialName": "life-trial"}),
                         (sm.describe_trial_component, {"TrialComponentName": "life-step"})):
        with pytest.raises(sm.exceptions.ResourceNotFound):
            call(**kwargs)


def test_lists_filter_sort_and_page(sm: Any) -> None:
    before = time.time()
    for name in ("page-c", "page-a", "page-b"):
        sm.create_experiment(ExperimentName=name)
    newest = sm.list_experiments(CreatedAfter=before)["ExperimentSummaries"]
    assert [e["ExperimentName"] for e in newest] == ["page-b", "page-a", "page-c"]
    first = sm.list_experiments(CreatedAfter=before, SortBy="Name", SortOrder="Ascending",
                                MaxResults=2)
    second = sm.list_experiments(CreatedAfter=before, SortBy="Name", SortOrder="Ascending",
                                 MaxResults=2, NextToken=first["NextToken"])
    assert [e["ExperimentName"] for e in first["ExperimentSummaries"]] == ["page-a", "page-b"]
    assert [e["ExperimentName"] for e in second["ExperimentSummaries"]] == ["page-c"]
    assert "NextToken" not in second
    with pytest.raises(ClientError) as both:
        sm.list_trial_components(ExperimentName="page-a", TrialName="x")
    assert code(both.value) == "ValidationException"


# --- sagemaker-metrics ----------------------------------------------------------------------
def test_batch_put_then_batch_get_metrics(sm: Any, metrics: Any) -> None:
    arn = sm.create_trial_component(TrialComponentName="Metric-Run")["TrialComponentArn"]
    t0 = math.floor(time.time() / 300) * 300 - 600.0  # a five-minute boundary, in the past
    data = [{"MetricName": "loss", "Value": v, "Timestamp": t0 + 30 * i, "Step": i // 2}
            for i, v in enumerate([4.0, 2.0, 1.0, 3.0, 0.5])]
    answer = metrics.batch_put_metrics(TrialComponentName="metric-run", MetricData=data[:3])
    assert answer.get("Errors", []) == []
    rest = [*data[3:], {"MetricName": "loss", "Value": float("nan"), "Timestamp": t0}]
    answer = metrics.batch_put_metrics(TrialComponentName="metric-run", MetricData=rest)
    assert answer["Errors"] == [{"Code": "VALIDATION_ERROR", "MetricIndex": 2}]

    def get(stat: str, period: str, axis: str, **extra: Any) -> dict[str, Any]:
        query = {"MetricName": "loss", "ResourceArn": arn, "MetricStat": stat,
                 "Period": period, "XAxisType": axis, **extra}
        return metrics.batch_get_metrics(MetricQueries=[query])["MetricQueryResults"][0]

    per_step = get("Avg", "IterationNumber", "IterationNumber")
    assert per_step == {"Status": "Complete", "XAxisValues": [0, 1, 2],
                        "MetricValues": [3.0, 2.0, 0.5]}
    assert get("Max", "IterationNumber", "IterationNumber", Start=1)["MetricValues"] == [3.0, 0.5]
    per_minute = get("Count", "OneMinute", "Timestamp")
    assert per_minute["XAxisValues"] == [int(t0), int(t0) + 60, int(t0) + 120]
    assert per_minute["MetricValues"] == [2.0, 2.0, 1.0]
    assert get("Last", "FiveMinute", "Timestamp")["MetricValues"] == [0.5]
    assert get("Avg", "OneHour", "IterationNumber")["Status"] == "ValidationError"

    summary = sm.describe_trial_component(TrialComponentName="Metric-Run")["Metrics"]
    assert [(m["MetricName"], m["Count"], m["Min"], m["Max"], m["Last"], m["SourceArn"])
            for m in summary] == [("loss", 5, 0.5, 4.0, 0.5, arn)]
    assert summary[0]["Avg"] == pytest.approx(2.1)

    unknown = metrics.batch_get_metrics(MetricQueries=[{
        "MetricName": "loss", "ResourceArn": arn.replace("metric-run", "nothing"),
        "MetricStat": "Avg", "Period": "IterationNumber", "XAxisType": "IterationNumber",
    }])["MetricQueryResults"][0]
    assert unknown["Status"] == "ValidationError"
    with pytest.raises(ClientError) as missing:
        metrics.batch_put_metrics(TrialComponentName="no-such-run", MetricData=data[:1])
    assert code(missing.value) == "ResourceNotFound"
    with pytest.raises(ClientError) as upper:
        metrics.batch_put_metrics(TrialComponentName="Metric-Run", MetricData=data[:1])
    assert code(upper.value) == "ValidationException"  # the model wants lower case


# --- training jobs as trial components ------------------------------------------------------
def test_a_training_job_is_a_trial_component(sm: Any, metrics: Any, jobs: dict[str, Any]) -> None:
    job = jobs["jobs"]["track-a"]
    assert jobs["first"]["track-a"]["Status"]["PrimaryStatus"] == "InProgress"
    component = sm.describe_trial_component(TrialComponentName="track-a-aws-training-job")
    assert component["Source"] == {"SourceArn": job["TrainingJobArn"],
                                   "SourceType": "SageMakerTrainingJob"}
    assert component["Status"]["PrimaryStatus"] == "Completed"
    assert (component["StartTime"], component["EndTime"]) == \
        (job["TrainingStartTime"], job["TrainingEndTime"])
    assert component["Parameters"]["eta"] == {"NumberValue": 0.3}
    assert component["Parameters"]["sagemaker_program"] == {"StringValue": '"train.py"'}
    assert component["Parameters"]["SageMaker.InstanceType"] == {"StringValue": "ml.m5.large"}
    assert component["Parameters"]["SageMaker.InstanceCount"] == {"NumberValue": 1.0}
    assert component["InputArtifacts"]["train"] == {"Value": jobs["data"], "MediaType": "text/csv"}
    assert component["InputArtifacts"]["SageMaker.ImageUri"]["Value"] == \
        job["AlgorithmSpecification"]["TrainingImage"]
    assert component["OutputArtifacts"] == {
        "SageMaker.ModelArtifact": {"Value": job["ModelArtifacts"]["S3ModelArtifacts"]},
    }
    (loss,) = component["Metrics"]
    assert (loss["MetricName"], loss["SourceArn"]) == ("train:loss", job["TrainingJobArn"])
    assert (loss["Count"], loss["Min"], loss["Max"], loss["Last"]) == (3, 0.3, 1.0, 0.3)
    assert loss["Avg"] == pytest.approx(0.6)

    values = metrics.batch_get_metrics(MetricQueries=[{
        "MetricName": "train:loss", "ResourceArn": component["TrialComponentArn"],
        "MetricStat": "Last", "Period": "IterationNumber", "XAxisType": "IterationNumber",
    }])["MetricQueryResults"][0]
    assert (values["XAxisValues"], values["MetricValues"]) == ([0, 1, 2], [1.0, 0.5, 0.3])

    # the experiment and trial named in ExperimentConfig were created, the job put in its trial
    assert sm.describe_trial(TrialName="track-a-trial")["ExperimentName"] == "tracked"
    members = sm.list_trial_components(ExperimentName="tracked", SortBy="Name",
                                       SortOrder="Ascending")["TrialComponentSummaries"]
    assert [c["TrialComponentName"] for c in members] == [
        "track-a-aws-training-job", "track-b-aws-training-job",
    ]
    assert members[0]["TrialComponentSource"]["SourceArn"] == job["TrainingJobArn"]
    assert members[0]["Status"]["PrimaryStatus"] == "Completed"


# --- Search ---------------------------------------------------------------------------------
def search_names(sm: Any, resource: str, member: str, key: str, **request: Any) -> list[str]:
    results = sm.search(Resource=resource, **request)["Results"]
    return [r[member][key] for r in results]


def test_search_training_jobs(sm: Any, jobs: dict[str, Any]) -> None:
    def job_names(**request: Any) -> list[str]:
        return [n for n in search_names(sm, "TrainingJob", "TrainingJob", "TrainingJobName",
                                         **request) if n in ETAS]

    completed = {"Name": "TrainingJobStatus", "Operator": "Equals", "Value": "Completed"}
    assert job_names(SearchExpression={"Filters": [completed]}, SortBy="Metrics.train:loss",
                     SortOrder="Ascending") == ["track-b", "track-c", "track-a"]
    assert job_names(SearchExpression={"Filters": [
        completed, {"Name": "HyperParameters.eta", "Operator": "GreaterThan", "Value": "0.15"},
    ]}, SortBy="TrainingJobName", SortOrder="Descending") == ["track-c", "track-a"]
    nested = {"NestedPropertyName": "InputDataConfig", "Filters": [
        {"Name": "InputDataConfig.ChannelName", "Operator": "Equals", "Value": "train"},
        {"Name": "InputDataConfig.DataSource.S3DataSource.S3Uri", "Operator": "Contains",
         "Value": "data"},
    ]}
    assert sorted(job_names(SearchExpression={"NestedFilters": [nested]})) == [
        "track-a", "track-b",
    ]
    either = {"Operator": "Or", "Filters": [
        {"Name": "Tags.team", "Operator": "Equals", "Value": "red"},
        {"Name": "Metrics.train:loss", "Operator": "LessThan", "Value": "0.15"},
    ]}
    assert sorted(job_names(SearchExpression={"SubExpressions": [either]})) == [
        "track-a", "track-b",
    ]
    answer = sm.search(Resource="TrainingJob", MaxResults=1, SortBy="CreationTime",
                       SearchExpression={"Filters": [
                           {"Name": "TrainingJobName", "Operator": "Contains", "Value": "track-"}]})
    assert answer["TotalHits"] == {"Value": 3, "Relation": "EqualTo"}
    assert answer["Results"][0]["TrainingJob"]["TrainingJobName"] == "track-c"
    assert answer["Results"][0]["TrainingJob"]["Tags"] == [{"Key": "team", "Value": "blue"}]
    following = sm.search(Resource="TrainingJob", MaxResults=2, SortBy="CreationTime",
                          NextToken=answer["NextToken"], SearchExpression={"Filters": [
                              {"Name": "TrainingJobName", "Operator": "Contains",
                               "Value": "track-"}]})
    assert [r["TrainingJob"]["TrainingJobName"] for r in following["Results"]] == [
        "track-b", "track-a",
    ]


def test_search_trial_components_experiments_and_trials(sm: Any, jobs: dict[str, Any]) -> None:
    in_experiment = {"Name": "Parents.ExperimentName", "Operator": "Equals", "Value": "tracked"}
    found = sm.search(Resource="ExperimentTrialComponent",
                      SearchExpression={"Filters": [in_experiment]},
                      SortBy="Parameters.eta", SortOrder="Descending")["Results"]
    assert [r["TrialComponent"]["TrialComponentName"] for r in found] == [
        "track-a-aws-training-job", "track-b-aws-training-job",
    ]
    first = found[0]["TrialComponent"]
    assert first["Parents"] == [{"TrialName": "track-a-trial", "ExperimentName": "tracked"}]
    assert first["Metrics"][0]["MetricName"] == "train:loss"
    assert first["Source"]["SourceArn"] == jobs["jobs"]["track-a"]["TrainingJobArn"]
    low_loss = sm.search(Resource="ExperimentTrialComponent", SearchExpression={"Filters": [
        {"Name": "Metrics.train:loss.Min", "Operator": "LessThanOrEqualTo", "Value": "0.2"},
        {"Name": "TrialComponentName", "Operator": "Contains", "Value": "track-"},
    ]}, SortBy="TrialComponentName", SortOrder="Ascending")["Results"]
    assert [r["TrialComponent"]["TrialComponentName"] for r in low_loss] == [
        "track-b-aws-training-job", "track-c-aws-training-job",
    ]
    experiments = search_names(sm, "Experiment", "Experiment", "ExperimentName", SearchExpression={
        "Filters": [{"Name": "ExperimentName", "Operator": "Equals", "Value": "tracked"}]})
    assert experiments == ["tracked"]
    trials = sm.search(Resource="ExperimentTrial", SearchExpression={"Filters": [
        {"Name": "ExperimentName", "Operator": "Equals", "Value": "tracked"}]},
        SortBy="TrialName", SortOrder="Ascending")["Results"]
    assert [t["Trial"]["TrialName"] for t in trials] == ["track-a-trial", "track-b-trial"]
    assert [c["TrialComponentName"] for c in trials[0]["Trial"]["TrialComponentSummaries"]] == [
        "track-a-aws-training-job",
    ]


@pytest.fixture(scope="module", autouse=True)
def _no_leftover_jobs(sm: Any) -> Iterator[None]:
    yield
    for job in sm.list_training_jobs(StatusEquals="InProgress")["TrainingJobSummaries"]:
        sm.stop_training_job(TrainingJobName=job["TrainingJobName"])


def test_cli_lists_and_describes_experiments(server: RunningServer, jobs: dict[str, Any]) -> None:
    import json
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "modelyard", *args, "--home", str(server.home),
             "--endpoint-url", server.url],
            capture_output=True, text=True, timeout=60, env=server.env,
        )

    listed = cli("experiments", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert "tracked" in [e["ExperimentName"] for e in json.loads(listed.stdout)]
    described = cli("experiments", "describe", "tracked", "-o", "json")
    assert json.loads(described.stdout)["Trials"] == ["track-b-trial", "track-a-trial"]
    table = cli("trial-components", "describe", "track-a-aws-training-job")
    assert table.returncode == 0, table.stderr
    assert "train:loss" in table.stdout and "Completed" in table.stdout
    components = cli("trial-components", "list", "--experiment", "tracked", "-o", "json")
    assert sorted(c["TrialComponentName"] for c in json.loads(components.stdout)) == [
        "track-a-aws-training-job", "track-b-aws-training-job",
    ]
    missing = cli("experiments", "describe", "nope")
    assert missing.returncode == 1
    assert "ResourceNotFound" in missing.stderr


def test_metrics_routes_want_a_signature(server: RunningServer) -> None:
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        server.url + "/BatchGetMetrics", data=b'{"MetricQueries": []}', method="POST",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    assert refused.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert "message" in json.loads(refused.value.read())


def test_search_knows_its_kinds(sm: Any) -> None:
    # registered by the platform for the tuning capability; none exist in this module
    tuning = sm.search(Resource="HyperParameterTuningJob")
    assert (tuning["Results"], tuning["TotalHits"]["Value"]) == ([], 0)
    with pytest.raises(ClientError) as unsupported:
        sm.search(Resource="Pipeline")
    assert code(unsupported.value) == "ValidationException"
    assert "TrainingJob" in str(unsupported.value)
