"""Serving throughput, latency and CPU per request: modelyard against its peers and the floor.

One XGBoost classifier (100,000 × 20 synthetic rows, 100 trees, depth 6); one-row and 100-row
CSV requests; ``wrk`` at 1, 8 and 64 connections on 127.0.0.1, each run bounded in time.
The targets run one at a time, each with ``--workers`` worker processes:

- **floor**: Starlette + uvicorn that only parses CSV with numpy and predicts;
- **modelyard**: InvokeEndpoint through a real server (SigV4 verified on every request);
- **modelyard-batching**: the same, with the model server's adaptive batching on;
- **mlflow**: ``mlflow models serve``;
- **bentoml** and **bentoml-batching**: ``bentoml serve``, without and with adaptive batching.

Peers are installed on first use into ``bench/.venv-peers/`` (pinned, never the project's venv).
Every target's answer is checked against the booster's own predictions before it is loaded.

Usage::

    .venv/bin/python -m bench.serving --out bench/results/serving.json

Timing is measured, never asserted; this is not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.serving.load import require_wrk, run_wrk
from bench.serving.model import BenchModel, Payload, parse_predictions, train
from bench.serving.report import best_of_rounds, failures_markdown, markdown, with_ratios
from bench.serving.targets import REPO, TARGETS, Target, make_targets


def check_answer(target: Target, payload: Payload) -> None:
    """One request by hand: status 200 and the booster's predictions, or ``RuntimeError``."""
    request = target.request(payload)
    sent = urllib.request.Request(request.url, data=request.body, method=request.method,
                                  headers={k: v for k, v in request.headers.items() if k != "Host"})
    with urllib.request.urlopen(sent, timeout=30) as answer:
        body = answer.read()
    got = parse_predictions(body)
    if got.shape != payload.expected.shape or not np.allclose(got, payload.expected, rtol=1e-4):
        raise RuntimeError(f"{target.name} answered {body[:200]!r} for {payload.name}")


def measure_target(target: Target, model: BenchModel, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Warm-up and measured wrk runs for every payload × connection count."""
    records = []
    for payload in model.payloads:
        check_answer(target, payload)
        request = target.request(payload)
        for connections in args.connections:
            if args.warmup:
                run_wrk(request, connections, args.warmup, target.pids())
            result = run_wrk(request, connections, args.duration, target.pids())
            records.append({"target": target.name, "payload": payload.name, **result.as_dict()})
            _progress(records[-1])
    return records


def _progress(r: dict[str, Any]) -> None:
    print(f"{r['target']:>17} {r['payload']:>7} c={r['connections']:<3} "
          f"{r['requests_per_s']:8.0f} req/s  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
          f"cpu {r['cpu_ms_per_request']:6.2f} ms/req  load {r['loadavg_1m']:.1f}"
          + (f"  errors {r['errors']}" if r["errors"] else ""), file=sys.stderr, flush=True)


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Train, then for each round start, check, load and stop each target in turn."""
    model = train(workdir, tuple(args.payload_rows))
    targets = make_targets(args.targets, model, workdir, args.workers)
    measurements: list[dict[str, Any]] = []
    failures: dict[str, str] = {}
    versions: dict[str, dict[str, str]] = {}
    for round_no in range(1, args.rounds + 1):
        for target in targets:
            if target.name in failures:
                continue
            records = run_target(target, model, args, failures)
            measurements += [{**r, "round": round_no} for r in records]
            if records and target.name not in versions:
                versions[target.name] = target.versions()
    return {"measurements": with_ratios(best_of_rounds(measurements)),
            "all_rounds": with_ratios(measurements), "failures": failures,
            "versions": versions, "notes": {t.name: t.notes for t in targets}}


def run_target(target: Target, model: BenchModel, args: argparse.Namespace,
               failures: dict[str, str]) -> list[dict[str, Any]]:
    """Start, measure and stop one target; a failure is recorded, not raised."""
    started = time.monotonic()
    try:
        target.start()
        print(f"{target.name}: up in {time.monotonic() - started:.1f} s", file=sys.stderr)
        return measure_target(target, model, args)
    except Exception as e:  # one target failing must not lose the others' numbers
        failures[target.name] = f"{type(e).__name__}: {e}"
        print(f"{target.name}: FAILED {failures[target.name]}", file=sys.stderr, flush=True)
        return []
    finally:
        target.stop()


def environment_info() -> dict[str, Any]:
    """What the numbers were taken on."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    wrk = subprocess.run([require_wrk(), "--version"], capture_output=True, text=True)
    return {
        "cpus": os.cpu_count(),
        "loadavg_1m": os.getloadavg()[0],  # the machine is shared: keep the load with the numbers
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": (wrk.stdout or wrk.stderr).splitlines()[0],
        "commit": commit,
        "date": datetime.now().isoformat(timespec="seconds"),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.serving",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS),
                        help="what to measure, in this order (default: all; put floor first)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes per target (default 1)")
    parser.add_argument("--duration", type=int, default=4, help="seconds per measured run (default 4)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of unrecorded load first (default 1; 0: none)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="go through all targets this many times; the tables keep each "
                             "cell's best-throughput round (default 2)")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--payload-rows", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--workdir", type=Path, help="keep models and server logs here (default: a temp dir)")
    parser.add_argument("--out", type=Path, help="write the JSON results here")
    args = parser.parse_args(argv)
    if not 1 <= args.workers <= 16 or not 1 <= args.duration <= 60 or not 0 <= args.warmup <= 10:
        parser.error("--workers must be 1..16, --duration 1..60 s, --warmup 0..10 s")
    if not 1 <= args.rounds <= 5:
        parser.error("--rounds must be 1..5")
    if any(not 1 <= c <= 256 for c in args.connections):
        parser.error("--connections must be 1..256")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_wrk()
    before = environment_info()
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        results = run(args, args.workdir.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="modelyard-bench-serving-") as tmp:
            results = run(args, Path(tmp))
    payloads = list(dict.fromkeys(m["payload"] for m in results["measurements"]))
    print("\n\n".join([markdown(results["measurements"], p) for p in payloads]
                      + [failures_markdown(results["failures"])]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        environment = before | {"loadavg_1m_after": os.getloadavg()[0]}
        args.out.write_text(json.dumps({"settings": settings, "environment": environment,
                                        **results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
