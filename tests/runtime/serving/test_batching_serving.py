"""Adaptive batching in a running instance: concurrent requests share predict_fn calls, each
answered with its own result, and bad settings stop the instance from starting."""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np

from .conftest import archive
from .instance_helpers import Instance, Response
from .test_xgboost_serving import csv_rows, predictions

#: predict_fn records each call's row count and answers, per row, twice its first value and
#: the size of the batch it was predicted in; a negative value makes it fail
RECORDING = """\
import json, os, time
import numpy as np

def model_fn(model_dir):
    return os.path.join(model_dir, "batches.txt")

def input_fn(body, content_type, context):
    context.set_custom_attributes("seen=" + (context.custom_attributes or "none"))
    return np.asarray(json.loads(body), dtype=np.float32)

def predict_fn(data, model):
    with open(model, "a") as f:
        f.write(f"{len(data)}\\n")
    time.sleep(0.1)  # long enough for the other requests to pile up behind this one
    if (data < 0).any():
        raise ValueError("negative input")
    return np.column_stack([data[:, 0] * 2, np.full(len(data), len(data))])

def output_fn(prediction, accept, context):
    body = {"rows": prediction.tolist(), "attributes": context.custom_attributes}
    return json.dumps(body), "application/json"
"""

BATCHING = {"SAGEMAKER_TS_BATCH_SIZE": "4", "SAGEMAKER_TS_MAX_BATCH_DELAY": "50"}


def concurrently(
    instance: Instance, requests: list[tuple[bytes, dict[str, str]]]
) -> list[Response]:
    """Send every request on its own connection, all at once; the responses in order."""
    connections = [instance.connection() for _ in requests]
    for connection in connections:
        connection.connect()  # accepted before anything is sent
    start = threading.Barrier(len(requests))
    responses: list[Any] = [None] * len(requests)

    def send(i: int) -> None:
        body, headers = requests[i]
        start.wait()
        try:
            responses[i] = instance.request("POST", "/invocations", body, headers, connections[i])
        except Exception as e:  # seen by the assertion below
            responses[i] = e

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for connection in connections:
        connection.close()
    assert all(isinstance(r, Response) for r in responses), responses
    return responses


def json_request(rows: list[list[float]], **headers: str) -> tuple[bytes, dict[str, str]]:
    return json.dumps(rows).encode(), {"Content-Type": "application/json", **headers}


def recorded_batches(instance: Instance) -> list[int]:
    path = instance.instance_dir / "opt_ml" / "model" / "batches.txt"
    return [int(line) for line in path.read_text().split()]


def test_concurrent_requests_share_batches_and_get_their_own_answers(serve, tmp_path):
    url = archive(tmp_path, {"code/inference.py": RECORDING})
    instance = serve(framework="sklearn", environment=BATCHING, model_data_url=url)
    requests = [json_request([[float(i)]], **{"X-Amzn-SageMaker-Custom-Attributes": f"id={i}"})
                for i in range(12)]  # fmt: skip
    responses = concurrently(instance, requests)
    sizes = recorded_batches(instance)
    assert sum(sizes) == 12  # each request predicted once
    assert max(sizes) > 1
    assert max(sizes) <= 4
    for i, response in enumerate(responses):
        assert response.status == 200, response.body
        answer = response.json()
        [[value, batch_size]] = answer["rows"]
        assert value == 2.0 * i
        assert batch_size in sizes
        assert answer["attributes"] == f"id={i}"
        assert response.headers["x-amzn-sagemaker-custom-attributes"] == f"seen=id={i}"
    assert any("Batching up to 4 concurrent requests" in line for line in instance.logs())


def test_a_bad_request_among_concurrent_ones_fails_alone(serve, tmp_path):
    url = archive(tmp_path, {"code/inference.py": RECORDING})
    instance = serve(framework="sklearn", environment=BATCHING, model_data_url=url)
    requests = [json_request([[float(i)]]) for i in range(8)]
    requests[3] = (b"[[not json", {"Content-Type": "application/json"})
    requests[5] = json_request([[-1.0]])  # decodes, then fails predict_fn
    responses = concurrently(instance, requests)
    assert responses[3].status == 500 and b"JSONDecodeError" in responses[3].body
    assert responses[5].status == 500 and b"ValueError: negative input" in responses[5].body
    for i in (0, 1, 2, 4, 6, 7):
        assert responses[i].status == 200, responses[i].body
        assert response_value(responses[i]) == 2.0 * i
    assert response_value(instance.invoke(b"[[21.0]]", "application/json")) == 42.0


def response_value(response: Response) -> float:
    [[value, _]] = response.json()["rows"]
    return float(value)


def test_xgboost_defaults_answer_concurrent_csv_requests(serve, trained, tmp_path):
    url = archive(tmp_path, {"xgboost-model": trained.model_file})
    instance = serve(model_data_url=url, environment=BATCHING)
    blocks = [trained.features[i : i + 1 + i % 3] for i in range(16)]
    requests = [(csv_rows(block), {"Content-Type": "text/csv"}) for block in blocks]
    requests[7] = (b"1,2,3", {"Content-Type": "text/csv"})  # the wrong width: alone, 400
    responses = concurrently(instance, requests)
    assert responses[7].status == 400
    for i, block in enumerate(blocks):
        if i != 7:
            assert responses[i].status == 200, responses[i].body
            np.testing.assert_allclose(
                predictions(responses[i].body), trained.expected(block), rtol=1e-6
            )
    assert any("Batching up to 4 concurrent requests" in line for line in instance.logs())


def test_bad_batch_settings_stop_the_instance_from_starting(serve, tmp_path):
    instance: Instance = serve(framework="sklearn", wait=False, environment={
        "SAGEMAKER_TS_BATCH_SIZE": "4", "SAGEMAKER_TS_MAX_BATCH_DELAY": "-5"})  # fmt: skip
    assert instance.wait_exit() == 1
    failure = instance.exit_event()["failure"]
    assert failure.startswith("ClientError: SAGEMAKER_TS_MAX_BATCH_DELAY must be")
    assert "'-5'" in failure

