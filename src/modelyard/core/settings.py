"""The one typed settings object, built at start and passed down.

Precedence, highest first: explicit constructor/CLI arguments, ``MODELYARD_*`` environment
variables, then the defaults below. Nothing here is read at import time.

| field              | variable                     | default                                |
| ------------------ | ---------------------------- | -------------------------------------- |
| home               | MODELYARD_HOME               | ``~/.modelyard``                       |
| db_url             | MODELYARD_DB_URL             | ``sqlite:///<home>/modelyard.db``      |
| artifact_root      | MODELYARD_ARTIFACT_ROOT      | ``<home>/artifacts``                   |
| s3_endpoint_url    | MODELYARD_S3_ENDPOINT_URL    | none (``s3://`` maps into the folder)  |
| s3_access_key_id   | MODELYARD_S3_ACCESS_KEY_ID   | none (boto3's own chain)               |
| s3_secret_access_key | MODELYARD_S3_SECRET_ACCESS_KEY | none                               |
| region             | MODELYARD_REGION             | ``us-east-1``                          |
| account_id         | MODELYARD_ACCOUNT_ID         | ``000000000000``                       |
| host / port        | MODELYARD_HOST / _PORT       | ``127.0.0.1`` / ``8080``               |
| cpus               | MODELYARD_CPUS               | the machine's cores                    |
| memory_gib         | MODELYARD_MEMORY_GIB         | the machine's memory                   |
| gpus               | MODELYARD_GPUS               | 0                                      |
| isolation          | MODELYARD_ISOLATION          | ``auto`` (``namespace`` when root, else ``rewrite``) |
| autoscaling_period_seconds | MODELYARD_AUTOSCALING_PERIOD_SECONDS | 60 (one target-tracking datapoint; tests use 1) |
| warm_starts        | MODELYARD_WARM_STARTS        | on; ``0`` starts every job host cold   |
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

_PREFIX = "MODELYARD_"

# Fields that never leave the server process: job processes get only what they need.
_SERVER_ONLY = frozenset({"db_url", "host", "port", "autoscaling_period_seconds"})


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything configurable about one modelyard installation."""

    home: Path
    db_url: str
    artifact_root: str
    s3_endpoint_url: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    region: str = "us-east-1"
    account_id: str = "000000000000"
    host: str = "127.0.0.1"
    port: int = 8080
    cpus: int = 0
    memory_gib: float = 0.0
    gpus: int = 0
    isolation: str = "auto"
    # Target tracking scales out after 3 datapoints above target and in after 15 below 90 % of
    # it, as SageMaker's 1-minute alarms do; a shorter period makes that seconds (for tests).
    autoscaling_period_seconds: int = 60
    # Built-in algorithm jobs fork from a preloaded runtime instead of starting interpreters.
    warm_starts: bool = True

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``overrides`` (non-None values), then ``env``, then defaults."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(_PREFIX + field.name.upper())
            if raw not in (None, ""):
                values[field.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        home = Path(str(values.pop("home", Path.home() / ".modelyard"))).expanduser().resolve()
        values.setdefault("db_url", f"sqlite:///{home / 'modelyard.db'}")
        values.setdefault("artifact_root", str(home / "artifacts"))
        for name in ("port", "cpus", "gpus", "autoscaling_period_seconds"):
            if name in values:
                values[name] = int(str(values[name]))
        if "warm_starts" in values:
            values["warm_starts"] = _flag(values["warm_starts"])
        if "memory_gib" in values:
            values["memory_gib"] = float(str(values["memory_gib"]))
        return cls(home=home, **values)  # type: ignore[arg-type]

    def job_environment(self) -> dict[str, str]:
        """The settings a job process needs, as ``MODELYARD_*`` variables."""
        out: dict[str, str] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool):  # before the test below: False == 0
                out[_PREFIX + field.name.upper()] = "1" if value else "0"
                continue
            if field.name in _SERVER_ONLY or value in (None, "", 0, 0.0):
                continue
            out[_PREFIX + field.name.upper()] = str(value)
        return out

    def redacted(self) -> dict[str, str]:
        """A loggable view: secrets and passwords in URLs are masked."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            text = str(value)
            if "secret" in field.name:
                text = "****"
            elif field.name == "db_url" and "@" in text:
                scheme, _, rest = text.partition("://")
                text = f"{scheme}://****@{rest.split('@', 1)[1]}"
            out[field.name] = text
        return out


def _flag(value: object) -> bool:
    """A boolean setting: ``0``, ``false``, ``no`` and ``off`` (any case) are false."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in ("0", "false", "no", "off")
