"""The model server in multi-model mode: models under a prefix, loaded on demand per target."""

from __future__ import annotations

import concurrent.futures
import textwrap
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
import xgboost
from host_helpers import make_tar_gz

from modelyard.runtime.serving.loading import HEADER, Loading

TARGET = "X-Amzn-SageMaker-Target-Model"


@pytest.fixture(scope="module")
def boosters() -> dict[str, xgboost.Booster]:
    from sklearn.datasets import load_breast_cancer

    features, labels = load_breast_cancer(return_X_y=True)
    data = xgboost.DMatrix(features.astype(np.float32), labels)
    params = {"objective": "binary:logistic", "max_depth": 3, "nthread": 1}
    return {
        name: xgboost.train({**params, "seed": seed}, data, rounds)
        for name, seed, rounds in (("a", 0, 2), ("b", 1, 8), ("team/c", 2, 30))
    }


def put_model(prefix: Path, key: str, files: dict[str, bytes | str]) -> Path:
    """``prefix/key`` as a model.tar.gz of ``files``."""
    source = prefix.parent / "sources" / key
    for relative, content in files.items():
        path = source / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    target = prefix / key
    target.parent.mkdir(parents=True, exist_ok=True)
    return make_tar_gz(source, target)


@pytest.fixture
def prefix(tmp_path: Path, boosters: dict[str, xgboost.Booster]) -> Path:
    root = tmp_path / "bucket" / "models"
    for name, booster in boosters.items():
        put_model(root, f"{name}.tar.gz", {"xgboost-model": bytes(booster.save_raw("ubj"))})
    # an archive beside the prefix: a TargetModel that climbs out must never reach it
    secret = {"xgboost-model": bytes(boosters["a"].save_raw("ubj"))}
    put_model(tmp_path / "bucket", "secret.tar.gz", secret)
    return root


@pytest.fixture
def rows(trained: Any) -> tuple[np.ndarray, bytes]:
    x = trained.features[:5]
    return x, "\n".join(",".join(repr(float(v)) for v in row) for row in x).encode()


def predictions(body: bytes) -> np.ndarray:
    return np.array([float(line) for line in body.decode().splitlines()])


def assert_predicts(answer: Any, booster: xgboost.Booster, x: np.ndarray) -> None:
    assert answer.status == 200, answer.body
    wanted = booster.predict(xgboost.DMatrix(x))
    np.testing.assert_allclose(predictions(answer.body), wanted, rtol=1e-5)


def loads(instance: Any, name: str, expected: int) -> int:
    """How many times the log says ``name`` was loaded, once it says so ``expected`` times (or
    after 10 s): worker output reaches the log a little after the answer that caused it."""
    deadline = time.monotonic() + 10
    while True:
        count = sum(1 for line in instance.logs() if f"Loaded model {name} in " in line)
        if count >= expected or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


def test_each_target_answers_with_its_own_model(serve, prefix, boosters, rows):
    x, body = rows
    instance = serve(model_data_url=str(prefix), multi_model=True)
    assert not (instance.instance_dir / "opt_ml" / "model").exists()  # nothing at startup
    for name, booster in boosters.items():
        assert_predicts(instance.invoke(body, **{TARGET: f"{name}.tar.gz"}), booster, x)
    assert predictions(instance.invoke(body, **{TARGET: "a.tar.gz"}).body).tolist() != predictions(
        instance.invoke(body, **{TARGET: "b.tar.gz"}).body).tolist()
    models = instance.instance_dir / "opt_ml" / "models"
    assert sorted(p.name.split("-")[0] for p in models.iterdir() if not p.name.startswith(".")) == [
        "a.tar.gz", "b.tar.gz", "team_c.tar.gz"]
    assert all((p / "model" / "xgboost-model").is_file() for p in models.iterdir() if p.is_dir())
    # the later calls were cache hits
    assert [loads(instance, f"{n}.tar.gz", 1) for n in boosters] == [1, 1, 1]


def test_caller_errors_are_marked_for_the_router(serve, prefix, rows):
    _, body = rows
    instance = serve(model_data_url=f"file://{prefix}/", multi_model=True)
    missing = instance.invoke(body)
    assert missing.status == 400 and "TargetModel is required" in missing.body.decode()
    assert missing.headers["x-modelyard-error-code"] == "ValidationError"
    unknown = instance.invoke(body, **{TARGET: "nope.tar.gz"})
    assert unknown.status == 400 and unknown.headers["x-modelyard-error-code"] == "ValidationError"
    assert unknown.body.decode().startswith(
        f"Failed to download model data(path: {prefix}/nope.tar.gz)")
    for name in ("../secret.tar.gz", "/secret.tar.gz", "a/../../secret.tar.gz", "./a.tar.gz",
                 "a//b"):
        refused = instance.invoke(body, **{TARGET: name})
        assert refused.status == 400, name
        assert refused.headers["x-modelyard-error-code"] == "ValidationError"
        assert "TargetModel" in refused.body.decode()
    assert not any("Downloaded model" in line for line in instance.logs())


def test_workers_download_a_model_once(serve, prefix, rows):
    _, body = rows
    instance = serve(model_data_url=str(prefix), multi_model=True, workers=2)

    def call(_: int) -> int:
        return instance.invoke(body, **{TARGET: "b.tar.gz"}).status

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(call, range(16))) == {200}
    assert 1 <= loads(instance, "b.tar.gz", 1) <= 2  # each worker holds its own copy
    downloads = [line for line in instance.logs() if "Downloaded model b.tar.gz" in line]
    assert len(downloads) == 1, instance.logs()
    models = instance.instance_dir / "opt_ml" / "models"
    assert [p.name.split("-")[0] for p in models.iterdir() if p.is_dir()] == ["b.tar.gz"]


