"""The built-in XGBoost server: content types, errors, keep-alive, limits and stopping."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from .conftest import archive


def csv_rows(rows: np.ndarray) -> bytes:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in rows).encode()


@pytest.fixture
def xgb_instance(serve, trained, tmp_path):
    url = archive(tmp_path, {"xgboost-model": trained.model_file})
    return serve(model_data_url=url, workers=2)


def predictions(body: bytes) -> np.ndarray:
    return np.array([float(line) for line in body.decode().splitlines()])


def test_startup_reports_statuses_and_health(xgb_instance):
    assert xgb_instance.statuses() == ["Downloading", "Loading", "InService"]
    assert xgb_instance.request("GET", "/ping").status == 200
    parameters = xgb_instance.request("GET", "/execution-parameters").json()
    assert parameters == {
        "MaxConcurrentTransforms": 2,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 6,
    }


def test_csv_one_row_and_many_rows_predict_like_the_booster(xgb_instance, trained):
    one = xgb_instance.invoke(csv_rows(trained.features[:1]))
    assert one.status == 200
    assert one.headers["content-type"] == "text/csv"
    np.testing.assert_allclose(
        predictions(one.body), trained.expected(trained.features[:1]), rtol=1e-6
    )
    many = xgb_instance.invoke(csv_rows(trained.features[:50]) + b"\n")
    assert many.status == 200
    got = predictions(many.body)
    assert got.shape == (50,)
    np.testing.assert_allclose(got, trained.expected(trained.features[:50]), rtol=1e-6)


def test_json_and_jsonlines_accept(xgb_instance, trained):
    rows = trained.features[:3]
    expected = trained.expected(rows)
    as_json = xgb_instance.invoke(csv_rows(rows), Accept="application/json")
    assert as_json.headers["content-type"] == "application/json"
    scores = [p["score"] for p in as_json.json()["predictions"]]
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    lines = xgb_instance.invoke(csv_rows(rows), Accept="application/jsonlines")
    records = [json.loads(line) for line in lines.body.decode().splitlines()]
    np.testing.assert_allclose([r["score"] for r in records], expected, rtol=1e-6)
    anything = xgb_instance.invoke(csv_rows(rows), Accept="*/*")
    assert anything.headers["content-type"] == "text/csv"


def test_libsvm_rows_with_and_without_labels(xgb_instance, trained):
    row = trained.features[0]
    tokens = " ".join(f"{i}:{float(v)!r}" for i, v in enumerate(row) if v != 0)
    body = f"1 {tokens}\n{tokens}\n".encode()
    response = xgb_instance.invoke(body, "text/libsvm")
    assert response.status == 200
    expected = trained.expected(np.stack([row, row]))
    np.testing.assert_allclose(predictions(response.body), expected, rtol=1e-6)


def test_refusals_have_the_containers_statuses(xgb_instance, trained):
    assert xgb_instance.invoke(b"1,abc,3").status == 415
    assert xgb_instance.invoke(b"{}", "application/json").status == 415
    assert xgb_instance.invoke(csv_rows(trained.features[:1]), Accept="image/png").status == 406
    empty = xgb_instance.invoke(b"")
    assert (empty.status, empty.body) == (204, b"")
    wrong_width = xgb_instance.invoke(b"1,2,3")
    assert wrong_width.status == 400
    assert b"Unable to evaluate payload" in wrong_width.body
    assert xgb_instance.request("GET", "/nothing").status == 404
    # The workers survived all of it.
    assert xgb_instance.invoke(csv_rows(trained.features[:1])).status == 200


def test_missing_values_are_nan(xgb_instance, trained):
    row = [repr(float(v)) for v in trained.features[0]]
    row[3] = ""
    response = xgb_instance.invoke(",".join(row).encode())
    assert response.status == 200
    with_nan = trained.features[:1].copy()
    with_nan[0, 3] = np.nan
    np.testing.assert_allclose(predictions(response.body), trained.expected(with_nan), rtol=1e-6)


def test_two_hundred_requests_on_one_connection(xgb_instance, trained):
    body = csv_rows(trained.features[:1])
    expected = trained.expected(trained.features[:1])
    connection = xgb_instance.connection()
    try:
        connection.connect()
        local = connection.sock.getsockname()
        for _ in range(200):
            response = xgb_instance.request(
                "POST", "/invocations", body, {"Content-Type": "text/csv"}, connection
            )
            assert response.status == 200
            np.testing.assert_allclose(predictions(response.body), expected, rtol=1e-6)
        assert connection.sock.getsockname() == local  # never reconnected
    finally:
        connection.close()


def test_bodies_over_the_payload_limit_get_413(serve, trained, tmp_path):
    url = archive(tmp_path, {"xgboost-model": trained.model_file})
    instance = serve(model_data_url=url, environment={"SAGEMAKER_MAX_PAYLOAD_IN_MB": "1"})
    too_big = csv_rows(np.repeat(trained.features[:1], 3000, axis=0))
    assert len(too_big) > 1024 * 1024
    response = instance.invoke(too_big)
    assert response.status == 413
    assert instance.request("GET", "/execution-parameters").json()["MaxPayloadInMB"] == 1
    assert instance.invoke(csv_rows(trained.features[:1])).status == 200


def test_sigterm_drains_and_exits_cleanly(xgb_instance, trained):
    idle = socket.create_connection(("127.0.0.1", xgb_instance.port))
    try:
        assert xgb_instance.stop() == 0
        assert idle.recv(1) == b""  # the idle keep-alive connection was closed
    finally:
        idle.close()
    assert xgb_instance.exit_event()["code"] == 0
    assert xgb_instance.exit_event()["failure"] is None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", xgb_instance.port), timeout=2).close()


def test_ensemble_of_model_files_is_averaged(serve, trained, tmp_path):
    import xgboost

    params = {"objective": "binary:logistic", "max_depth": 2, "nthread": 1}
    other = xgboost.train(params, xgboost.DMatrix(trained.features, trained.labels), 5)
    files = {
        "xgboost-model-0": trained.model_file,
        "xgboost-model-1": bytes(other.save_raw("ubj")),
        ".hidden": b"x",
    }
    instance = serve(model_data_url=archive(tmp_path, files))
    rows = trained.features[:4]
    expected = (trained.expected(rows) + other.predict(xgboost.DMatrix(rows))) / 2
    np.testing.assert_allclose(
        predictions(instance.invoke(csv_rows(rows)).body), expected, rtol=1e-6
    )


def test_uncompressed_model_prefix(serve, trained, tmp_path):
    prefix = tmp_path / "s3" / "uncompressed"
    prefix.mkdir(parents=True)
    (prefix / "xgboost-model").write_bytes(trained.model_file)
    instance = serve(model_data_url=str(prefix), model_data_compressed=False)
    response = instance.invoke(csv_rows(trained.features[:2]), Accept="application/json")
    scores = [p["score"] for p in response.json()["predictions"]]
    np.testing.assert_allclose(scores, trained.expected(trained.features[:2]), rtol=1e-6)
