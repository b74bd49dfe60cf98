"""Where each endpoint's traffic goes: an immutable table the controller replaces whole.

The controller thread builds a new table each pass and swaps it in with one assignment; the
router reads ``table.routes`` on the event loop without locks, and always sees a complete
table, old or new.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class VariantRoute:
    """One production variant: its weight and the ports of its ready instances."""

    name: str
    weight: float
    ports: tuple[int, ...]
    max_concurrency: int | None = None  # serverless variants only; they may have no ports
    multi_model: bool = False  # its model is Mode MultiModel: requests name a TargetModel


@dataclasses.dataclass(frozen=True)
class Route:
    """The variants of one InService endpoint that have ready instances.

    ``shadows`` get a copy of a request with the probability their ``weight`` says; their
    answers are recorded, never returned.
    """

    endpoint: str
    variants: tuple[VariantRoute, ...]
    capture: dict[str, Any] | None = None  # the live config's DataCaptureConfig
    shadows: tuple[VariantRoute, ...] = ()

    def pick(self, target_variant: str | None = None) -> VariantRoute | None:
        """``target_variant`` if given (None when unknown), else a variant drawn by weight."""
        if target_variant is not None:
            return next((v for v in self.variants if v.name == target_variant), None)
        total = sum(v.weight for v in self.variants)
        if total <= 0:
            return self.variants[0]
        point = random.random() * total
        for variant in self.variants:
            point -= variant.weight
            if point < 0:
                return variant
        return self.variants[-1]


class RoutingTable:
    """The current routes; replaced whole by :meth:`publish`."""

    def __init__(self) -> None:
        self.routes: Mapping[str, Route] = {}

    def publish(self, routes: Mapping[str, Route]) -> None:
        if routes != self.routes:
            self.routes = dict(routes)
