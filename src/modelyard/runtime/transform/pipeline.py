"""Requests in flight, answered in input order: the heart of a transform host.

The main thread reads and batches the input and submits each batch to a pool of
``MaxConcurrentTransforms`` sending threads. Submitted batches wait in one queue in input
order; the head is written out as soon as it is answered, and reading pauses while the queue
holds twice the concurrency, so memory stays at a few payloads whatever the input size. An
object's ``.out`` is uploaded when the marker queued after its last batch reaches the head.
"""

from __future__ import annotations

import collections
import concurrent.futures
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.runtime.failures import ClientError
from modelyard.runtime.transform.invoke import Invoker
from modelyard.runtime.transform.joins import DataProcessing
from modelyard.runtime.transform.plan import PROGRESS_PREFIX
from modelyard.runtime.transform.records import NEWLINE, Batch

if TYPE_CHECKING:
    from modelyard.artifacts import Artifacts

#: seconds between progress lines in the log
PROGRESS_INTERVAL = 2.0


class OutputObject:
    """One ``.out`` object, written in order to a local file and uploaded when complete."""

    def __init__(self, source: str, target: str, path: Path, assemble_lines: bool) -> None:
        self.source = source
        self.target = target
        self.path = path
        self.assemble_lines = assemble_lines
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "wb")

    def write(self, body: bytes) -> None:
        """One response; AssembleWith=Line ends it with a newline unless it has one."""
        self._file.write(body)
        if self.assemble_lines and body and not body.endswith(NEWLINE):
            self._file.write(NEWLINE)

    def finish(self, store: Artifacts) -> None:
        """Upload the file to its ``.out`` URI and remove it."""
        self._file.close()
        store.upload_file(self.path, self.target)
        self.path.unlink(missing_ok=True)


class Progress:
    """Counts what has been written and logs it every few seconds."""

    def __init__(self, objects: int, log: Callable[[str], None]) -> None:
        self.total = objects
        self.records = 0
        self.objects = 0
        self.log = log
        self._last = 0.0

    def report(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            # the runtime prefix already says "[modelyard] "
            text = PROGRESS_PREFIX.removeprefix("[modelyard] ")
            self.log(f"{text}records={self.records} objects={self.objects}/{self.total}")


Entry = tuple["concurrent.futures.Future[tuple[bytes, str | None]] | None", OutputObject, Batch | None]


class Pipeline:
    """Sends batches concurrently and writes their answers in input order."""

    def __init__(self, invoker: Invoker, processing: DataProcessing, concurrency: int,
                 store: Artifacts, progress: Progress) -> None:
        self.invoker = invoker
        self.processing = processing
        self.store = store
        self.progress = progress
        self.window = 2 * concurrency
        self.pool = concurrent.futures.ThreadPoolExecutor(concurrency, thread_name_prefix="invoke")
        self.pending: collections.deque[Entry] = collections.deque()

    def add_object(self, output: OutputObject, batches: Iterable[Batch]) -> None:
        """Submit every batch of one object, then its upload marker.

        Each batch is sent once the one after it has been read: input that cannot be sent (a
        record larger than MaxPayloadInMB) fails the object before the request just ahead of
        it, whatever the model answers that request, instead of racing with the answer.
        """
        try:
            ahead = iter(batches)
            batch = next(ahead, None)
            while batch is not None:
                following = next(ahead, None)
                future = self.pool.submit(self.invoker.invoke, batch.body)
                self.pending.append((future, output, batch))
                self._settle(self.window)
                batch = following
        except ClientError as e:  # reading or batching the input failed
            raise ClientError(f"{output.source}: {e.message}") from e
        self.pending.append((None, output, None))
        self._settle(self.window)

    def finish(self) -> None:
        """Wait for every answer and upload every remaining object."""
        self._settle(0)
        self.invoker.close()
        self.progress.report(force=True)

    def close(self) -> None:
        """Drop what is still queued (after a failure or a stop)."""
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _settle(self, keep: int) -> None:
        """Write answered heads; block on the head while more than ``keep`` are queued."""
        while self.pending:
            future = self.pending[0][0]
            if len(self.pending) <= keep and future is not None and not future.done():
                return
            self._complete(self.pending.popleft())
        self.progress.report()

    def _complete(self, entry: Entry) -> None:
        future, output, batch = entry
        if future is None or batch is None:
            output.finish(self.store)
            self.progress.objects += 1
            return
        try:
            body, content_type = future.result()
            output.write(self.processing.outputs(batch, body, content_type))
        except ClientError as e:  # InvocationFailed, or a join the answer does not fit
            raise ClientError(f"{output.source}: {e.message}") from e
        self.progress.records += batch.records
