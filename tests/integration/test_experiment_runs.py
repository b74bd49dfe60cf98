"""``modelyard.Run`` against a live server: on its own, and inside a training script."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import modelyard
from tests.integration.conftest import make_sourcedir, script_job
from tests.support.server import RunningServer, wait_for_job

INSIDE = """
import modelyard
with modelyard.Run() as run:
    run.log_parameter("inside", "yes")
    for step in range(3):
        run.log_metric("inner:acc", 0.5 + step / 10, step=step)
print("logged to", run.trial_component_name, flush=True)
"""


@pytest.fixture(scope="module")
def session(server: RunningServer) -> modelyard.Session:
    return modelyard.Session(endpoint_url=server.url, home=server.home)


def test_a_run_records_parameters_metrics_artifacts_and_times(
    sm: Any, session: modelyard.Session
) -> None:
    with modelyard.Run(experiment_name="sdk", run_name="first", session=session) as run:
        run.log_parameters({"lr": 0.1, "optimizer": "adam", "shuffle": True})
        run.log_parameter("bad", float("nan"))  # not finite: skipped, as the SageMaker SDK does
        for step in range(12):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_artifact("model", "s3://b/model.tar.gz", media_type="application/x-tar")
        run.log_artifact("data", "s3://b/train.csv", is_output=False)
        during = sm.describe_trial_component(TrialComponentName="sdk-first")
        assert during["Status"]["PrimaryStatus"] == "InProgress"
        assert during["Metrics"][0]["Count"] == 10  # one full batch sent, two still buffered
    assert run.trial_component_name == "sdk-first"
    done = sm.describe_trial_component(TrialComponentName="sdk-first")
    assert done["Status"]["PrimaryStatus"] == "Completed"
    assert done["EndTime"] >= done["StartTime"]
    assert done["Parameters"] == {"lr": {"NumberValue": 0.1}, "optimizer": {"StringValue": "adam"},
                                  "shuffle": {"StringValue": "True"}}
    assert done["OutputArtifacts"] == {"model": {"Value": "s3://b/model.tar.gz",
                                                 "MediaType": "application/x-tar"}}
    assert done["InputArtifacts"] == {"data": {"Value": "s3://b/train.csv"}}
    (loss,) = done["Metrics"]
    assert (loss["Count"], loss["Max"], loss["Last"]) == (12, 1.0, pytest.approx(1 / 12))
    tags = sm.list_tags(ResourceArn=done["TrialComponentArn"])["Tags"]
    assert {"Key": "sagemaker:trial-component-source", "Value": "run"} in tags
    members = sm.list_trial_components(TrialName="Default-Run-Group-sdk")
    assert [c["TrialComponentName"] for c in members["TrialComponentSummaries"]] == ["sdk-first"]

    # the same names again: the run is reused, not refused
    with modelyard.Run(experiment_name="sdk", run_name="first", session=session) as again:
        again.log_metric("loss", 0.01)
    assert sm.describe_trial_component(TrialComponentName="sdk-first")["Metrics"][0]["Count"] == 13


def test_a_failing_run_is_marked_failed(sm: Any, session: modelyard.Session) -> None:
    with pytest.raises(RuntimeError), modelyard.Run("sdk", "broken", session=session):
        raise RuntimeError("boom")
    status = sm.describe_trial_component(TrialComponentName="sdk-broken")["Status"]
    assert status == {"PrimaryStatus": "Failed", "Message": "RuntimeError: boom"}
    with pytest.raises(ValueError):
        modelyard.Run(session=session)  # outside a job a run needs names
    with pytest.raises(ValueError):
        modelyard.Run(run_name="r", session=session)


def test_run_inside_a_job_logs_to_the_jobs_component(sm: Any, tmp_path: Path) -> None:
    code = make_sourcedir(tmp_path / "code", INSIDE)
    sm.create_training_job(**script_job("run-inside", code, "s3://bucket/runs", {"lr": "0.5"}))
    job = wait_for_job(sm, "run-inside")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    component = sm.describe_trial_component(TrialComponentName="run-inside-aws-training-job")
    (acc,) = component["Metrics"]
    assert (acc["MetricName"], acc["Count"], acc["Last"]) == ("inner:acc", 3, 0.7)
    assert acc["SourceArn"] == component["TrialComponentArn"]
    # what the script logged sits beside what the job says about itself
    assert component["Parameters"]["inside"] == {"StringValue": "yes"}
    assert component["Parameters"]["lr"] == {"NumberValue": 0.5}
    assert component["Status"]["PrimaryStatus"] == "Completed"


def test_an_estimator_inside_a_run_passes_the_run_to_its_job(
    sm: Any, session: modelyard.Session, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(INSIDE)
    estimator = modelyard.Estimator(entry_point="train.py", source_dir=source,
                                    framework="sklearn", session=session)
    with modelyard.Run(experiment_name="sdk", run_name="outer", session=session) as run:
        estimator.fit(wait=True, logs=False)
    job = estimator.describe()
    assert job["ExperimentConfig"] == run.experiment_config == {
        "ExperimentName": "sdk", "TrialName": "Default-Run-Group-sdk", "RunName": "sdk-outer",
    }
    outer = sm.describe_trial_component(TrialComponentName="sdk-outer")
    assert outer["Status"]["PrimaryStatus"] == "Completed"
    assert outer["Parameters"] == {"inside": {"StringValue": "yes"}}
    assert [(m["MetricName"], m["Count"]) for m in outer["Metrics"]] == [("inner:acc", 3)]
    members = sm.list_trial_components(TrialName="Default-Run-Group-sdk", SortBy="Name",
                                       SortOrder="Ascending")["TrialComponentSummaries"]
    assert f"{job['TrainingJobName']}-aws-training-job" in [
        c["TrialComponentName"] for c in members
    ]
