"""Lineage through boto3: entities, associations, and what training and deploying record."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import ROLE, SKLEARN_IMAGE, make_sourcedir, script_job
from tests.support.server import RunningServer, wait_for_job

SCRIPT = """
import os
open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w").write("m")
"""


def arns(vertices: list[dict[str, Any]]) -> set[str]:
    return {v["Arn"] for v in vertices}


def test_entities_and_associations(sm: Any) -> None:
    dataset = sm.create_artifact(
        ArtifactName="raw", Source={"SourceUri": "s3://b/raw.csv",
                                    "SourceTypes": [{"SourceIdType": "Custom", "Value": "v1"}]},
        ArtifactType="DataSet", Properties={"rows": "10"},
    )["ArtifactArn"]
    assert ":artifact/" in dataset and len(dataset.rsplit("/", 1)[1]) == 32
    cleaned = sm.create_artifact(Source={"SourceUri": "s3://b/clean.csv"},
                                 ArtifactType="DataSet")["ArtifactArn"]
    action = sm.create_action(ActionName="clean-up", Source={"SourceUri": "s3://b/clean.py"},
                              ActionType="Processing", Status="InProgress")["ActionArn"]
    context = sm.create_context(ContextName="project_x", Source={"SourceUri": "git://x"},
                                ContextType="Project", Properties={"owner": "me"})["ContextArn"]
    sm.update_artifact(ArtifactArn=dataset, Properties={"rows": "12", "cols": "3"},
                       PropertiesToRemove=["cols"])
    sm.update_action(ActionName="clean-up", Status="Completed")
    assert sm.describe_artifact(ArtifactArn=dataset)["Properties"] == {"rows": "12"}
    assert sm.describe_action(ActionName=action)["Status"] == "Completed"
    described = sm.describe_context(ContextName="project_x")
    assert (described["ContextType"], described["Source"]["SourceUri"]) == ("Project", "git://x")

    listed = sm.list_artifacts(SourceUri="s3://b/raw.csv")["ArtifactSummaries"]
    assert [a["ArtifactArn"] for a in listed] == [dataset]
    datasets = sm.list_artifacts(ArtifactType="DataSet")["ArtifactSummaries"]
    assert {a["ArtifactArn"] for a in datasets} >= {dataset, cleaned}
    assert [a["ActionName"] for a in sm.list_actions(ActionType="Processing")["ActionSummaries"]] \
        == ["clean-up"]
    assert [c["ContextName"] for c in sm.list_contexts(ContextType="Project")["ContextSummaries"]] \
        == ["project_x"]

    sm.add_association(SourceArn=dataset, DestinationArn=action, AssociationType="ContributedTo")
    sm.add_association(SourceArn=action, DestinationArn=cleaned, AssociationType="Produced")
    sm.add_association(SourceArn=cleaned, DestinationArn=context)  # AssociatedWith by default
    from_action = sm.list_associations(SourceArn=action)["AssociationSummaries"]
    assert [(a["DestinationArn"], a["AssociationType"], a["SourceType"], a["SourceName"],
             a["DestinationType"]) for a in from_action] == [
        (cleaned, "Produced", "Processing", "clean-up", "DataSet"),
    ]
    into_context = sm.list_associations(DestinationArn=context, DestinationType="Context")
    types = [a["AssociationType"] for a in into_context["AssociationSummaries"]]
    assert types == ["AssociatedWith"]
    assert sm.list_associations(SourceArn=dataset, DestinationType="Endpoint")[
        "AssociationSummaries"] == []
    down = sm.query_lineage(StartArns=[dataset], Direction="Descendants", IncludeEdges=False)
    assert [v["Arn"] for v in down["Vertices"]] == [action, cleaned, context]
    assert down["Vertices"][0] == {"Arn": action, "Type": "Processing", "LineageType": "Action"}
    only_data = sm.query_lineage(StartArns=[context], Direction="Ascendants",
                                 Filters={"Types": ["DataSet"], "Properties": {"rows": "12"}})
    assert arns(only_data["Vertices"]) == {dataset, action, cleaned}  # with the path to it
    assert {(e["SourceArn"], e["DestinationArn"]) for e in only_data["Edges"]} == {
        (dataset, action), (action, cleaned), (cleaned, context),
    }
    shallow = sm.query_lineage(StartArns=[context], Direction="Ascendants", MaxDepth=1,
                               IncludeEdges=False)
    assert arns(shallow["Vertices"]) == {cleaned}

    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.add_association(SourceArn=dataset, DestinationArn=dataset.replace(dataset[-4:], "0000"))
    sm.delete_association(SourceArn=cleaned, DestinationArn=context)
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.delete_association(SourceArn=cleaned, DestinationArn=context)
    sm.delete_action(ActionName="clean-up")  # its associations go with it
    assert sm.list_associations(SourceArn=dataset)["AssociationSummaries"] == []
    sm.delete_artifact(Source={"SourceUri": "s3://b/raw.csv"})
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_artifact(ArtifactArn=dataset)
    sm.delete_context(ContextName="project_x")
    with pytest.raises(ClientError) as missing:
        sm.describe_context(ContextName="project_x")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFound"


def test_train_model_endpoint_lineage(server: RunningServer, sm: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("1,2\n")
    code = make_sourcedir(tmp_path / "code", SCRIPT)
    channel = {"ChannelName": "train", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": f"{data}/"}}}
    sm.create_training_job(**script_job("lin-job", code, "s3://bucket/lineage",
                                        InputDataConfig=[channel]))
    job = wait_for_job(sm, "lin-job")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    model_uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    component = sm.describe_trial_component(TrialComponentName="lin-job-aws-training-job")
    component_arn = component["TrialComponentArn"]

    sm.create_model(ModelName="lin-model", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": SKLEARN_IMAGE, "ModelDataUrl": model_uri})
    sm.create_endpoint_config(EndpointConfigName="lin-config", ProductionVariants=[{
        "VariantName": "v1", "ModelName": "lin-model", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    endpoint_arn = sm.create_endpoint(EndpointName="lin-endpoint",
                                      EndpointConfigName="lin-config")["EndpointArn"]
    try:
        (model,) = sm.list_artifacts(SourceUri=model_uri)["ArtifactSummaries"]
        (dataset,) = sm.list_artifacts(SourceUri=f"{data}/")["ArtifactSummaries"]
        (image,) = sm.list_artifacts(SourceUri=SKLEARN_IMAGE)["ArtifactSummaries"]
        assert (model["ArtifactType"], dataset["ArtifactType"], image["ArtifactType"]) == (
            "Model", "DataSet", "Image")
        (context,) = sm.list_contexts(SourceUri=endpoint_arn)["ContextSummaries"]
        assert context["ContextType"] == "Endpoint"
        (deployment,) = sm.list_actions(ActionType="ModelDeployment")["ActionSummaries"]
        assert deployment["Source"]["SourceUri"].endswith(":endpoint-config/lin-config")

        # from the endpoint back to the data, and the training job on the way
        up = sm.query_lineage(StartArns=[context["ContextArn"]], Direction="Ascendants",
                              IncludeEdges=True)
        assert arns(up["Vertices"]) == {deployment["ActionArn"], model["ArtifactArn"],
                                        image["ArtifactArn"], component_arn,
                                        dataset["ArtifactArn"]}
        assert {(e["SourceArn"], e["DestinationArn"], e["AssociationType"]) for e in up["Edges"]} \
            >= {(dataset["ArtifactArn"], component_arn, "ContributedTo"),
                (component_arn, model["ArtifactArn"], "Produced"),
                (model["ArtifactArn"], deployment["ActionArn"], "ContributedTo"),
                (deployment["ActionArn"], context["ContextArn"], "AssociatedWith")}
        jobs = sm.query_lineage(StartArns=[context["ContextArn"]], Direction="Ascendants",
                                IncludeEdges=False, Filters={"Types": ["TrainingJob"],
                                                             "LineageTypes": ["TrialComponent"]})
        assert jobs["Vertices"] == [{"Arn": component_arn, "Type": "TrainingJob",
                                     "LineageType": "TrialComponent"}]
        # from the data forward to the endpoint
        down = sm.query_lineage(StartArns=[dataset["ArtifactArn"]], Direction="Descendants",
                                IncludeEdges=False, Filters={"Types": ["Endpoint"]})
        assert down["Vertices"] == [{"Arn": context["ContextArn"], "Type": "Endpoint",
                                     "LineageType": "Context"}]
        both = sm.query_lineage(StartArns=[component_arn], Direction="Both",
                                IncludeEdges=False)
        assert arns(both["Vertices"]) >= {dataset["ArtifactArn"], model["ArtifactArn"],
                                          context["ContextArn"]}
        later = sm.query_lineage(StartArns=[context["ContextArn"]], Direction="Ascendants",
                                 Filters={"CreatedAfter": time.time() + 60})
        assert later["Vertices"] == []
    finally:
        sm.delete_endpoint(EndpointName="lin-endpoint")
