"""The SDK's connection to a modelyard server, like ``sagemaker.Session``.

Which server, in order: the ``endpoint_url`` argument, ``MODELYARD_ENDPOINT_URL``, a server
already running on this machine for the same home (``<home>/server.json``), and otherwise an
embedded one that this session starts in the background and later sessions reuse (as
``ray.init()`` does). Clients are plain boto3 clients signed with the platform's keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from modelyard.core.credentials import CREDENTIALS_FILE, load_or_create_credentials
from modelyard.core.discovery import running_server_url

if TYPE_CHECKING:
    from modelyard.artifacts import Artifacts

_START_TIMEOUT = 60.0
_EMBEDDED_SERVERS: list[subprocess.Popen[bytes]] = []


class ModelyardClientError(RuntimeError):
    """The server refused a modelyard-specific call; ``code`` is its error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class Session:
    """Talks to one modelyard server through boto3 clients.

    >>> session = modelyard.Session()            # doctest: +SKIP
    >>> session.sagemaker.list_training_jobs()   # doctest: +SKIP
    """

    def __init__(
        self,
        endpoint_url: str | None = None,
        home: str | Path | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        start_server: bool = True,
    ) -> None:
        self.home = Path(home or os.environ.get("MODELYARD_HOME") or Path.home() / ".modelyard").expanduser()
        self.region = region or os.environ.get("MODELYARD_REGION", "us-east-1")
        self.endpoint_url = (
            endpoint_url
            or os.environ.get("MODELYARD_ENDPOINT_URL")
            or running_server_url(self.home)
            or (self._start_embedded() if start_server else None)
        )
        if self.endpoint_url is None:
            raise ConnectionError(
                f"No modelyard server is running for {self.home}; start one with `modelyard server`."
            )
        if access_key_id and secret_access_key:
            self._keys = (access_key_id, secret_access_key)
        else:
            self._keys = _read_keys(self.home)
        self._clients: dict[str, Any] = {}
        self._artifacts: Artifacts | None = None

    def client(self, service: str) -> Any:
        """A boto3 client of ``service`` pointed at this server (cached)."""
        if service not in self._clients:
            self._clients[service] = boto3.session.Session().client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id=self._keys[0],
                aws_secret_access_key=self._keys[1],
                config=Config(retries={"max_attempts": 3, "mode": "standard"}),
            )
        return self._clients[service]

    def s3_endpoint_configured(self) -> bool:
        """Whether ``s3://`` URIs go to a real S3 endpoint (else they map into the home)."""
        return bool(os.environ.get("MODELYARD_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3"))

    @property
    def artifacts(self) -> Artifacts:
        """The artifact store as this machine sees it (``s3://`` through the configured
        endpoint or mapped into the home, ``file://`` and paths as they are)."""
        if self._artifacts is None:
            from modelyard.artifacts import Artifacts
            from modelyard.core.settings import Settings

            self._artifacts = Artifacts(Settings.load(home=self.home))
        return self._artifacts

    def default_bucket_uri(self) -> str:
        """``s3://sagemaker-{region}-{account}``, SageMaker's default bucket."""
        account = self.client("sts").get_caller_identity()["Account"]
        return f"s3://sagemaker-{self.region}-{account}"

    @property
    def sagemaker(self) -> Any:
        return self.client("sagemaker")

    @property
    def logs(self) -> Any:
        return self.client("logs")

    def interrupt_training_job(self, name: str) -> None:
        """Reclaim a managed-spot job's instance, as AWS does, so it resumes from checkpoints.

        A modelyard extension (SageMaker has no such call): a signed POST to
        ``/_modelyard/training-jobs/<name>/interrupt``.
        """
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        request = AWSRequest(
            method="POST", url=f"{self.endpoint_url}/_modelyard/training-jobs/{name}/interrupt",
            data=b"", headers={"Content-Type": "application/json"},
        )
        SigV4Auth(Credentials(*self._keys), "sagemaker", self.region).add_auth(request)
        prepared = request.prepare()
        req = urllib.request.Request(prepared.url, data=b"", method="POST", headers=dict(prepared.headers))
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                response.read()
        except urllib.error.HTTPError as e:
            body = json.loads(e.read() or b"{}")
            raise ModelyardClientError(body.get("__type", str(e.code)), body.get("message", "")) from e

    def _start_embedded(self) -> str:
        """Start ``modelyard server`` in the background for this home and wait for it."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "server.log", "ab") as log:
            # kept referenced: the server outlives this session on purpose
            _EMBEDDED_SERVERS.append(subprocess.Popen(
                [sys.executable, "-m", "modelyard", "server", "--home", str(self.home), "--port", "0"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            ))
        proc = _EMBEDDED_SERVERS[-1]
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            url = running_server_url(self.home)
            if url and _pings(url):
                return url
            time.sleep(0.1)
        log_tail = (self.home / "server.log").read_text(errors="replace")[-2000:]
        state = f"exited with code {proc.returncode}" if proc.poll() is not None else "timed out"
        raise ConnectionError(
            f"The embedded modelyard server did not start ({state}); its log ends with:\n{log_tail}"
        )


def _pings(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/ping", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _read_keys(home: Path) -> tuple[str, str]:
    """The platform's key pair from its home, else the standard AWS variables."""
    path = home / CREDENTIALS_FILE
    if path.exists():
        credentials = load_or_create_credentials(home)
        return credentials.access_key_id, credentials.secret_access_key
    env = (os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY"))
    if env[0] and env[1]:
        return env[0], env[1]
    raise ConnectionError(f"No modelyard credentials in {path}; run `modelyard credentials`.")
