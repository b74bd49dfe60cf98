"""Serverless variants: no instance while idle, one started by the first request.

The router records when each serverless variant was last asked for (``touch``); the endpoint
controller keeps an instance for it while that was less than ``idle_seconds`` ago, or while
the variant has ProvisionedConcurrency. A request finding no instance asks for one and waits
for the cold start; requests beyond MaxConcurrency are throttled.

The record of use lives in memory: after a restart every serverless variant starts idle.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from modelyard.core.errors import ModelyardError, ValidationError

MEMORY_SIZES = frozenset({1024, 2048, 3072, 4096, 5120, 6144})
COLD_START_TIMEOUT = 120.0


class Throttled(ModelyardError):
    """More concurrent requests than the serverless variant's MaxConcurrency."""

    code = "ThrottlingException"
    status = 429


def validate(variant: dict[str, Any]) -> None:
    """A variant's ServerlessConfig (instances are not specified with it)."""
    config = variant["ServerlessConfig"]
    name = variant["VariantName"]
    for field in ("InstanceType", "InitialInstanceCount"):
        if field in variant:
            raise ValidationError(f"Variant {name}: {field} cannot be combined with ServerlessConfig.")
    if config["MemorySizeInMB"] not in MEMORY_SIZES:
        sizes = ", ".join(str(s) for s in sorted(MEMORY_SIZES))
        raise ValidationError(f"Variant {name}: ServerlessConfig.MemorySizeInMB must be one of {sizes}.")
    if config.get("ProvisionedConcurrency", 0) > config["MaxConcurrency"]:
        raise ValidationError(f"Variant {name}: ProvisionedConcurrency cannot exceed MaxConcurrency.")


class Demand:
    """When each serverless variant was last wanted. Shared by the router and the controller."""

    def __init__(self, idle_seconds: float | None = None) -> None:
        self.idle_seconds = float(idle_seconds if idle_seconds is not None
                                  else os.environ.get("MODELYARD_SERVERLESS_IDLE_SECONDS", "300"))
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def touch(self, endpoint: str, variant: str) -> None:
        with self._lock:
            self._last[(endpoint, variant)] = time.monotonic()

    def instances(self, endpoint: str, variant: str, config: dict[str, Any]) -> int:
        """How many instances a serverless variant should have now (0 or 1)."""
        if config.get("ProvisionedConcurrency"):
            return 1
        with self._lock:
            last = self._last.get((endpoint, variant))
        return int(last is not None and time.monotonic() - last < self.idle_seconds)
