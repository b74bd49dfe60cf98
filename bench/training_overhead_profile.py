"""Where the overhead of a no-op training job goes: a timeline of one job, segment by segment.

Complements ``bench/training_overhead.py`` (which measures the totals). For ``--runs`` no-op jobs
on a real server it joins three clocks of the same machine: the server's record (CreationTime,
TrainingStartTime, SecondaryStatusTransitions, TrainingEndTime), the runtime's own
``events.jsonl`` / ``logs.jsonl`` timestamps in the host dir, and the client's. It also reports
what the job's runtime process imports (``PYTHONPROFILEIMPORTTIME``, on a second server so the
timeline is not slowed by it), the wall time of the runtime process run by hand on a finished
job's ``plan.json`` (no server, no controller), and the latency of single API calls.

Usage::

    .venv/bin/python bench/training_overhead_profile.py --runs 10 [--isolation rewrite]

Timing is measured, never asserted; this file is not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_overhead import (
    NOOP_LINE,
    NOOP_SCRIPT,
    bytecode_env,
    make_sourcedir,
    percentile,
    script_job,
    start_server,
)

from tests.support.server import RunningServer, wait_for_job

#: the segments of a job's timeline, in order: (name, from instant, to instant)
SEGMENTS = (
    ("create → controller launches runtime", "created", "launch"),
    ("launch → runtime reports Downloading (interpreter, imports, isolation, layout)", "launch", "Downloading"),
    ("Downloading → Training (unpack sourcedir)", "Downloading", "Training"),
    ("Training → script's line (prepare work, spawn python, script)", "Training", "script_line"),
    ("script's line → Uploading (script exits, pumps join)", "script_line", "Uploading"),
    ("Uploading → exit event (tar + upload model/output)", "Uploading", "exit"),
    ("exit event → TrainingEndTime (controller notices, finishes)", "exit", "end"),
    ("TrainingEndTime → client sees Completed", "end", "seen"),
)
_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def host_dir(server: RunningServer, name: str) -> Path:
    return server.home / "jobs" / "TrainingJob" / name / "attempt-1" / "algo-1"


def job_instants(server: RunningServer, sm: Any, name: str, request: dict[str, Any]) -> dict[str, float]:
    """Epoch seconds of each instant of one job's life (see SEGMENTS)."""
    sm.create_training_job(**request)
    while (job := sm.describe_training_job(TrainingJobName=name))["TrainingJobStatus"] != "Completed":
        if job["TrainingJobStatus"] in ("Failed", "Stopped"):
            raise RuntimeError(f"{name}: {job.get('FailureReason')}")
        time.sleep(0.005)
    seen = time.time()
    hdir = host_dir(server, name)
    instants = {
        "created": job["CreationTime"].timestamp(),
        "launch": job["TrainingStartTime"].timestamp(),
        "end": job["TrainingEndTime"].timestamp(),
        "seen": seen,
    }
    for event in _jsonl(hdir / "events.jsonl"):
        key = str(event["status"] if event["event"] == "status" else event["event"])
        instants.setdefault(key, event["t"])
    for line in _jsonl(hdir / "logs.jsonl"):
        if line["m"] == NOOP_LINE:
            instants["script_line"] = line["t"] / 1000
    # when the controller stamped each status it read from events.jsonl
    for t in job["SecondaryStatusTransitions"]:
        instants[f"recorded:{t['Status']}"] = t["StartTime"].timestamp()
    return instants


def timeline(server: RunningServer, archive: Path, runs: int) -> dict[str, Any]:
    """Median and p90 ms of every segment, and of the controller's lag in recording statuses."""
    sm = server.client("sagemaker")
    samples: list[dict[str, float]] = []
    for i in range(runs + 1):  # the first is a warm-up
        name = f"profile-{i:03d}"
        instants = job_instants(server, sm, name, script_job(name, archive, "s3://bench/output"))
        if i:
            samples.append(instants)
    out: dict[str, Any] = {}
    for label, a, b in SEGMENTS:
        values = [(s[b] - s[a]) * 1000 for s in samples]
        out[label] = {"median_ms": percentile(values, 50), "p90_ms": percentile(values, 90)}
    for status in ("Downloading", "Training", "Uploading"):
        values = [(s[f"recorded:{status}"] - s[status]) * 1000 for s in samples]
        out[f"controller records {status} after the runtime wrote it"] = {
            "median_ms": percentile(values, 50), "p90_ms": percentile(values, 90)}
    return out


