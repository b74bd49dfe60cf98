"""Shadow variants: a copy of live traffic to a variant whose answers nobody gets.

For each InvokeEndpoint the router hands the request to :meth:`ShadowTraffic.mirror`, which
draws, per shadow variant, whether this request is copied (the variant's share, see
:func:`modelyard.serving.controller._shadow_routes`) and sends the copy in the background. The
caller's answer never waits for a shadow and never sees its failure. What the shadow answered is
recorded like a production answer: its invocation metrics and, when data capture is on, its
captured request and response under the shadow variant's name.

A shadow that falls behind sheds copies rather than queueing them without bound.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

from modelyard.serving.routes import Route, VariantRoute
from modelyard.serving.upstream import Upstream, UpstreamClosed

if TYPE_CHECKING:
    from modelyard.serving.router import Router

#: copies in flight per shadow instance beyond which new copies are dropped
MAX_IN_FLIGHT = 16
#: how long a shadow may take before its copy counts as failed
SHADOW_TIMEOUT = 60.0


class ShadowTraffic:
    """Sends copies of requests to shadow variants and records their answers."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.sent = 0
        self.dropped = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def mirror(self, route: Route, forward: list[tuple[bytes, bytes]], body: bytes) -> None:
        """Copy one request to each shadow variant whose draw selects it (never blocks)."""
        for shadow in route.shadows:
            if random.random() >= shadow.weight:
                continue
            upstream = self.router.least_busy(shadow.ports)
            if upstream.in_flight >= MAX_IN_FLIGHT:
                self.dropped += 1
                continue
            self.sent += 1
            task = asyncio.get_running_loop().create_task(
                self._send(route, shadow, upstream, forward, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, route: Route, shadow: VariantRoute, upstream: Upstream,
                    forward: list[tuple[bytes, bytes]], body: bytes) -> None:
        started = time.perf_counter()
        try:
            status, headers, reply = await asyncio.wait_for(
                upstream.post(b"/invocations", forward, body), SHADOW_TIMEOUT)
        except TimeoutError:
            status, headers, reply = 408, {}, b""
        except UpstreamClosed:
            status, headers, reply = 503, {}, b""
        elapsed = time.perf_counter() - started
        router = self.router
        if router.observer is not None:
            router.observer.observe(route.endpoint, shadow.name, status, elapsed, elapsed)
        if status < 300 and route.capture and router.capturer is not None:
            router.capture(route, shadow.name, forward, body, headers, reply)

    async def drain(self) -> None:
        """Wait for the copies in flight (tests and shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
