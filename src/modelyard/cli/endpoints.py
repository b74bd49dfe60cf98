"""``modelyard endpoints list|describe|invoke|delete``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from modelyard.cli.options import common, session_for
from modelyard.cli.output import print_json, show_fields, show_table

_DESCRIBE_FIELDS = (
    "EndpointName", "EndpointStatus", "FailureReason", "EndpointConfigName", "ProductionVariants",
    "CreationTime", "LastModifiedTime",
)


@click.group("endpoints")
def endpoints() -> None:
    """List, inspect, call and delete endpoints."""


@endpoints.command("list")
@common
def list_endpoints(home, endpoint_url, output):  # noqa: ANN001, ANN201
    """Endpoints, newest first."""
    sm = session_for(home, endpoint_url).sagemaker
    found = []
    for page in sm.get_paginator("list_endpoints").paginate():
        found.extend(page["Endpoints"])
    show_table(output, found, ["EndpointName", "EndpointStatus", "CreationTime", "LastModifiedTime"])


@endpoints.command("describe")
@common
@click.argument("name")
def describe(home, endpoint_url, output, name):  # noqa: ANN001, ANN201
    """One endpoint, with its variants' weights and instance counts."""
    described = session_for(home, endpoint_url).sagemaker.describe_endpoint(EndpointName=name)
    show_fields(output, described, _DESCRIBE_FIELDS)


@endpoints.command("invoke")
@common
@click.argument("name")
@click.option("--body", help="The request body (default: read standard input).")
@click.option("--file", "body_file", type=click.Path(exists=True, path_type=Path), help="Read the body from a file.")
@click.option("--content-type", default="text/csv", show_default=True)
@click.option("--accept", default=None, help="The answer's content type (default: the model's).")
@click.option("--target-variant", default=None)
def invoke(home, endpoint_url, output, name, body, body_file, content_type, accept, target_variant):  # noqa: ANN001, ANN201, PLR0913
    """Send one request to an endpoint and print the answer."""
    payload = body.encode() if body is not None else body_file.read_bytes() if body_file else sys.stdin.buffer.read()
    kwargs = {"EndpointName": name, "ContentType": content_type, "Body": payload}
    if accept:
        kwargs["Accept"] = accept
    if target_variant:
        kwargs["TargetVariant"] = target_variant
    response = session_for(home, endpoint_url).client("sagemaker-runtime").invoke_endpoint(**kwargs)
    answer = response["Body"].read()
    if output == "json":
        print_json({"InvokedProductionVariant": response.get("InvokedProductionVariant"),
                    "ContentType": response.get("ContentType"), "Body": answer.decode("utf-8", "replace")})
    else:
        click.echo(answer.decode("utf-8", "replace").rstrip("\n"))


@endpoints.command("delete")
@common
@click.argument("name")
def delete(home, endpoint_url, output, name):  # noqa: ANN001, ANN201
    """Delete an endpoint (its config and models stay)."""
    session_for(home, endpoint_url).sagemaker.delete_endpoint(EndpointName=name)
    click.echo(f"Deleting {name}")
