"""What a multi-model invocation spent making its model ready, as the worker tells the router.

The worker answers every multi-model invocation with one internal header, which the router
reads for the endpoint's metrics (``ModelCacheHit``, ``ModelLoadingWaitTime``,
``ModelDownloadingTime``, ``ModelLoadingTime``, ``ModelUnloadingTime``) and never passes on:

- ``x-modelyard-model-loading: hit`` when the model was in the worker's memory;
- ``x-modelyard-model-loading: miss;download=<µs>;load=<µs>;unload=<µs>`` when it was loaded
  for this invocation (``download`` is 0 when another worker had the files on disk already,
  ``unload`` is the time spent evicting other models to make room, or unloading this one
  afterwards when the cache is disabled).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager

HEADER = b"x-modelyard-model-loading"
_FIELDS = ("download", "load", "unload")


@dataclasses.dataclass
class Loading:
    """One invocation's model readiness; times in microseconds."""

    hit: bool = True
    download: int = 0
    load: int = 0
    unload: int = 0

    @contextmanager
    def timing(self, field: str) -> Iterator[None]:
        """Add the time the block takes to ``field`` (download, load or unload)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = int((time.perf_counter() - started) * 1e6)
            setattr(self, field, getattr(self, field) + elapsed)

    @property
    def wait(self) -> int:
        """How long the invocation waited for its model (0 on a hit)."""
        return self.download + self.load + self.unload

    def header(self) -> tuple[bytes, bytes]:
        if self.hit:
            return HEADER, b"hit"
        return HEADER, ";".join(["miss", *(f"{f}={getattr(self, f)}" for f in _FIELDS)]).encode()

    @classmethod
    def parse(cls, value: bytes | None) -> Loading | None:
        """The header's value read back; None when absent or not in this format."""
        if value is None:
            return None
        if value == b"hit":
            return cls()
        kind, *pairs = value.decode("latin-1").split(";")
        fields = dict(pair.partition("=")[::2] for pair in pairs)
        if kind != "miss" or set(fields) != set(_FIELDS) or not all(v.isdigit() for v in fields.values()):
            return None
        return cls(False, *(int(fields[f]) for f in _FIELDS))
