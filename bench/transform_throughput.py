"""Batch transform rows/s on a large CSV, against in-process ``inplace_predict`` on the same file.

Writes a ``--rows`` × ``--features`` CSV, trains a small XGBoost Booster, then:

1. baseline: in this process, ``pandas.read_csv`` → ``Booster.inplace_predict`` (all cores) →
   predictions written one a line (the end-to-end job a user would otherwise script);
2. transform: one transform host, ``python -m modelyard.runtime.transform <dir>`` with a
   :class:`TransformPlan` (MultiRecord, Line split, MaxPayloadInMB 6, MaxConcurrentTransforms =
   cores), timed from process start to exit, model-server startup included. The control plane
   is left out: it only queues the job and tails its files.

Every Python process of the host runs with cached bytecode (``--bytecode cached``, as in the
training benchmarks: how an installed platform runs); one unrecorded transform fills the cache
first.

Both outputs are compared (numerically, and whether the bytes are identical), then the rows/s
and their ratio are printed (and written as JSON). ``--repeat N`` times both N times on the
same files, alternating, and reports every run and the median ratio: on a shared machine the
spread matters as much as the number.

    .venv/bin/python bench/transform_throughput.py --rows 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost
from training_overhead import bytecode_env

from modelyard.runtime.transform.plan import TransformPlan


def build(root: Path, rows: int, features: int) -> tuple[xgboost.Booster, Path, Path]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20000, features))
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int)
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 6}, xgboost.DMatrix(x, y), 100)
    (root / "model").mkdir()
    booster.save_model(str(root / "model" / "xgboost-model.ubj"))
    with tarfile.open(root / "model.tar.gz", "w:gz") as tar:
        tar.add(root / "model" / "xgboost-model.ubj", arcname="xgboost-model")
    data = root / "in" / "data.csv"
    data.parent.mkdir()
    chunk = 100_000
    with open(data, "w") as f:
        for start in range(0, rows, chunk):
            block = rng.normal(size=(min(chunk, rows - start), features)).round(5)
            pd.DataFrame(block).to_csv(f, header=False, index=False)
    return booster, root / "model.tar.gz", data


def baseline(booster: xgboost.Booster, data: Path, out: Path) -> float:
    started = time.perf_counter()
    x = pd.read_csv(data, header=None, dtype=np.float32).to_numpy()
    predictions = booster.inplace_predict(x)
    out.write_text("\n".join(map(str, predictions)) + "\n")
    return time.perf_counter() - started


def transform(root: Path, model: Path, data: Path, workers: int, extra_env: dict[str, str]) -> float:
    host_dir = root / "host"
    shutil.rmtree(host_dir, ignore_errors=True)
    TransformPlan(
        job_name="bench", job_arn="arn:aws:sagemaker:us-east-1:000000000000:transform-job/bench",
        host="algo-1", host_index=0, host_count=1, model_name="bench", framework="xgboost",
        model_data_url=str(model), model_data_compressed=True, environment={},
        instance_type="ml.m5.4xlarge", input_uri=str(data.parent) + "/", output_uri=str(root / "out"),
        content_type="text/csv", split_type="Line", accept="text/csv", assemble_with="Line",
        batch_strategy="MultiRecord", max_payload_mb=6, max_concurrent=workers,
    ).write(host_dir)
    env = {**os.environ, **extra_env, "MODELYARD_HOME": str(root / "home")}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "modelyard.runtime.transform", str(host_dir)], env=env, check=True)
    elapsed = time.perf_counter() - started
    exit_event = json.loads((host_dir / "events.jsonl").read_text().splitlines()[-1])
    assert exit_event["code"] == 0, exit_event
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=1, help="time both this many times")
    parser.add_argument("--bytecode", choices=("cached", "inherit"), default="cached",
                        help="cached: .pyc written once and reused, as installed (default)")
    parser.add_argument("--json", type=Path, default=Path("bench/results/transform.json"))
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as tmp:
        root = Path(tmp)
        booster, model, data = build(root, args.rows, args.features)
        extra_env = bytecode_env(args.bytecode, root)
        transform(root, model, data, args.workers, extra_env)  # unrecorded: fills the caches
        for _ in range(args.repeat):
            base_s = baseline(booster, data, root / "baseline.out")
            transform_s = transform(root, model, data, args.workers, extra_env)
            runs.append({"baseline_s": round(base_s, 2), "transform_s": round(transform_s, 2),
                         "ratio": round(base_s / transform_s, 2)})
            print(json.dumps(runs[-1]), flush=True)
            expected, got = root / "baseline.out", root / "out" / "data.csv.out"
            np.testing.assert_allclose(np.loadtxt(got), np.loadtxt(expected), rtol=1e-5)
            identical = got.read_bytes() == expected.read_bytes()
        size_mb = data.stat().st_size / 2**20
    median = sorted(runs, key=lambda r: r["ratio"])[(len(runs) - 1) // 2]
    base_s, transform_s = median["baseline_s"], median["transform_s"]
    ratios = [r["ratio"] for r in runs]
    result = {
        "rows": args.rows, "features": args.features, "csv_mb": round(size_mb, 1),
        "cpus": os.cpu_count(), "workers": args.workers, "bytecode": args.bytecode,
        "baseline_s": base_s, "baseline_rows_per_s": round(args.rows / base_s),
        "transform_s": transform_s, "transform_rows_per_s": round(args.rows / transform_s),
        "ratio": median["ratio"], "identical_bytes": identical,
        "ratio_min": min(ratios),
        "ratio_max": max(ratios), "runs": runs,
    }
    print(json.dumps(result, indent=1))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
