"""Per-request latency and CPU of the model server on a one-row XGBoost CSV request.

Starts ``python -m modelyard.runtime.serving`` on a breast-cancer Booster (1 worker), sends
``--requests`` one-row requests over one keep-alive connection, and prints the client-side
latency percentiles and the worker's CPU time per request (psutil), next to the cost of
``Booster.inplace_predict`` alone in this process.

    .venv/bin/python bench/serving_latency.py --requests 5000
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import xgboost
from sklearn.datasets import load_breast_cancer

from modelyard.runtime.serving.plan import ServePlan


def build_model(root: Path) -> tuple[xgboost.Booster, np.ndarray]:
    features, labels = load_breast_cancer(return_X_y=True)
    params = {"objective": "binary:logistic", "max_depth": 4}
    booster = xgboost.train(params, xgboost.DMatrix(features, labels), 50)
    model_dir = root / "model"
    model_dir.mkdir()
    booster.save_model(str(model_dir / "xgboost-model.ubj"))
    (model_dir / "xgboost-model.ubj").rename(model_dir / "xgboost-model")
    with tarfile.open(root / "model.tar.gz", "w:gz") as tar:
        tar.add(model_dir / "xgboost-model", arcname="xgboost-model")
    return booster, features


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_response(sock: socket.socket, buffer: bytearray) -> bytes:
    while b"\r\n\r\n" not in buffer:
        buffer += sock.recv(65536)
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(rest) < length:
        rest += sock.recv(65536)
    buffer[:] = rest[length:]
    return rest[:length]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    booster, features = build_model(root)
    port = free_port()
    instance = root / "instance"
    plan = ServePlan("bench", "v", "i-1", "m", "xgboost", str(root / "model.tar.gz"), port)
    plan.write(instance)
    env = {**os.environ, "MODELYARD_HOME": str(root / "home")}
    command = [sys.executable, "-m", "modelyard.runtime.serving", str(instance)]
    server = subprocess.Popen(command, env=env)
    try:
        deadline = time.monotonic() + 60
        events = instance / "events.jsonl"
        while not events.exists() or b"InService" not in events.read_bytes():
            assert time.monotonic() < deadline and server.poll() is None, "did not start"
            time.sleep(0.1)
        row = ",".join(repr(float(v)) for v in features[0]).encode()
        request = (
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(row), row)
        )
        workers = psutil.Process(server.pid).children()
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = bytearray()
        for _ in range(200):  # warm-up
            sock.sendall(request)
            read_response(sock, buffer)
        cpu_before = sum(sum(w.cpu_times()[:2]) for w in workers)
        latencies = []
        for _ in range(args.requests):
            start = time.perf_counter()
            sock.sendall(request)
            body = read_response(sock, buffer)
            latencies.append(time.perf_counter() - start)
        cpu = sum(sum(w.cpu_times()[:2]) for w in workers) - cpu_before
        sock.close()
        booster.set_param({"nthread": 1})  # as the server runs it
        one = features[:1].astype(np.float32)
        started = time.process_time()
        for _ in range(args.requests):
            booster.inplace_predict(one)
        model_cpu = (time.process_time() - started) / args.requests
        us = np.percentile(np.array(latencies) * 1e6, [50, 90, 99])
        print(json.dumps({
            "prediction": body.decode().strip(),
            "requests": args.requests,
            "latency_us_p50_p90_p99": [round(v, 1) for v in us],
            "worker_cpu_us_per_request": round(cpu / args.requests * 1e6, 1),
            "inplace_predict_cpu_us": round(model_cpu * 1e6, 1),
        }, indent=1))  # fmt: skip
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