def test_memory_bound_evicts_the_least_recently_used(serve, prefix, boosters, rows):
    x, body = rows
    # smaller than any one model: a worker keeps only the model it loaded last
    env = {"MODELYARD_MULTI_MODEL_MEMORY_MB": "0.001"}
    instance = serve(model_data_url=str(prefix), multi_model=True, environment=env)
    for name in ("a", "a", "b", "a", "b", "b"):
        assert_predicts(instance.invoke(body, **{TARGET: f"{name}.tar.gz"}), boosters[name], x)
    assert (loads(instance, "a.tar.gz", 2), loads(instance, "b.tar.gz", 2)) == (2, 2)
    evicted = [line.split("Evicted model ")[1].split()[0]
               for line in instance.logs() if "Evicted model" in line]
    assert evicted == ["a.tar.gz", "b.tar.gz", "a.tar.gz"]
    [listed] = instance.request("GET", "/models").json()["models"]
    assert listed["modelName"] == "b.tar.gz" and listed["memoryBytes"] > 0


def test_a_generous_bound_keeps_models_and_the_routes_manage_them(serve, prefix, rows):
    _, body = rows
    instance = serve(model_data_url=str(prefix), multi_model=True)
    for name in ("a.tar.gz", "team/c.tar.gz", "a.tar.gz"):
        assert instance.invoke(body, **{TARGET: name}).status == 200
    listed = [m["modelName"] for m in instance.request("GET", "/models").json()["models"]]
    assert listed == ["a.tar.gz", "team/c.tar.gz"]  # most recently used first
    one = instance.request("GET", "/models/" + quote("team/c.tar.gz", safe=""))
    assert one.status == 200 and one.json()["modelUrl"].endswith("models/team/c.tar.gz")
    assert instance.request("DELETE", "/models/a.tar.gz").status == 200
    assert instance.request("GET", "/models/a.tar.gz").status == 404
    assert instance.invoke(body, **{TARGET: "a.tar.gz"}).status == 200
    assert loads(instance, "a.tar.gz", 2) == 2
    assert not any("Evicted" in line for line in instance.logs())


def test_each_answer_says_how_its_model_was_made_ready(serve, prefix, rows):
    _, body = rows
    env = {"MODELYARD_MULTI_MODEL_MEMORY_MB": "0.001"}  # room for one model: b evicts a
    instance = serve(model_data_url=str(prefix), multi_model=True, environment=env)
    said = [Loading.parse(instance.invoke(body, **{TARGET: name}).headers[HEADER.decode()].encode())
            for name in ("a.tar.gz", "a.tar.gz", "b.tar.gz")]
    first, again, other = said
    assert first is not None and not first.hit and first.download > 0 and first.load > 0
    assert first.unload == 0  # nothing to evict yet
    assert again == Loading()  # a hit
    assert other is not None and not other.hit and other.unload > 0  # a was evicted for it


def test_cache_disabled_unloads_after_each_invocation(serve, prefix, boosters, rows):
    x, body = rows
    instance = serve(model_data_url=str(prefix), multi_model=True, model_cache=False)
    for _ in range(3):
        assert_predicts(instance.invoke(body, **{TARGET: "b.tar.gz"}), boosters["b"], x)
    assert loads(instance, "b.tar.gz", 3) == 3
    assert sum("Downloaded model b.tar.gz" in line for line in instance.logs()) == 1
    assert instance.request("GET", "/models").json() == {"models": []}


def test_each_model_uses_its_own_inference_script(serve, tmp_path, rows):
    _, body = rows
    prefix = tmp_path / "scripts"

    def script(word: str) -> str:
        return textwrap.dedent(f"""
            import helper

            def model_fn(model_dir):
                return open(model_dir + "/weights.txt").read().strip()

            def predict_fn(data, model):
                return helper.shout(model + " {word}")

            def output_fn(prediction, accept):
                return prediction, "text/plain"
        """)

    for name, how in (("one", "upper"), ("two", "lower")):
        helper = f"def shout(text):\n    return text.{how}()\n"  # same module name, own code
        files = {"weights.txt": f"Weights-{name}", "code/inference.py": script(name),
                 "code/helper.py": helper}
        put_model(prefix, f"{name}.tar.gz", files)
    broken = "def model_fn(model_dir):\n    raise RuntimeError('no')\n"
    put_model(prefix, "broken.tar.gz", {"code/inference.py": broken})
    instance = serve(model_data_url=str(prefix), multi_model=True)
    assert instance.invoke(body, **{TARGET: "one.tar.gz"}).body == b"WEIGHTS-ONE ONE"
    assert instance.invoke(body, **{TARGET: "two.tar.gz"}).body == b"weights-two two"
    assert instance.invoke(body, **{TARGET: "one.tar.gz"}).body == b"WEIGHTS-ONE ONE"
    failed = instance.invoke(body, **{TARGET: "broken.tar.gz"})
    assert failed.status == 500 and "x-modelyard-error-code" not in failed.headers
    words = "Failed to load model broken.tar.gz: model_fn failed: RuntimeError: no"
    assert words in failed.body.decode()
    assert instance.invoke(body, **{TARGET: "two.tar.gz"}).status == 200  # the worker still serves


def test_a_bad_memory_setting_fails_the_instance(serve, prefix):
    env = {"MODELYARD_MULTI_MODEL_MEMORY_MB": "lots"}
    instance = serve(model_data_url=str(prefix), multi_model=True, environment=env, wait=False)
    assert instance.wait_exit() == 1
    failure = instance.exit_event()["failure"]
    assert "MODELYARD_MULTI_MODEL_MEMORY_MB must be a positive number" in failure
