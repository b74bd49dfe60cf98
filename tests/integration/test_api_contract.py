"""The wire contract clients depend on: error codes and messages, lists, tags, auth, STS."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import ROLE, XGBOOST_IMAGE, make_sourcedir, script_job
from tests.support.server import RunningServer, wait_for_job


def _error(call: Any, **kwargs: Any) -> dict[str, str]:
    with pytest.raises(ClientError) as err:
        call(**kwargs)
    return err.value.response["Error"]


@pytest.fixture(scope="module")
def finished_jobs(sm: Any, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    code = make_sourcedir(tmp_path_factory.mktemp("code"), "print('hello')\n")
    names = [f"list-job-{i}" for i in range(5)]
    for name in names:
        sm.create_training_job(**script_job(name, code, "s3://b/o"))
    for name in names:
        wait_for_job(sm, name)
    return names


def test_missing_training_job(sm: Any) -> None:
    error = _error(sm.describe_training_job, TrainingJobName="does-not-exist")
    assert error == {"Code": "ValidationException", "Message": "Requested resource not found."}
    assert _error(sm.stop_training_job, TrainingJobName="does-not-exist")["Code"] == "ValidationException"


def test_duplicate_training_job(sm: Any, finished_jobs: list[str], tmp_path: Path) -> None:
    code = make_sourcedir(tmp_path, "print(1)\n")
    error = _error(sm.create_training_job, **script_job(finished_jobs[0], code, "s3://b/o"))
    assert error["Code"] == "ResourceInUse"
    assert "already exists" in error["Message"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"TrainingJobName": "bad_name!"}, "Member must satisfy regular expression pattern"),
        ({"TrainingJobName": "x" * 64}, "Member must have length less than or equal to 63"),
        ({"AlgorithmSpecification": {"TrainingImage": "123.dkr.ecr.us-east-1.amazonaws.com/my-own:1",
                                     "TrainingInputMode": "File"}}, "sagemaker-xgboost"),
        ({"AlgorithmSpecification": {"TrainingImage": XGBOOST_IMAGE, "TrainingInputMode": "Pipe"}},
         "Pipe input mode is not supported"),
        ({"ResourceConfig": {"InstanceType": "ml.m5.huge", "InstanceCount": 1, "VolumeSizeInGB": 1}},
         "Member must satisfy enum value set"),
        ({"EnableManagedSpotTraining": True}, "MaxWaitTimeInSeconds is required"),
        ({"EnableManagedSpotTraining": True,
          "StoppingCondition": {"MaxRuntimeInSeconds": 100, "MaxWaitTimeInSeconds": 50}},
         "must be greater than or equal to MaxRuntimeInSeconds"),
        ({"AlgorithmSpecification": {"TrainingImage": XGBOOST_IMAGE, "TrainingInputMode": "File",
                                     "MetricDefinitions": [{"Name": "m", "Regex": "no group"}]}},
         "must have a capture group"),
        ({"InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": "ftp://x/y"}}}]}, "Member must satisfy regular expression pattern"),
    ],
)
def test_invalid_requests_are_rejected_and_nothing_is_created(sm: Any, change: dict[str, Any], expected: str) -> None:
    request: dict[str, Any] = {
        "TrainingJobName": "invalid-request",
        "AlgorithmSpecification": {"TrainingImage": XGBOOST_IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://b/o"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 100},
    }
    request.update(change)
    error = _error(sm.create_training_job, **request)
    assert error["Code"] == "ValidationException"
    assert expected in error["Message"]
    assert _error(sm.describe_training_job, TrainingJobName="invalid-request")["Code"] == "ValidationException"


def test_list_filters_sorts_and_pages(sm: Any, finished_jobs: list[str]) -> None:
    page = sm.list_training_jobs(NameContains="LIST-JOB", MaxResults=2, SortBy="Name", SortOrder="Descending")
    assert [j["TrainingJobName"] for j in page["TrainingJobSummaries"]] == ["list-job-4", "list-job-3"]
    names = []
    for p in sm.get_paginator("list_training_jobs").paginate(
        NameContains="list-job", SortBy="CreationTime", SortOrder="Ascending", PaginationConfig={"PageSize": 2}
    ):
        names += [j["TrainingJobName"] for j in p["TrainingJobSummaries"]]
    assert names == finished_jobs
    last = sm.list_training_jobs(NameContains="list-job", MaxResults=5)
    assert "NextToken" not in last
    completed = sm.list_training_jobs(NameContains="list-job", StatusEquals="Failed")
    assert completed["TrainingJobSummaries"] == []
    summary = page["TrainingJobSummaries"][0]
    assert summary["TrainingJobStatus"] == "Completed" and "TrainingEndTime" in summary
    error = _error(sm.list_training_jobs, NextToken="garbage")
    assert error["Code"] == "ValidationException"


def test_tags(sm: Any, finished_jobs: list[str]) -> None:
    arn = sm.describe_training_job(TrainingJobName=finished_jobs[0])["TrainingJobArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "risk"}, {"Key": "env", "Value": "dev"}])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "risk"}]
    sm.delete_tags(ResourceArn=arn, TagKeys=["env"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "risk"}]
    missing = arn.replace("list-job-0", "no-such-job")
    assert _error(sm.list_tags, ResourceArn=missing)["Code"] == "ResourceNotFound"


def test_tags_given_at_creation(sm: Any, tmp_path: Path) -> None:
    code = make_sourcedir(tmp_path, "print(1)\n")
    arn = sm.create_training_job(**script_job("tagged-1", code, "s3://b/o", Tags=[{"Key": "k", "Value": "v"}]))["TrainingJobArn"]
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "k", "Value": "v"}]


def test_wrong_secret_is_rejected(server: RunningServer) -> None:
    key, _ = server.keys()
    client = server.client("sagemaker", aws_secret_access_key="x" * 40)
    error = _error(client.list_training_jobs)
    assert error["Code"] == "InvalidSignatureException"
    stranger = server.client("sagemaker", aws_access_key_id="AKIANOTAKEY000000000")
    assert _error(stranger.list_training_jobs)["Code"] == "UnrecognizedClientException"


def test_unsigned_request_gets_403(server: RunningServer) -> None:
    request = urllib.request.Request(
        server.url + "/", data=b"{}", method="POST",
        headers={"X-Amz-Target": "SageMaker.ListTrainingJobs", "Content-Type": "application/x-amz-json-1.1"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 403
    body = json.loads(err.value.read())
    assert body["__type"] == "MissingAuthenticationTokenException"


def test_unknown_operation(server: RunningServer, sm: Any) -> None:
    error = _error(sm.describe_pipeline, PipelineName="p")
    assert error["Code"] == "UnknownOperationException"


def test_sts_caller_identity(server: RunningServer) -> None:
    identity = server.client("sts").get_caller_identity()
    assert identity["Account"] == "000000000000"
    assert identity["Arn"].startswith("arn:aws:")
