"""The platform's overhead on a no-op training job, against running the same script directly.

Starts one real server on 127.0.0.1 (``tests/support/server.py``) and, for each of ``--runs``
repetitions (after ``--warmup`` unrecorded ones), measures:

- **floor**: ``python train.py`` run directly as a subprocess with this interpreter, wall time;
- **modelyard**: CreateTrainingJob → DescribeTrainingJob polled every ``--poll-ms`` until
  Completed (client wall time), and the server's own timeline CreationTime → TrainingEndTime,
  which client polling does not stretch;
- **first log line**: from CreateTrainingJob returning to the first event of the job's stream as
  the CloudWatch Logs API returns it (a separate job, so the two pollers do not compete);
- **phases**: the durations of the job's SecondaryStatusTransitions.

Usage::

    .venv/bin/python bench/training_overhead.py --runs 20 --out bench/results/training_overhead.json

Timing is measured, never asserted; this file is not part of the test suite.
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
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # the server harness lives in the test tree
    sys.path.insert(0, str(REPO))

from tests.integration.conftest import make_sourcedir, script_job  # noqa: E402
from tests.support.server import RunningServer, start_server  # noqa: E402

#: the no-op job: one line of output and one tiny model file
NOOP_SCRIPT = """\
import os
print("noop training done", flush=True)
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w") as f:
    f.write("0")
"""
NOOP_LINE = "noop training done"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
PHASES = ("Starting", "Downloading", "Training", "Uploading")
JOB_TIMEOUT = 60.0


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0–100) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: list[float]) -> dict[str, float]:
    """Median, p90, min and max of a list of durations in ms."""
    return {
        "median_ms": percentile(values, 50),
        "p90_ms": percentile(values, 90),
        "min_ms": min(values),
        "max_ms": max(values),
    }


def _ms(start: datetime | float, end: datetime | float) -> float:
    """Milliseconds between two instants, each a datetime or an epoch float."""
    def seconds(t: datetime | float) -> float:
        return t.timestamp() if isinstance(t, datetime) else t
    return (seconds(end) - seconds(start)) * 1000


def bytecode_env(mode: str, scratch: Path) -> dict[str, str]:
    """Environment for every Python process of the run (server, runtimes, scripts, floor).

    ``cached`` is how an installed platform runs: ``.pyc`` files are written once (under
    ``scratch``, so the source tree stays clean) and read afterwards, even where the caller's
    environment sets PYTHONDONTWRITEBYTECODE. ``inherit`` keeps the caller's setting; with
    PYTHONDONTWRITEBYTECODE=1 every runtime compiles its modules from source again.
    """
    if mode == "inherit":
        return {}
    return {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(scratch / "pycache")}


def measure_floor(code_dir: Path, model_dir: Path, extra_env: dict[str, str]) -> float:
    """Wall ms of ``python train.py`` run directly, as the job would run it."""
    env = {**os.environ, **extra_env, "SM_MODEL_DIR": str(model_dir)}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "train.py"], cwd=code_dir, env=env, check=True,
        stdout=subprocess.DEVNULL,
    )
    return (time.perf_counter() - start) * 1000


def _poll(fn: Callable[[], Any], interval: float, what: str) -> Any:
    """Call ``fn`` every ``interval`` seconds until it returns something truthy."""
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        result = fn()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


def measure_job(sm: Any, request: dict[str, Any], interval: float) -> dict[str, Any]:
    """Client and server timings of one job, create → Completed."""
    name = request["TrainingJobName"]
    wall_start = time.time()
    start = time.perf_counter()
    sm.create_training_job(**request)
    created = time.perf_counter()

    def completed() -> dict[str, Any] | None:
        job = sm.describe_training_job(TrainingJobName=name)
        status = job["TrainingJobStatus"]
        if status in ("Failed", "Stopped"):
            raise RuntimeError(f"{name} {status}: {job.get('FailureReason')}")
        return job if status == "Completed" else None

    job = _poll(completed, interval, f"{name} to complete")
    end = time.perf_counter()
    wall_end = time.time()
    phases = {
        t["Status"]: _ms(t["StartTime"], t["EndTime"])
        for t in job["SecondaryStatusTransitions"] if t["Status"] in PHASES
    }
    return {
        "client_ms": (end - start) * 1000,
        "create_call_ms": (created - start) * 1000,
        "server_ms": _ms(job["CreationTime"], job["TrainingEndTime"]),
        # same machine, same clock: how late the server stamps creation, and how late the
        # client sees the end
        "accept_lag_ms": _ms(wall_start, job["CreationTime"]),
        "observe_lag_ms": _ms(job["TrainingEndTime"], wall_end),
        "phases_ms": phases,
    }


def measure_first_log(sm: Any, logs: Any, request: dict[str, Any], interval: float) -> dict[str, float]:
    """Ms from CreateTrainingJob returning to the stream's first event, and to the script's line."""
    name = request["TrainingJobName"]
    sm.create_training_job(**request)
    start = time.perf_counter()

    def stream() -> str | None:
        found = logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=name)
        return found["logStreams"][0]["logStreamName"] if found["logStreams"] else None

    stream_name = _poll(stream, interval, f"{name}'s log stream")
    state: dict[str, Any] = {"token": None, "first": None}

    def script_line() -> bool:
        kwargs: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamName": stream_name}
        kwargs.update({"nextToken": state["token"]} if state["token"] else {"startFromHead": True})
        page = logs.get_log_events(**kwargs)
        state["token"] = page["nextForwardToken"]
        if page["events"] and state["first"] is None:
            state["first"] = time.perf_counter()
        return any(e["message"] == NOOP_LINE for e in page["events"])

    _poll(script_line, interval, f"{name}'s first log line")
    script = time.perf_counter()
    _poll(lambda: sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Completed",
          0.05, f"{name} to complete")
    return {"first_event_ms": (state["first"] - start) * 1000, "script_line_ms": (script - start) * 1000}


class Bench:
    """One server, one no-op script, and the repeated measurements against it."""

    def __init__(self, server: RunningServer, workdir: Path, interval: float) -> None:
        self.env = server.env
        self.sm = server.client("sagemaker")
        self.logs = server.client("logs")
        self.interval = interval
        self.code_dir = workdir / "code"
        self.archive = make_sourcedir(self.code_dir, NOOP_SCRIPT)
        self.model_dir = workdir / "floor-model"
        self.model_dir.mkdir()

    def request(self, name: str) -> dict[str, Any]:
        return script_job(name, self.archive, "s3://bench/output")

    def one_round(self, label: str) -> dict[str, Any]:
        """Floor, job and first-log measurements, interleaved so drift hits all three alike."""
        return {
            "floor_ms": measure_floor(self.code_dir, self.model_dir, self.env),
            "job": measure_job(self.sm, self.request(f"noop-{label}"), self.interval),
            "log": measure_first_log(self.sm, self.logs, self.request(f"noop-log-{label}"), self.interval),
        }


def aggregate(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians and p90s of every measure, the overhead in ms and the ratio to the floor."""
    def column(get: Callable[[dict[str, Any]], float]) -> dict[str, float]:
        return summarize([get(r) for r in rounds])

    result: dict[str, Any] = {
        "floor": column(lambda r: r["floor_ms"]),
        "modelyard_client": column(lambda r: r["job"]["client_ms"]),
        "modelyard_server": column(lambda r: r["job"]["server_ms"]),
        "create_call": column(lambda r: r["job"]["create_call_ms"]),
        "accept_lag": column(lambda r: r["job"]["accept_lag_ms"]),
        "observe_lag": column(lambda r: r["job"]["observe_lag_ms"]),
        "first_log_event": column(lambda r: r["log"]["first_event_ms"]),
        "first_script_line": column(lambda r: r["log"]["script_line_ms"]),
        "phases": {p: column(_phase_getter(p)) for p in PHASES},
    }
    floor = result["floor"]["median_ms"]
    for key in ("modelyard_client", "modelyard_server"):
        median = result[key]["median_ms"]
        result[key]["overhead_ms"] = median - floor
        result[key]["ratio"] = median / floor
    return result


