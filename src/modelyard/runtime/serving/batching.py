"""Adaptive batching of concurrent invocations (``SAGEMAKER_TS_BATCH_SIZE``,
``SAGEMAKER_TS_MAX_BATCH_DELAY``).

A worker runs its handlers inline in its event loop, so requests that arrive while a prediction
runs wait in their sockets and are all delivered in the loop's next turn. With batching on, a
connection hands each ``POST /invocations`` to the worker's :class:`Batcher`. A request at an
idle worker with nothing else in flight runs at once, inline, as without batching; otherwise
the batcher runs what is pending one turn later, so the requests delivered in the same turn go
into the same batch, up to the max batch size. How a batch runs (input_fn per request, one
predict_fn over the concatenated arrays, output_fn per request) is :mod:`.batch_inference`.

When to wait is the adaptive part (:class:`LoadEstimate`). Waiting only pays when more requests
are on their way, and a request at an idle worker with nothing else in flight must not wait:

- each request counts the requests in flight with it: those pending, plus the batch that ran
  in the loop turn just before it was delivered, unless that batch answered this request's
  own connection (then the client sent it after that answer, not while the batch ran). At one
  connection the count is always 1, so nothing ever waits;
- the batcher waits only while fewer requests are pending than that count has recently been,
  and never longer than the max delay past the time the first pending request could have run
  (its arrival, or the end of the batch that was running then);
- nor much past how long gathering a batch has recently taken, and a wait that ends short
  lowers the estimate to what did come: once a burst has passed, one request waits (briefly)
  and the next ones run at once.

With batching off (the default) every connection answers inline as before.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from modelyard.runtime.serving.app import InferenceApp, Response, failure
from modelyard.runtime.serving.httpserver import Connection, HttpServer
from modelyard.runtime.serving.spec import WorkerSpec

if TYPE_CHECKING:
    from modelyard.runtime.serving.batch_inference import BatchInference

#: never cut a wait shorter than this (seconds), however fast batches have gathered
MIN_WAIT = 0.001
#: a wait may take this many times the recent gathering time before it gives up
GATHER_SLACK = 4.0
#: weight of the newest gathering time in its moving average
GATHER_WEIGHT = 0.25

T = TypeVar("T")


class EventLoop(Protocol):
    """What the batcher uses of an asyncio event loop (a test passes a scripted one)."""

    def time(self) -> float: ...

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> asyncio.Handle: ...

    def call_later(
        self, delay: float, callback: Callable[..., Any], *args: Any
    ) -> asyncio.TimerHandle: ...

    def call_at(
        self, when: float, callback: Callable[..., Any], *args: Any
    ) -> asyncio.TimerHandle: ...


class LoadEstimate:
    """How many requests arrive together, and how long gathering them takes.

    ``together`` (1..max_size) rises at once with what requests see in flight and falls when a
    wait for that many times out; ``gather`` is a moving average of the seconds from a batch's
    first arrival until it ran complete. It starts at :data:`MIN_WAIT` rather than at the max
    delay: with nothing learned yet, a short wait is the one that cannot hurt much.
    """

    def __init__(self, max_size: int, max_delay: float) -> None:
        self.max_size = max_size
        self.max_delay = max_delay
        self.together = 1
        self.gather = MIN_WAIT

    def saw(self, in_flight: int) -> None:
        """A request arrived with ``in_flight`` requests in flight, itself included."""
        if in_flight > self.together:
            self.together = min(in_flight, self.max_size)

    def wait_limit(self) -> float:
        """How long (seconds) the first pending request may wait for ``together`` to arrive."""
        return min(self.max_delay, max(MIN_WAIT, GATHER_SLACK * self.gather))

    def ran(self, size: int, waited: float, complete: bool) -> None:
        """A batch of ``size`` ran ``waited`` seconds after its first request arrived;
        ``complete``: as many as expected had come (else its wait ran out)."""
        if complete:
            self.gather += GATHER_WEIGHT * (waited - self.gather)
        else:
            self.together = max(1, size)


class Batcher(Generic[T]):
    """Collects items submitted on the event loop and hands them to ``run`` in batches.

    ``run`` is called on the loop (from ``submit`` itself for a lone item) with 1..max_size
    items, one batch at a time, and must not raise. No item waits more than ``max_delay``
    seconds past the time it could have run: its arrival, or the end of the batch that was
    running then.
    """

    def __init__(
        self, loop: EventLoop, run: Callable[[list[T]], None], max_size: int, max_delay: float
    ) -> None:
        self.loop = loop
        self.run = run
        self.max_size = max_size
        self.estimate = LoadEstimate(max_size, max_delay)
        self._pending: collections.deque[tuple[float, T, object]] = collections.deque()
        self._flush_handle: asyncio.Handle | None = None
        self._waiting_for = 0  # > 0: a timer runs the batch unless this many are pending first
        self._just_ran = 0  # the size of the batch that ran in the loop's previous turn
        self._just_answered: set[object] = set()  # the sources of that batch's items
        self._batches = 0
        self._running = False  # inside run(): a submit from there must not run a nested batch
        self._free_since = float("-inf")  # when the last batch ended

    @property
    def pending(self) -> int:
        """Items submitted and not yet handed to ``run``."""
        return len(self._pending)

    def submit(self, item: T, source: object = None) -> None:
        """Queue ``item``, or run it now when nothing else is in flight. ``source`` is where it
        came from (its connection): one source has one item in flight at a time."""
        self._pending.append((self.loop.time(), item, source))
        count = len(self._pending)
        if source is not None and source in self._just_answered:
            self.estimate.saw(count)
        else:
            self.estimate.saw(count + self._just_ran)
        if self._flush_handle is None:
            if count == 1 and self.estimate.together == 1 and not self._running:
                self._flush()  # nothing else in flight: no reason to wait even one turn
            else:
                self._flush_handle = self.loop.call_soon(self._flush)
        elif self._waiting_for and count >= self._waiting_for:
            self._flush_handle.cancel()  # what the wait was for has come
            self._waiting_for = 0
            self._flush_handle = self.loop.call_soon(self._flush)

    def stop_batching(self) -> None:
        """Run one item at a time from now on, without waiting (the handlers cannot batch)."""
        self.max_size = self.estimate.max_size = self.estimate.together = 1

    def _flush(self, timed_out: bool = False) -> None:
        self._flush_handle = None
        self._waiting_for = 0
        if not self._pending:
            return
        now = self.loop.time()
        start = max(self._pending[0][0], self._free_since)  # when the first could have run
        count = len(self._pending)
        target = self.estimate.together
        if count < target and not timed_out:
            deadline = start + self.estimate.wait_limit()
            if now < deadline:
                self._waiting_for = target
                self._flush_handle = self.loop.call_at(deadline, self._flush, True)
                return
        size = min(count, self.max_size)
        taken = [self._pending.popleft() for _ in range(size)]
        batch = [item for _, item, _ in taken]
        self.estimate.ran(size, now - start, complete=count >= target)
        self._batches += 1
        self._just_ran = size
        self._just_answered = {source for _, _, source in taken if source is not None}
        self._running = True
        try:
            self.run(batch)
        finally:
            self._running = False
            self._free_since = self.loop.time()
            # Timers run after the I/O callbacks of the loop's next turn, which deliver what
            # arrived while this batch ran: those requests count it as in flight with them,
            # and the next batch takes them together.
            self.loop.call_later(0, self._forget_batch, self._batches)
            if self._pending and self._flush_handle is None:
                self._flush_handle = self.loop.call_later(0, self._flush)

    def _forget_batch(self, number: int) -> None:
        if number == self._batches:
            self._just_ran = 0
            self._just_answered = set()


@dataclasses.dataclass(eq=False, slots=True)
class Request:
    """One complete request on a batching connection, waiting for its answer."""

    connection: BatchingConnection
    method: bytes
    url: bytes
    headers: dict[bytes, bytes]
    body: bytes
    keep_alive: bool

    @property
    def is_invocation(self) -> bool:
        """Whether the batcher takes it (``POST /invocations``); other routes answer inline."""
        return self.method == b"POST" and self.url.split(b"?", 1)[0] == b"/invocations"


class BatchingConnection(Connection):
    """A connection whose invocations are answered by the batcher, in request order.

    One request at a time is out for an answer; requests pipelined behind it are parsed and
    queued (reading pauses meanwhile), then started in order once it is answered.
    """

    def __init__(self, server: HttpServer, batcher: Batcher[Request]) -> None:
        super().__init__(server)
        self.batcher = batcher
        self.receiving = False  # a request is partly received
        self.outstanding: Request | None = None
        self.queued: collections.deque[Request] = collections.deque()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.receiving = True

    def on_message_complete(self) -> None:
        self.receiving = False
        if self.refused or self.transport is None:
            super().on_message_complete()  # closes as a plain connection does
            return
        body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        request = Request(self, self.parser.get_method(), self.url, self.headers, body,
                          self.parser.should_keep_alive())  # fmt: skip
        if self.outstanding is not None:
            self.queued.append(request)
            self.transport.pause_reading()  # a client that pipelines waits, as with no batching
            return
        self._start(request)

    def _start(self, request: Request) -> None:
        if request.is_invocation:
            self.outstanding = request
            self.batcher.submit(request, self)
            return
        response = self.server.handler(request.method, request.url, request.headers, request.body)
        self._answer(request, response)

    def respond(self, request: Request, response: Response) -> None:
        """Send the batch's answer to ``request``, then start what was pipelined behind it."""
        self.outstanding = None
        self._answer(request, response)
        while self.queued and self.outstanding is None and self._open():
            self._start(self.queued.popleft())
        if not self.queued and self.transport is not None:
            self.transport.resume_reading()

    def _answer(self, request: Request, response: Response) -> None:
        self.busy = self.receiving or self.outstanding is not None or bool(self.queued)
        self._send(response, request.keep_alive and not self.server.draining)

    def _open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def close_if_idle(self) -> None:
        if self.outstanding is None and not self.queued:
            super().close_if_idle()


