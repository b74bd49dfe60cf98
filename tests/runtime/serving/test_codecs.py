"""The request parsers and response encoders, in process."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from modelyard.runtime.serving import codecs
from modelyard.runtime.serving.errors import UnsupportedAccept, UnsupportedContentType
from modelyard.runtime.serving.float_text import float32_text
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


def _careful(body: bytes) -> np.ndarray | str:
    try:
        return codecs._parse_csv_slowly(body.strip(), np.float32)
    except UnsupportedContentType:
        return "415"


def _parsed(body: bytes) -> np.ndarray | str:
    try:
        return codecs.parse_csv(body)
    except UnsupportedContentType:
        return "415"


def test_large_csv_bodies_read_like_the_careful_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = np.random.default_rng(0).normal(size=(20_000, 6)).astype(np.float32)
    lines = [",".join(repr(float(v)) for v in row).encode() for row in rows]
    body = b"\n".join(lines) + b"\n"
    assert len(body) >= codecs._BULK_BYTES
    with monkeypatch.context() as patched:
        patched.setattr(codecs, "_parse_csv_slowly", lambda *_: pytest.fail("bulk reader unused"))
        assert np.array_equal(codecs.parse_csv(body), rows)
        assert codecs.parse_csv(body.replace(b"\n", b"\r\n")).shape == (20_000, 6)
    odd = {
        "missing values": b"\n".join([b"1,,3,4,5,", *lines[1:]]),
        "blank line": b"\n".join([*lines[:5], b"", *lines[5:]]),
        "short row": b"\n".join([*lines[:5], b"1,2", *lines[5:]]),
        "long row": b"\n".join([*lines[:5], lines[5] + b",7", *lines[6:]]),
        "text": b"\n".join([*lines[:5], b"1,2,3,4,5,x", *lines[6:]]),
        "quoted": b"\n".join([b'"1",2,3,4,5,6', *lines[1:]]),
        "NaN and infinities": b"\n".join([b"nan,inf,-inf,1e5,2,3", *lines[1:]]),
        "one column with a blank line": b"\n".join([b"1.5", b"", b"2.5"] * 40_000),
    }
    for name, variant in odd.items():
        got, expected = _parsed(variant), _careful(variant)
        if isinstance(expected, str):
            assert got == expected, name
        else:
            assert isinstance(got, np.ndarray), name
            assert np.array_equal(got, expected, equal_nan=True), name


def test_arrow_columns_with_chunks_offsets_and_nulls() -> None:
    pa = pytest.importorskip("pyarrow")
    column = pa.chunked_array([pa.array([1.0, None], pa.float32()),
                               pa.array([9.0, None, 2.0, 3.0], pa.float32()).slice(1)])
    table = pa.table({"a": column, "b": pa.array([4.0, 5.0, None, 7.0, 8.0], pa.float32())})
    array = codecs._table_to_array(table, np.float32)
    expected = [[1, 4], [np.nan, 5], [np.nan, np.nan], [2, 7], [3, 8]]
    np.testing.assert_array_equal(array, np.array(expected, np.float32))


def _str_lines(array: np.ndarray) -> bytes:
    rows = array.reshape(len(array), -1)
    return "".join(",".join(map(str, row)) + "\n" for row in rows).encode()


def test_float32_text_is_what_str_writes() -> None:
    rng = np.random.default_rng(1)
    low, high = np.float32(1e-4).view(np.uint32), np.float32(1e6).view(np.uint32)
    samples = [
        rng.random(20_000).astype(np.float32),  # probabilities
        # every positional layout
        rng.integers(low, high, 50_000, dtype=np.uint32).view(np.float32),
        (10.0 ** rng.uniform(-8, 9, 20_000) * rng.choice([-1, 1], 20_000)).astype(np.float32),
        # short decimals and whole numbers
        np.round(rng.normal(0, 1000, 20_000), 2).astype(np.float32),
        rng.integers(0, 2**32, 20_000, dtype=np.uint64).astype(np.uint32).view(np.float32),
    ]
    powers = np.array([2.0**k for k in range(-14, 21)] + [10.0**k for k in range(-5, 7)],
                      np.float32)
    samples.append(np.concatenate([powers, np.nextafter(powers, np.float32(0)),
                                   np.nextafter(powers, np.float32(np.inf)), -powers]))
    samples.append(np.array([0, -0.0, np.nan, np.inf, -np.inf, 0.1, 0.5, 2e-4, 5e5, 499999.97,
                             1e-4, 123456.0, 7.0], np.float32))
    for values in samples:
        assert float32_text(values) == _str_lines(values)
    softprob = rng.random((5_000, 3)).astype(np.float32)
    softprob[7, 1], softprob[9, 2] = np.nan, 1e-9
    assert float32_text(softprob) == _str_lines(softprob)
    assert codecs.csv_bytes(softprob) == _str_lines(softprob)
    assert codecs.csv_bytes(np.array([0.5, 0.25], np.float64)) == b"0.5\n0.25\n"
