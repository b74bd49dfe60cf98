"""Load generation with ``wrk`` and CPU accounting of the server under load.

wrk replays one fixed request (method, path, headers, body) as fast as its connections allow
for a bounded time. A generated Lua script sets the request and, in ``done``, prints one
``BENCH_JSON`` line with the counts and latency percentiles, so nothing is scraped from wrk's
human-readable report. While wrk runs, :class:`CpuMeter` notes the CPU time of every process
in the server's tree (the server, its workers, its model-server instances), so the cost per
request includes everything the server side spent.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

WRK_MISSING = "wrk is not installed: on Debian/Ubuntu run `apt-get install -y wrk`."
_MARKER = "BENCH_JSON "
_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"bytes":%d,'
    .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
    .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\\n',
    MARKER, summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


@dataclass(frozen=True)
class HttpRequest:
    """The one request a load run repeats."""

    url: str  # http://127.0.0.1:PORT/path
    headers: Mapping[str, str]
    body: bytes
    method: str = "POST"


@dataclass(frozen=True)
class LoadResult:
    """What one wrk run measured, with the server's CPU time over the same interval."""

    connections: int
    requests: int
    seconds: float
    errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_s: float
    server_cpu_by_process: dict[str, float]
    client_cpu_s: float
    loadavg_1m: float

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_s / self.requests if self.requests else float("nan")

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "requests_per_s": self.requests_per_s,
                "cpu_ms_per_request": self.cpu_ms_per_request}


def require_wrk() -> str:
    """Path of wrk, or ``SystemExit`` saying how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(WRK_MISSING)
    return path


def lua_string(value: str | bytes) -> str:
    """A Lua string literal holding exactly ``value``'s bytes."""
    data = value.encode() if isinstance(value, str) else value
    return '"' + "".join(f"\\{b:03d}" if b < 32 or b > 126 or b in (34, 92) else chr(b)
                         for b in data) + '"'


def wrk_script(request: HttpRequest, body_file: Path) -> str:
    """The Lua script that makes wrk send ``request`` (its body read from ``body_file``)."""
    lines = [
        f"wrk.method = {lua_string(request.method)}",
        f"local f = assert(io.open({lua_string(str(body_file))}, 'rb'))",
        "wrk.body = f:read('*a')",
        "f:close()",
        f"MARKER = {lua_string(_MARKER)}",
    ]
    lines += [f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in request.headers.items()]
    return "\n".join(lines) + "\n" + _DONE


class CpuMeter:
    """CPU seconds (user + system) spent by a process tree between ``start`` and ``stop``.

    The tree is looked up at both ends, so processes started under load (a replaced worker)
    count from their start; a process that ended in between is lost, which is reported by
    ``lost`` rather than hidden. ``by_process`` splits the total by command line, which shows
    where a server spends its CPU (router or model server, arbiter or worker).
    """

    def __init__(self, roots: Iterable[int]) -> None:
        self.roots = list(roots)
        self._before: dict[tuple[int, float], tuple[str, float]] = {}
        self.lost = 0
        self.by_process: dict[str, float] = {}

    def _sample(self) -> dict[tuple[int, float], tuple[str, float]]:
        seen: dict[tuple[int, float], tuple[str, float]] = {}
        for root in self.roots:
            try:
                top = psutil.Process(root)
                procs = [top, *top.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for proc in procs:
                try:
                    with proc.oneshot():
                        times = proc.cpu_times()
                        key = (proc.pid, proc.create_time())
                        seen[key] = (_label(proc), times.user + times.system)
                except psutil.NoSuchProcess:
                    continue
        return seen

    def start(self) -> None:
        self._before = self._sample()

    def stop(self) -> float:
        after = self._sample()
        self.lost = len(set(self._before) - set(after))
        self.by_process = {}
        for key, (label, cpu) in after.items():
            spent = cpu - self._before.get(key, (label, 0.0))[1]
            self.by_process[label] = self.by_process.get(label, 0.0) + spent
        return sum(self.by_process.values())


def _label(proc: psutil.Process) -> str:
    """A process's command line, short: the program's base name and its first arguments."""
    try:
        argv = proc.cmdline()
    except psutil.Error:
        argv = []
    if not argv:
        return proc.name()
    words = [os.path.basename(argv[0]), *(a if len(a) < 60 else "…" + a[-40:] for a in argv[1:4])]
    return " ".join(words)


def run_wrk(request: HttpRequest, connections: int, seconds: int, server_pids: Iterable[int],
            timeout_s: int = 10) -> LoadResult:
    """Run wrk with one thread and ``connections`` connections for ``seconds``; measure CPU.

    wrk takes whole seconds only.
    """
    wrk = require_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        body_file = Path(tmp) / "body"
        body_file.write_bytes(request.body)
        script = Path(tmp) / "request.lua"
        script.write_text(wrk_script(request, body_file))
        # one wrk thread: on 2 cores, the client must leave the servers as much CPU as it can
        cmd = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout_s}s",
               "-s", str(script), request.url]
        meter = CpuMeter(server_pids)
        client_before = _children_cpu()
        meter.start()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout_s + 30)
        server_cpu = meter.stop()
        client_cpu = _children_cpu() - client_before
    report = _report(out)
    latency = report["latency_us"]
    return LoadResult(
        connections=connections,
        requests=report["requests"],
        seconds=report["duration_us"] / 1e6,
        errors={k: v for k, v in report["errors"].items() if v},
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        server_cpu_s=server_cpu,
        server_cpu_by_process=meter.by_process,
        client_cpu_s=client_cpu,
        loadavg_1m=os.getloadavg()[0],
    )


def _report(out: subprocess.CompletedProcess[str]) -> dict[str, object]:
    for line in out.stdout.splitlines():
        if line.startswith(_MARKER):
            return json.loads(line[len(_MARKER):])
    raise RuntimeError(f"wrk failed (exit {out.returncode}): {out.stderr or out.stdout}")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
