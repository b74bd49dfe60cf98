"""The request parsers and response encoders, in process."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from modelyard.runtime.serving import codecs
from modelyard.runtime.serving.errors import UnsupportedAccept, UnsupportedContentType
from modelyard.runtime.serving.frameworks import xgboost as xgboost_defaults


def test_csv_shapes_and_line_endings():
    assert codecs.parse_csv(b"1,2.5,3").tolist() == [[1.0, 2.5, 3.0]]
    assert codecs.parse_csv(b"1,2\r\n3,4\r\n").tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert codecs.parse_csv(b"1,2\n3,4\n").dtype == np.float32


def test_csv_missing_values_and_refusals():
    parsed = codecs.parse_csv(b"1,,3\n4,5,")
    assert np.isnan(parsed[0, 1]) and np.isnan(parsed[1, 2])
    assert parsed[1, :2].tolist() == [4.0, 5.0]
    for bad in (b"1,abc", b"1,2\n3", b"1,2,3\n4\n5,6", b"  "):
        with pytest.raises(UnsupportedContentType):
            codecs.parse_csv(bad)


def test_accept_negotiation():
    assert codecs.choose_accept("text/csv; q=0.9, application/json", codecs.ENCODINGS) == codecs.CSV
    assert codecs.choose_accept("image/png, application/json", codecs.ENCODINGS) == codecs.JSON
    with pytest.raises(UnsupportedAccept):
        codecs.choose_accept("image/png", codecs.ENCODINGS)


def test_toolkit_decode_and_encode():
    buffer = io.BytesIO()
    np.save(buffer, np.arange(4.0).reshape(2, 2))
    assert codecs.decode(buffer.getvalue(), "application/x-npy").tolist() == [[0, 1], [2, 3]]
    assert (
        codecs.decode(b"[[1, 2]]", "application/json; charset=utf-8", np.float32).dtype
        == np.float32
    )
    with pytest.raises(UnsupportedContentType):
        codecs.decode(b"x", "image/png")
    body, kind = codecs.encode(np.array([[1.5, 2.0]]), "text/csv")
    assert (body, kind) == (b"1.5,2.0\n", "text/csv")
    assert json.loads(codecs.encode(np.array([1, 2]), "application/json")[0]) == [1, 2]


def test_xgboost_output_formats():
    prediction = np.array([0.25, 0.5], dtype=np.float32)
    assert xgboost_defaults.output_fn(prediction, "text/csv") == (b"0.25\n0.5\n", "text/csv")
    body, _ = xgboost_defaults.output_fn(prediction, "application/json")
    assert json.loads(body) == {"predictions": [{"score": 0.25}, {"score": 0.5}]}
    softprob = np.array([[0.1, 0.9]], dtype=np.float32)
    assert xgboost_defaults.output_fn(softprob, "text/csv")[0] == b"0.1,0.9\n"
    body, _ = xgboost_defaults.output_fn(softprob, "application/json")
    assert json.loads(body) == {"predictions": [{"score": [0.1, 0.9]}]}


def test_rectangular_csv_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelyard.runtime.serving import codecs as module

    def slow(*_args: object) -> None:
        raise AssertionError("a plain numeric CSV must not need the field-by-field parser")

    monkeypatch.setattr(module, "_parse_csv_slowly", slow)
    body = "\n".join(",".join(str(float(r * 10 + c)) for c in range(20)) for r in range(100)).encode()
    parsed = module.parse_csv(body)
    assert parsed.shape == (100, 20) and parsed[7, 3] == 73.0
    assert module.parse_csv(b"1,2\n3,4\n").tolist() == [[1.0, 2.0], [3.0, 4.0]]
