"""What a training job's record says about its trial component."""

from __future__ import annotations

from typing import Any

from modelyard.experiments.tracking import job_fields
from modelyard.store.base import Record

ARN = "arn:aws:sagemaker:us-east-1:000000000000:training-job/job-1"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def job(state: dict[str, Any]) -> Record:
    spec = {
        "TrainingJobName": "job-1",
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "HyperParameters": {"eta": "0.2", "num_round": "10", "objective": "binary:logistic",
                            "flag": "nan"},
        "InputDataConfig": [
            {"ChannelName": "train", "ContentType": "text/csv",
             "DataSource": {"S3DataSource": {"S3Uri": "s3://b/train/"}}},
            {"ChannelName": "validation", "ContentType": "text/csv; label_size=1",
             "DataSource": {"S3DataSource": {"S3Uri": "s3://b/validation/"}}},
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 5},
    }
    return Record(kind="TrainingJob", name="job-1", arn=ARN, status=state["Status"], created=1.0,
                  modified=2.0, version=3, spec=spec, state=state)


def test_a_running_job() -> None:
    fields = job_fields(job({
        "Status": "InProgress", "LastModifiedTime": 5.0, "_run": {"started": 3.0},
        "SecondaryStatusTransitions": [{"Status": "Training", "StatusMessage": "Training..."}],
    }))
    assert fields["Source"] == {"SourceArn": ARN, "SourceType": "SageMakerTrainingJob"}
    assert fields["Status"] == {"PrimaryStatus": "InProgress", "Message": "Training..."}
    assert (fields["StartTime"], fields["EndTime"]) == (3.0, None)
    assert fields["Parameters"] == {
        "eta": {"NumberValue": 0.2}, "num_round": {"NumberValue": 10.0},
        "objective": {"StringValue": "binary:logistic"}, "flag": {"StringValue": "nan"},
        "SageMaker.InstanceType": {"StringValue": "ml.m5.xlarge"},
        "SageMaker.ImageUri": {"StringValue": IMAGE},
        "SageMaker.InstanceCount": {"NumberValue": 2.0},
        "SageMaker.VolumeSizeInGB": {"NumberValue": 5.0},
    }
    assert fields["InputArtifacts"] == {
        "train": {"Value": "s3://b/train/", "MediaType": "text/csv"},
        # a content type with parameters is no MediaType by the model's pattern
        "validation": {"Value": "s3://b/validation/"},
        "SageMaker.ImageUri": {"Value": IMAGE},
    }
    assert fields["OutputArtifacts"] == {}


def test_a_completed_job_has_its_model_and_a_failed_one_its_reason() -> None:
    done = job_fields(job({"Status": "Completed", "LastModifiedTime": 9.0,
                           "_run": {"started": 3.0, "ended": 8.0}}))
    assert (done["StartTime"], done["EndTime"]) == (3.0, 8.0)
    assert done["OutputArtifacts"] == {
        "SageMaker.ModelArtifact": {"Value": "s3://b/out/job-1/output/model.tar.gz"},
    }
    failed = job_fields(job({"Status": "Failed", "LastModifiedTime": 4.0,
                             "FailureReason": "AlgorithmError: boom", "_run": {}}))
    assert failed["Status"] == {"PrimaryStatus": "Failed", "Message": "AlgorithmError: boom"}
    assert (failed["StartTime"], failed["EndTime"]) == (None, 4.0)  # never started
    assert failed["OutputArtifacts"] == {}
