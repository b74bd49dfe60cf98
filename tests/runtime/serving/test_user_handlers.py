"""User handler modules: the toolkit's resolution rules, failures, crashes and requirements."""

from __future__ import annotations

import http.client
import json
import time

import joblib
import numpy as np
import pytest
from host_helpers import make_tar_gz, tiny_wheel, write_code
from sklearn.linear_model import LogisticRegression

from .conftest import archive

FOUR_HANDLERS = """\
import json, os

def model_fn(model_dir):
    with open(os.path.join(model_dir, "factor.txt")) as f:
        return float(f.read())

def input_fn(body, content_type):
    assert isinstance(body, str), type(body)  # JSON arrives as text
    return json.loads(body)

def predict_fn(data, model):
    return [x * model for x in data]

def output_fn(prediction, accept):
    return json.dumps({"doubled": prediction}), "application/json"
"""

WITH_CONTEXT = """\
def model_fn(model_dir, context):
    return context.system_properties["model_dir"]

def predict_fn(data, model, context):
    if context.custom_attributes:
        context.set_custom_attributes("seen=" + context.custom_attributes)
    return data

def input_fn(body, content_type):
    return body.upper()

def output_fn(prediction, accept):
    return prediction
"""

TRANSFORM = """\
def model_fn(model_dir):
    return "m"

def transform_fn(model, body, content_type, accept):
    return f"{model}|{body}|{content_type}|{accept}".encode(), "text/plain"
"""

CRASHY = """\
import os

def model_fn(model_dir):
    return None

def transform_fn(model, body, content_type, accept):
    if body == b"raise":
        raise ValueError("bad thing")
    if body == b"exit":
        os._exit(1)
    return b"ok"
"""


def test_sklearn_model_joblib_is_the_default(serve, tmp_path, trained):
    model = LogisticRegression(max_iter=5000).fit(trained.features, trained.labels)
    joblib.dump(model, tmp_path / "model.joblib")
    url = archive(tmp_path, {"model.joblib": (tmp_path / "model.joblib").read_bytes()})
    instance = serve(framework="sklearn", model_data_url=url)
    rows = trained.features[:5]
    response = instance.invoke(json.dumps(rows.tolist()).encode(), "application/json")
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == model.predict(rows.astype(np.float32)).tolist()
    as_csv = instance.invoke(
        json.dumps(rows.tolist()).encode(), "application/json", Accept="text/csv"
    )
    assert as_csv.body.decode().split() == [str(v) for v in model.predict(rows)]


def test_four_user_handlers_replace_the_defaults(serve, tmp_path):
    url = archive(tmp_path, {"factor.txt": "2", "code/inference.py": FOUR_HANDLERS})
    instance = serve(framework="sklearn", model_data_url=url)
    response = instance.invoke(b"[1, 2.5]", "application/json")
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"doubled": [2.0, 5.0]}
    assert "x-amzn-sagemaker-custom-attributes" not in response.headers


def test_handlers_with_context_and_custom_attributes(serve, tmp_path):
    url = archive(tmp_path, {"code/handlers.py": WITH_CONTEXT})
    instance = serve(
        framework="sklearn",
        model_data_url=url,
        environment={
            "SAGEMAKER_PROGRAM": "handlers.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        },
    )
    response = instance.invoke(
        b"abc", "text/csv", Accept="text/plain", **{"X-Amzn-SageMaker-Custom-Attributes": "k=v"}
    )
    assert response.status == 200
    assert response.body == b"ABC"
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["x-amzn-sagemaker-custom-attributes"] == "seen=k=v"
    plain = instance.invoke(b"abc", "text/csv")
    assert "x-amzn-sagemaker-custom-attributes" not in plain.headers


def test_transform_fn_with_submitted_code_and_no_model_data(serve, tmp_path):
    code = write_code(tmp_path / "src", {"serve.py": TRANSFORM})
    tarball = make_tar_gz(code, tmp_path / "sourcedir.tar.gz")
    env = {"SAGEMAKER_PROGRAM": "serve.py", "SAGEMAKER_SUBMIT_DIRECTORY": str(tarball)}
    instance = serve(framework="xgboost", environment=env)
    response = instance.invoke(b"1,2", "text/csv")  # the user's transform_fn, not the default
    assert response.status == 200
    assert response.body == b"m|1,2|text/csv|text/csv"
    assert response.headers["content-type"] == "text/plain"


def test_transform_fn_with_predict_fn_fails_to_start(serve, tmp_path):
    module = TRANSFORM + "\ndef predict_fn(data, model):\n    return data\n"
    url = archive(tmp_path, {"code/inference.py": module})
    instance = serve(framework="sklearn", model_data_url=url, wait=False)
    assert instance.wait_exit() == 1
    failure = instance.exit_event()["failure"]
    assert failure.startswith("ClientError: transform_fn cannot be defined together")
    assert "predict_fn" in failure
    assert instance.statuses() == ["Downloading", "Loading"]


def test_missing_model_fn_fails_with_the_reason(serve, tmp_path):
    url = archive(tmp_path, {"weights.bin": b"\0"})
    instance = serve(framework="sklearn", model_data_url=url, wait=False)
    assert instance.wait_exit() == 1
    failure = instance.exit_event()["failure"]
    assert failure.startswith("ClientError: model_fn failed: NotImplementedError:")
    assert "model_fn" in failure
    assert any("NotImplementedError" in line for line in instance.logs())  # the traceback


def test_a_raising_handler_gets_500_and_the_worker_serves_on(serve, tmp_path):
    instance = serve(model_data_url=archive(tmp_path, {"code/inference.py": CRASHY}))
    failed = instance.invoke(b"raise", "application/octet-stream")
    assert failed.status == 500
    assert b"Traceback" in failed.body and b"ValueError: bad thing" in failed.body
    assert instance.invoke(b"fine", "application/octet-stream").body == b"ok"


def test_a_worker_that_exits_is_replaced(serve, tmp_path):
    instance = serve(model_data_url=archive(tmp_path, {"code/inference.py": CRASHY}))
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        instance.invoke(b"exit", "application/octet-stream")
    deadline = time.monotonic() + 60
    while not any("serving again" in line for line in instance.logs()):
        assert time.monotonic() < deadline, instance.logs()
        time.sleep(0.1)
    assert any("exited with code 1; starting a replacement" in line for line in instance.logs())
    assert instance.invoke(b"fine", "application/octet-stream").body == b"ok"
    assert instance.process.poll() is None


def test_requirements_are_installed_for_the_workers(serve, tmp_path):
    wheel = tiny_wheel(tmp_path / "wheels")
    module = (
        "import sys, tinypkg\n"
        "def model_fn(model_dir):\n    return tinypkg.VALUE\n"
        "def transform_fn(model, body, content_type, accept):\n"
        "    return f'{model} {sys.executable}'\n"
    )
    files = {"code/inference.py": module, "code/requirements.txt": f"{wheel}\n"}
    instance = serve(model_data_url=archive(tmp_path, files), environment={"PIP_NO_INDEX": "1"})
    value, executable = instance.invoke(b"x", "text/plain").body.decode().split()
    assert value == "42"
    assert executable.startswith(str(tmp_path / "home" / "envs"))
    assert any("Successfully installed tinypkg" in line for line in instance.logs())