def runtime_alone(server: RunningServer, name: str, runs: int) -> dict[str, float]:
    """Wall ms of ``python -m modelyard.runtime`` on a copy of ``name``'s plan, by hand."""
    plan = host_dir(server, name) / "plan.json"
    env = {**server.env, "MODELYARD_HOME": str(server.home)}
    values = []
    for i in range(runs + 1):  # the first is a warm-up
        replay = server.home / "replays" / f"{name}-{i}"
        replay.mkdir(parents=True)
        shutil.copy(plan, replay)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "modelyard.runtime", str(replay)], env=env, check=True)
        if i:
            values.append((time.perf_counter() - start) * 1000)
    return {"median_ms": percentile(values, 50), "p90_ms": percentile(values, 90)}


def runtime_imports(workdir: Path, archive: Path, env: dict[str, str], runs: int = 3) -> dict[str, Any]:
    """What the runtime process imports during a job: total and the heaviest top-level modules."""
    server = start_server(workdir / "home-importtime", {**env, "PYTHONPROFILEIMPORTTIME": "1"})
    try:
        sm = server.client("sagemaker")
        per_run: list[dict[str, int]] = []
        for i in range(runs):
            name = f"imports-{i}"
            sm.create_training_job(**script_job(name, archive, "s3://bench/output"))
            wait_for_job(sm, name)
            per_run.append(_top_level_imports((host_dir(server, name) / "runtime.log").read_text()))
    finally:
        server.stop()
    last = per_run[-1]
    return {
        "total_ms_per_run": [sum(r.values()) / 1000 for r in per_run],
        "heaviest_ms": {k: v / 1000 for k, v in sorted(last.items(), key=lambda kv: -kv[1])[:12]},
    }


def _top_level_imports(text: str) -> dict[str, int]:
    """Cumulative µs of each top-level import in ``-X importtime`` output."""
    found: dict[str, int] = {}
    for match in _IMPORT_LINE.finditer(text):
        _self_us, cumulative, indent, name = match.groups()
        if len(indent) == 1:
            found[name] = found.get(name, 0) + int(cumulative)
    return found


def api_latency(server: RunningServer, name: str, calls: int = 50) -> dict[str, float]:
    """Median ms of single API calls against an idle server."""
    sm, logs = server.client("sagemaker"), server.client("logs")
    def median_of(fn: Any) -> float:
        values = []
        for _ in range(calls):
            start = time.perf_counter()
            fn()
            values.append((time.perf_counter() - start) * 1000)
        return percentile(values, 50)
    return {
        "DescribeTrainingJob": median_of(lambda: sm.describe_training_job(TrainingJobName=name)),
        "DescribeLogStreams": median_of(lambda: logs.describe_log_streams(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=name)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="profiled jobs (default 10)")
    parser.add_argument("--isolation", choices=("auto", "namespace", "rewrite"), default="auto")
    parser.add_argument("--bytecode", choices=("cached", "inherit"), default="cached",
                        help="as in training_overhead.py")
    parser.add_argument("--out", type=Path, help="write the JSON results here")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 200:
        parser.error("--runs must be 1..200")
    with tempfile.TemporaryDirectory(prefix="modelyard-profile-") as tmp:
        work = Path(tmp)
        archive = make_sourcedir(work / "code", NOOP_SCRIPT)
        env = bytecode_env(args.bytecode, work)
        server = start_server(work / "home", {**env, "MODELYARD_ISOLATION": args.isolation})
        try:
            results = {
                "timeline": timeline(server, archive, args.runs),
                "runtime_alone": runtime_alone(server, "profile-001", args.runs),
                "api_latency_ms": api_latency(server, "profile-001"),
            }
        finally:
            server.stop()
        results["runtime_imports"] = runtime_imports(work, archive, env)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