def _phase_getter(phase: str) -> Callable[[dict[str, Any]], float]:
    """Reads one phase's duration out of a round (0 when the job skipped the phase)."""
    def get(r: dict[str, Any]) -> float:
        return float(r["job"]["phases_ms"].get(phase, 0.0))
    return get


def markdown(summary: dict[str, Any], runs: int) -> str:
    """The results as a markdown table."""
    def row(label: str, s: dict[str, float], extra: str = "") -> str:
        return f"| {label} | {s['median_ms']:.0f} | {s['p90_ms']:.0f} | {extra} |"

    lines = [
        f"| Measure ({runs} runs) | median ms | p90 ms | overhead vs floor |",
        "|---|---:|---:|---|",
        row("floor: `python train.py`", summary["floor"]),
    ]
    for key, label in (("modelyard_client", "modelyard, client: create → Completed seen"),
                       ("modelyard_server", "modelyard, server: CreationTime → TrainingEndTime")):
        s = summary[key]
        lines.append(row(label, s, f"+{s['overhead_ms']:.0f} ms, ×{s['ratio']:.1f}"))
    lines += [
        row("CreateTrainingJob call", summary["create_call"]),
        row("first log event (after create returns)", summary["first_log_event"]),
        row("first line of the script (after create returns)", summary["first_script_line"]),
    ]
    lines += [row(f"phase: {p}", summary["phases"][p]) for p in PHASES]
    lines.append(row("completion seen by client after TrainingEndTime", summary["observe_lag"]))
    return "\n".join(lines)


def environment_info() -> dict[str, Any]:
    """What the numbers were taken on."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "cpus": os.cpu_count(),
        # other work on the machine skews everything; keep the load with the numbers
        "loadavg_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
        "date": datetime.now().isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="recorded repetitions (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="unrecorded repetitions first (default 2)")
    parser.add_argument("--poll-ms", type=float, default=5.0, help="client polling interval (default 5)")
    parser.add_argument("--bytecode", choices=("cached", "inherit"), default="cached",
                        help="cached: .pyc written and reused (default); inherit: the caller's "
                             "PYTHONDONTWRITEBYTECODE")
    parser.add_argument("--out", type=Path, help="write the JSON results here")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 500 or not 0 <= args.warmup <= 50:
        parser.error("--runs must be 1..500 and --warmup 0..50")
    before = environment_info()
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as tmp:
        server = start_server(Path(tmp) / "home", bytecode_env(args.bytecode, Path(tmp)))
        try:
            bench = Bench(server, Path(tmp), args.poll_ms / 1000)
            for i in range(args.warmup):
                bench.one_round(f"warmup-{i}")
            rounds = []
            for i in range(args.runs):
                rounds.append(bench.one_round(f"{i:03d}"))
                print(f"run {i + 1}/{args.runs}", file=sys.stderr, flush=True)
        finally:
            server.stop()
    summary = aggregate(rounds)
    print(markdown(summary, args.runs))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        environment = before | {"loadavg_1m_after": os.getloadavg()[0]}
        results = {"settings": vars(args) | {"out": str(args.out)}, "environment": environment,
                   "summary": summary, "rounds": rounds}
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