def run_batch(runner: BatchInference, batcher: Batcher[Request], batch: list[Request]) -> None:
    """Run ``batch`` through ``runner`` and answer each request on its connection as soon as
    its response is ready."""
    live = [r for r in batch if r.connection.transport is not None]  # skip clients that left
    answered = [False] * len(live)
    try:
        for index, response in runner.run([(r.headers, r.body) for r in live]):
            answered[index] = True
            live[index].connection.respond(live[index], response)
    except Exception as e:  # a bug of ours: the requests still get an answer
        response = failure(e)
        for request, done in zip(live, answered, strict=True):
            if not done:
                request.connection.respond(request, response)
    if not runner.merging:
        batcher.stop_batching()


def unbatchable(app: object) -> str | None:
    """Why the handlers of ``app`` cannot take batches, or None when they can."""
    if not isinstance(app, InferenceApp):
        return "multi-model endpoints serve one request at a time"
    if app.handlers.transform_fn is not None:
        return "transform_fn handles whole requests"
    if app.handlers.predict_fn.takes_context:
        return "predict_fn takes the request context, which is one request's"
    return None


def connection_factory(
    app: object, spec: WorkerSpec
) -> Callable[[HttpServer], Connection] | None:
    """The connections of a batching worker, or None (plain connections) when batching is off.

    Call it on the running event loop; it says in the worker's log what it decided.
    """
    if spec.batch_size <= 1:
        return None
    reason = unbatchable(app)
    if reason is not None:
        print(f"SAGEMAKER_TS_BATCH_SIZE={spec.batch_size} is ignored: {reason}", file=sys.stderr)
        return None
    from modelyard.runtime.serving.batch_inference import BatchInference

    assert isinstance(app, InferenceApp)
    runner = BatchInference(app)
    batcher: Batcher[Request] = Batcher(
        asyncio.get_running_loop(),
        lambda batch: run_batch(runner, batcher, batch),
        spec.batch_size,
        spec.max_batch_delay_ms / 1000,
    )
    print(
        f"Batching up to {spec.batch_size} concurrent requests per predict_fn call, "
        f"waiting at most {spec.max_batch_delay_ms:g} ms for them",
        file=sys.stderr,
    )
    return functools.partial(BatchingConnection, batcher=batcher)
