"""The transform host end to end: its bulk MultiRecord path against its record-by-record path.

Each job runs twice through a real model server, once as shipped and once with the bulk
splitter replaced by ``pack(lines(...))``; the ``.out`` objects must be the same bytes. The
answers are ``application/json`` (one document per request), so the outputs also show where
each request began and ended.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from host_helpers import make_tar_gz

from modelyard.runtime.transform.plan import TransformPlan

xgboost = pytest.importorskip("xgboost")

FEATURES = 5
RECORD_PATH = (
    "import sys\n"
    "from modelyard.runtime.transform import host, records\n"
    "def by_record(stream, limit):\n"
    "    return records.pack(records.lines(stream), limit, single=False)\n"
    "records.line_chunks = by_record\n"
    "sys.exit(host.cli(sys.argv[1:]))\n"
)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    root = tmp_path_factory.mktemp("model")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, FEATURES))
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
                            xgboost.DMatrix(x, (x[:, 0] > 0).astype(int)), 10)
    (root / "model").mkdir()
    (root / "model" / "xgboost-model").write_bytes(bytes(booster.save_raw("ubj")))
    return booster, make_tar_gz(root / "model", root / "model.tar.gz")


def rows(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, FEATURES)).round(4)


def csv(x: np.ndarray, end: bytes = b"\n") -> bytes:
    return b"".join(",".join(map(str, row)).encode() + end for row in x)


def transform(
    root: Path, name: str, model: Path, record_path: bool, **fields: Any
) -> dict[str, Any]:
    """Run one host on ``root/in``; its exit event, final progress line and outputs."""
    host_dir = root / name
    plan = {
        "job_name": name,
        "job_arn": f"arn:aws:sagemaker:us-east-1:000000000000:transform-job/{name}",
        "host": "algo-1", "host_index": 0, "host_count": 1, "model_name": "m",
        "framework": "xgboost", "model_data_url": str(model), "model_data_compressed": True,
        "environment": {}, "instance_type": "ml.m5.large", "input_uri": str(root / "in") + "/",
        "output_uri": str(root / f"out-{name}"), "content_type": "text/csv", "split_type": "Line",
        "accept": "application/json", "assemble_with": "Line", "batch_strategy": "MultiRecord",
        "max_payload_mb": 1, "max_concurrent": 2, **fields,
    }
    TransformPlan(**plan).write(host_dir)
    command = ["-c", RECORD_PATH] if record_path else ["-m", "modelyard.runtime.transform"]
    env = {**os.environ, "MODELYARD_HOME": str(root / "home")}
    subprocess.run([sys.executable, *command, str(host_dir)], env=env, timeout=180, check=False)
    events = [json.loads(line) for line in (host_dir / "events.jsonl").read_text().splitlines()]
    logs = [json.loads(line)["m"] for line in (host_dir / "logs.jsonl").read_text().splitlines()]
    out = root / f"out-{name}"
    return {
        "exit": [e for e in events if e["event"] == "exit"][-1],
        "progress": [m for m in logs if "progress records=" in m][-1:],
        "outputs": {
            path.relative_to(out).as_posix(): path.read_bytes()
            for path in sorted(out.rglob("*")) if path.is_file()
        },
    }


def both_paths(root: Path, model: Path, **fields: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    return (transform(root, "bulk", model, False, **fields),
            transform(root, "records", model, True, **fields))


def test_same_bytes_across_payload_boundaries_files_and_odd_lines(
    model: tuple[Any, Path], tmp_path: Path
) -> None:
    booster, archive = model
    big, crossing = rows(60_000, 1), rows(30_000, 2)  # about 2.2 MB and 1.1 MB of CSV
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "big.csv").write_bytes(csv(big))
    (tmp_path / "in" / "sub" / "small.csv").write_bytes(csv(rows(7, 3)).rstrip(b"\n"))
    # blank lines, then CRLF line ends: the bulk splitter hands these to the record path
    odd = csv(crossing[:10_000]) + b"\n\n" + csv(crossing[10_000:], end=b"\r\n")
    (tmp_path / "in" / "odd.csv").write_bytes(odd)

    bulk, by_record = both_paths(tmp_path, archive)

    assert bulk["exit"]["code"] == by_record["exit"]["code"] == 0, (bulk["exit"], by_record["exit"])
    assert list(bulk["outputs"]) == ["big.csv.out", "odd.csv.out", "sub/small.csv.out"]
    assert bulk["outputs"] == by_record["outputs"]
    expected_progress = ["[modelyard] progress records=90007 objects=3/3"]
    assert bulk["progress"] == by_record["progress"] == expected_progress
    documents = [json.loads(line) for line in bulk["outputs"]["big.csv.out"].splitlines()]
    assert len(documents) == 3  # 2.2 MB in requests of at most 1 MB
    scores = [p["score"] for d in documents for p in d["predictions"]]
    np.testing.assert_allclose(scores, booster.inplace_predict(big.astype(np.float32)), rtol=1e-6)


def test_same_failure_for_a_record_larger_than_the_payload(
    model: tuple[Any, Path], tmp_path: Path
) -> None:
    _, archive = model
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_bytes(csv(rows(40_000, 4)))
    (tmp_path / "in" / "b.csv").write_bytes(csv(rows(10, 5)) + b"1.5," * 300_000 + b"2\n")

    bulk, by_record = both_paths(tmp_path, archive, accept="text/csv")

    assert bulk["exit"]["code"] == by_record["exit"]["code"] != 0
    assert bulk["exit"]["failure"] == by_record["exit"]["failure"]
    failure = bulk["exit"]["failure"]
    assert "b.csv" in failure and "larger than MaxPayloadInMB (1 MB)" in failure
    assert bulk["outputs"] == by_record["outputs"]
