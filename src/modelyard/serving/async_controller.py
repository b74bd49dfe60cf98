"""The async-invocation controller: run queued InvokeEndpointAsync requests on the endpoints.

Each pass of the reconcile loop (a thread):

1. a Running invocation this process is not running was started by a server that is gone: its
   result was never written, so it is queued again;
2. a Queued invocation older than its RequestTTLSeconds expires (its failure object says so);
   one whose endpoint is gone fails;
3. the others, oldest first, go to an instance of their endpoint that runs fewer than
   MaxConcurrentInvocationsPerInstance of them (a variant drawn by weight among those with
   room, then its least busy instance); they wait while none has room.

The calls run on an event loop of the controller's own, in a thread started on first use,
because the reconcile thread must not wait for models. A call reads the input through
:class:`~modelyard.artifacts.Artifacts`, POSTs it to the instance's ``/invocations`` (within
InvocationTimeoutSeconds), writes the answer to the output location, or the model's error to the
failure location, and then records the outcome: an object is always written before the status
says it exists.

Several live servers sharing one metadata store would re-queue each other's running
invocations; one server per store is assumed.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable

from modelyard.artifacts import Artifacts
from modelyard.core.errors import ArtifactError, ModelError, StaleRecord
from modelyard.serving import spec
from modelyard.serving.async_spec import (
    ASYNC_INVOCATION,
    EXPIRED,
    FAILED,
    PENDING,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    AsyncRequest,
)
from modelyard.serving.routes import Route, RoutingTable
from modelyard.serving.upstream import Upstream, UpstreamClosed
from modelyard.store.base import MetadataStore, Record, RecordNotFound
from modelyard.store.mutate import mutate

log = logging.getLogger(__name__)


class AsyncInvocationController:
    """Dispatches queued async invocations; ``reconcile_all`` is called by the ReconcileLoop."""

    def __init__(self, store: MetadataStore, artifacts: Artifacts, table: RoutingTable,
                 account: str, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.artifacts = artifacts
        self.table = table
        self.account = account
        self.clock = clock
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}  # invocation → port, for the calls of this process
        self._loop: asyncio.AbstractEventLoop | None = None
        self._upstreams: dict[int, Upstream] = {}  # used only on self._loop

    def reconcile_all(self) -> int:
        pending = list(self.store.iter_kind(ASYNC_INVOCATION, status_in=PENDING))
        with self._lock:
            mine = dict(self._running)
        busy = collections.Counter(mine.values())
        for record in pending:
            try:
                if record.status == RUNNING and record.name not in mine:
                    self._transition(record, QUEUED, reason="requeued: the server stopped while it ran")
                elif record.status == QUEUED:
                    self._dispatch(record, busy)
            except (StaleRecord, RecordNotFound):
                continue  # changed under us: the next pass sees the new state
            except Exception:
                log.exception("async invocation %s could not be dispatched", record.name)
        return len(pending)

    def shutdown(self) -> None:
        """Stop the calls' event loop; running invocations are re-queued by the next server."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)

    # --- dispatching ---------------------------------------------------------------------
    def _dispatch(self, record: Record, busy: collections.Counter[int]) -> None:
        request = AsyncRequest.from_spec(record.spec)
        if self.clock() > request.enqueued_at + request.ttl_seconds:
            self._finish_early(record, request, EXPIRED, f"The request expired: it waited more than "
                               f"RequestTTLSeconds ({request.ttl_seconds} s) in the queue.")
            return
        route = self.table.routes.get(request.endpoint)
        if route is None:
            if not self._endpoint_exists(request.endpoint):
                self._finish_early(record, request, FAILED, f"Endpoint {request.endpoint} was deleted.")
            return  # not serving yet (Creating, Updating): wait
        chosen = free_instance(route, busy, request.max_concurrent)
        if chosen is None:
            return
        variant, port = chosen
        attempts = int(record.state.get("Attempts", 0)) + 1
        self.store.update(ASYNC_INVOCATION, record.name, record.version, status=RUNNING,
                          state={"Status": RUNNING, "Attempts": attempts, "StartedAt": self.clock()},
                          modified=self.clock())
        busy[port] += 1
        with self._lock:
            self._running[record.name] = port
        asyncio.run_coroutine_threadsafe(self._run(record.name, request, variant, port), self._event_loop())

    def _endpoint_exists(self, name: str) -> bool:
        try:
            self.store.get(spec.ENDPOINT, name)
        except RecordNotFound:
            return False
        return True

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            threading.Thread(target=self._loop.run_forever, name="modelyard-async-invocations",
                             daemon=True).start()
        return self._loop

    # --- one call (on the controller's event loop) ----------------------------------------
    async def _run(self, name: str, request: AsyncRequest, variant: str, port: int) -> None:
        try:
            status, reason = await self._call(request, variant, port)
            await asyncio.to_thread(self._record, name, status, reason)
        except Exception:
            log.exception("async invocation %s failed unexpectedly; it stays Running until restart", name)
        finally:
            with self._lock:
                self._running.pop(name, None)

    async def _call(self, request: AsyncRequest, variant: str, port: int) -> tuple[str, str | None]:
        """Run the request; (Succeeded, None) once the output is written, else (Failed, why)."""
        try:
            body = await asyncio.to_thread(self.artifacts.get_bytes, request.input_location)
        except ArtifactError as e:
            return await self._fail(request, f"Cannot read the input {request.input_location}: {e.message}")
        upstream = self._upstreams.get(port) or self._upstreams.setdefault(port, Upstream(port))
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in request.headers]
        try:
            status, _, reply = await asyncio.wait_for(
                upstream.post(b"/invocations", headers, body), request.timeout_seconds)
        except TimeoutError:
            return await self._fail(request, f"The model did not answer within InvocationTimeoutSeconds "
                                    f"({request.timeout_seconds} s): timed out")
        except UpstreamClosed as e:
            return await self._fail(request, f"The model server closed the connection before answering: {e}")
        if status >= 300:
            error = ModelError(variant, status, reply.decode("utf-8", "replace"), self.account)
            return await self._fail(request, error.message)
        await asyncio.to_thread(self.artifacts.put_bytes, request.output_location, reply)
        return SUCCEEDED, None

    async def _fail(self, request: AsyncRequest, message: str) -> tuple[str, str]:
        await asyncio.to_thread(self.artifacts.put_bytes, request.failure_location, message.encode("utf-8"))
        return FAILED, message

    # --- outcomes -------------------------------------------------------------------------
    def _finish_early(self, record: Record, request: AsyncRequest, status: str, message: str) -> None:
        """Expire or fail a request that never ran: the failure object, then the status."""
        self.artifacts.put_bytes(request.failure_location, message.encode("utf-8"))
        self._transition(record, status, reason=message)

    def _transition(self, record: Record, status: str, reason: str | None = None) -> None:
        state = {**record.state, "Status": status, "FailureReason": reason}
        self.store.update(ASYNC_INVOCATION, record.name, record.version, status=status, state=state,
                          modified=self.clock())

    def _record(self, name: str, status: str, reason: str | None) -> None:
        def finish(state: dict[str, object]) -> dict[str, object]:
            return {**state, "Status": status, "FailureReason": reason, "LastModifiedTime": self.clock()}

        mutate(self.store, ASYNC_INVOCATION, name, finish)


def free_instance(route: Route, busy: collections.Counter[int], limit: int) -> tuple[str, int] | None:
    """``(variant, port)`` to call: a variant drawn by weight among those with an instance below
    ``limit`` calls, then its least busy such instance; None when every instance is full."""
    def open_ports(ports: Iterable[int]) -> list[int]:
        return [p for p in ports if busy[p] < limit]

    variants = tuple(v for v in route.variants if open_ports(v.ports))
    if not variants:
        return None
    variant = Route(route.endpoint, variants).pick()
    assert variant is not None  # pick() without a target always draws one
    return variant.name, min(open_ports(variant.ports), key=lambda p: busy[p])
