"""The modelyard target: a real server, one endpoint, InvokeEndpoint through the router.

The endpoint is made the way a SageMaker user makes it: CreateModel with the sagemaker-xgboost
image and the local ``model.tar.gz`` as ModelDataUrl (``SAGEMAKER_MODEL_SERVER_WORKERS`` = the
bench's worker count), CreateEndpointConfig, CreateEndpoint, then wait for InService. The
``modelyard-batching`` variant also sets ``SAGEMAKER_TS_BATCH_SIZE`` and
``SAGEMAKER_TS_MAX_BATCH_DELAY`` (:data:`BATCHING`), so each worker batches concurrent requests.

wrk cannot sign each request, so one request per payload is signed with botocore (SigV4,
service ``sagemaker``, the server's own keys) and wrk replays its headers. The signature stays
valid for the server's 15-minute clock-skew window, and the server verifies it on every
request, so the cost of authentication is part of what is measured.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bench.serving.load import HttpRequest
from bench.serving.model import BenchModel, Payload
from bench.serving.targets import REPO, Target

if str(REPO) not in sys.path:  # the server harness lives in the test tree
    sys.path.insert(0, str(REPO))

from tests.support.server import RunningServer, start_server  # noqa: E402

XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::000000000000:role/modelyard-bench"
ENDPOINT = "bench-xgboost"
REGION = "us-east-1"
INSERVICE_TIMEOUT = 120.0
#: the model environment of the modelyard-batching target
BATCHING = {"SAGEMAKER_TS_BATCH_SIZE": "16", "SAGEMAKER_TS_MAX_BATCH_DELAY": "5"}


class ModelyardTarget(Target):
    """InvokeEndpoint on a modelyard server started for the bench."""

    name = "modelyard"
    notes = ("modelyard server (router, SigV4 verified per request) → one instance of the "
             "sagemaker-xgboost model server")

    def __init__(self, model: BenchModel, workdir: Path, workers: int,
                 batching: bool = False) -> None:  # fmt: skip
        super().__init__(model, workdir, workers)
        self.server: RunningServer | None = None
        self.starts = 0
        self.environment = {"SAGEMAKER_MODEL_SERVER_WORKERS": str(workers)}
        if batching:
            self.name = "modelyard-batching"
            self.notes += (" with adaptive batching: SAGEMAKER_TS_BATCH_SIZE="
                           f"{BATCHING['SAGEMAKER_TS_BATCH_SIZE']}, SAGEMAKER_TS_MAX_BATCH_DELAY="
                           f"{BATCHING['SAGEMAKER_TS_MAX_BATCH_DELAY']} ms")  # fmt: skip
            self.environment.update(BATCHING)

    def start(self) -> None:
        self.starts += 1  # a fresh home each round: the same names are created again
        # a deployed server does not check its own responses against the API model
        self.server = start_server(self.workdir / f"{self.name}-home-{self.starts}",
                                   {"MODELYARD_STRICT_RESPONSES": "0"})
        sm = self.server.client("sagemaker")
        sm.create_model(ModelName=ENDPOINT, ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": XGBOOST_IMAGE, "ModelDataUrl": str(self.model.archive),
            "Environment": self.environment,
        })
        sm.create_endpoint_config(EndpointConfigName=ENDPOINT, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": ENDPOINT, "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1, "InitialVariantWeight": 1.0,
        }])
        sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=ENDPOINT)
        _wait_in_service(sm, ENDPOINT)

    def request(self, payload: Payload) -> HttpRequest:
        assert self.server is not None, "start() first"
        url = f"{self.server.url}/endpoints/{ENDPOINT}/invocations"
        return HttpRequest(url, sign(url, payload.csv, self.server.keys()), payload.csv)

    def pids(self) -> list[int]:
        # the model-server instances are the server's children: one tree holds all the work
        return [self.server.proc.pid] if self.server else []

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()  # a clean stop also stops the endpoint's instances
            self.server = None


def sign(url: str, body: bytes, keys: tuple[str, str]) -> dict[str, str]:
    """Headers of an InvokeEndpoint POST to ``url`` signed with SigV4 as boto3 would sign it."""
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "text/csv"})
    SigV4Auth(Credentials(*keys), "sagemaker", REGION).add_auth(request)
    host = url.split("/")[2]
    return {"Host": host, **{k: str(v) for k, v in request.headers.items()}}


def _wait_in_service(sm: Any, name: str) -> None:
    deadline = time.monotonic() + INSERVICE_TIMEOUT
    while True:
        endpoint = sm.describe_endpoint(EndpointName=name)
        status = endpoint["EndpointStatus"]
        if status == "InService":
            return
        if status not in ("Creating", "Updating") or time.monotonic() > deadline:
            raise RuntimeError(f"endpoint {name} is {status}: {endpoint.get('FailureReason')}")
        time.sleep(0.1)
