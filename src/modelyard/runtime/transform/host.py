"""One batch transform host: ``python -m modelyard.runtime.transform <host_dir>``.

Sequence: read ``plan.json`` → start the model server → list this host's share of the input
objects while it starts → wait for ``/ping`` → settle strategy, payload limit and concurrency
(the request's, else ``/execution-parameters``', else SageMaker's defaults) → stream every
object through the server into its ``.out`` object → stop the server → one ``exit`` event.
Exit codes are those of :mod:`modelyard.runtime.plan`: SIGTERM stops the work (143) without
uploading partial outputs.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from modelyard.artifacts.transfer import safe_relative, take_shard
from modelyard.artifacts.uris import join_uri
from modelyard.runtime import threads
from modelyard.runtime.failures import ClientError, platform_error
from modelyard.runtime.plan import EXIT_ALGORITHM_ERROR, EXIT_OK, EXIT_PLATFORM_ERROR, EXIT_STOPPED
from modelyard.runtime.reporting import Reporter, run_host
from modelyard.runtime.transform import records
from modelyard.runtime.transform.invoke import Invoker
from modelyard.runtime.transform.joins import DataProcessing
from modelyard.runtime.transform.pipeline import OutputObject, Pipeline, Progress
from modelyard.runtime.transform.plan import TransformPlan
from modelyard.runtime.transform.server import ModelServer

if TYPE_CHECKING:
    from modelyard.artifacts import Artifacts

MIB = 1024 * 1024
DEFAULT_PAYLOAD_MB = 6
_STRATEGIES = {"MULTI_RECORD": "MultiRecord", "SINGLE_RECORD": "SingleRecord"}


class Stopped(Exception):
    """SIGTERM arrived: stop sending, upload nothing more."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """What the host settled on before sending anything."""

    strategy: str  # MultiRecord | SingleRecord
    payload_mb: int
    concurrency: int

    @classmethod
    def settle(cls, plan: TransformPlan, offered: dict[str, Any]) -> Limits:
        """The request's values, else the server's execution parameters, else the defaults."""
        strategy = plan.batch_strategy or _STRATEGIES.get(str(offered.get("BatchStrategy")), "MultiRecord")
        return cls(
            strategy=strategy,
            payload_mb=plan.max_payload_mb or _positive(offered.get("MaxPayloadInMB")) or DEFAULT_PAYLOAD_MB,
            concurrency=plan.max_concurrent or _positive(offered.get("MaxConcurrentTransforms")) or 1,
        )


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


class TransformRun:
    """The state of one transform host process; :meth:`execute` does the whole sequence."""

    def __init__(self, host_dir: Path, plan: TransformPlan, reporter: Reporter) -> None:
        self.host_dir = host_dir
        self.plan = plan
        self.reporter = reporter
        self.server = ModelServer(plan, host_dir, reporter)
        self.processing = DataProcessing(plan.input_filter, plan.output_filter, plan.join_source,
                                          plan.content_type)
        self.pipeline: Pipeline | None = None
        self._interruptible = True

    def execute(self) -> tuple[int, str | None]:
        """Run every step; the exit code and failure reason (never raises)."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            self.transform()
            return EXIT_OK, None
        except Stopped:
            self.reporter.runtime_log("Stopped: the outputs not yet uploaded are dropped")
            return EXIT_STOPPED, None
        except ClientError as e:
            self.reporter.runtime_log(f"Failed: {e.message}")
            return EXIT_ALGORITHM_ERROR, e.reason
        except Exception as e:  # the platform's own fault: say what, keep the traceback
            return EXIT_PLATFORM_ERROR, platform_error(e, self.reporter.runtime_log)
        finally:
            self._interruptible = False
            if self.pipeline is not None:
                self.pipeline.close()
            self.server.stop()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self._interruptible:
            self._interruptible = False  # a second signal must not break into the cleanup
            self.reporter.runtime_log(f"Received signal {signum}: stopping the transform")
            raise Stopped()

    def transform(self) -> None:
        """Start the server, list, send every object of this host's share."""
        # the server's start (seconds: imports, model load) overlaps the listing and imports
        self.server.start()
        import numpy  # noqa: F401  # for records.line_chunks, imported now rather than later

        from modelyard.artifacts import Artifacts

        store = Artifacts.from_environment()
        objects = self.objects(store)
        self.reporter.runtime_log(
            f"{len(objects)} input object(s) for {self.plan.host}; waiting for the model server"
        )
        self.server.wait_ready()
        limits = Limits.settle(self.plan, self.server.execution_parameters())
        self.reporter.runtime_log(
            f"Transforming with BatchStrategy={limits.strategy} MaxPayloadInMB={limits.payload_mb} "
            f"MaxConcurrentTransforms={limits.concurrency}"
        )
        invoker = Invoker(self.server.port, self.plan.content_type, self.plan.accept,
                          self.plan.timeout_seconds, self.plan.max_retries, self.reporter.runtime_log)
        progress = Progress(len(objects), self.reporter.runtime_log)
        self.pipeline = Pipeline(invoker, self.processing, limits.concurrency, store, progress)
        for uri, relative in objects:
            with store.open_read(uri) as raw:
                stream = records.open_input(raw, self.plan.compression)
                self.pipeline.add_object(self._output(uri, relative), self.batches(stream, limits))
        self.pipeline.finish()

    def objects(self, store: Artifacts) -> list[tuple[str, str]]:
        """``(uri, relative key)`` of this host's input objects; ClientError when there are none."""
        prefix = self.plan.input_uri
        listed = [uri for uri, _ in store.list(prefix)]
        if not listed:
            raise ClientError(f"No input objects found under {prefix}.")
        mine = take_shard(listed, self.plan.host_index, self.plan.host_count, sharded=True)
        return [(uri, safe_relative(relative_key(prefix, uri), uri).as_posix()) for uri in mine]

    def batches(self, stream: BinaryIO, limits: Limits) -> Iterator[records.Batch]:
        """The request bodies of one object, as SplitType, BatchStrategy and filters say."""
        limit = limits.payload_mb * MIB
        if self.plan.split_type == "None":
            return records.whole_object(stream, limit)
        if limits.strategy == "MultiRecord" and not self.processing.per_record:
            return records.line_chunks(stream, limit)
        return records.pack(
            records.lines(stream), limit, single=limits.strategy == "SingleRecord",
            transform=self.processing.filter_input if self.processing.input_path else None,
            keep_inputs=self.processing.join,
        )

    def _output(self, uri: str, relative: str) -> OutputObject:
        target = join_uri(self.plan.output_uri, relative + ".out")
        local = self.host_dir / "output" / (relative + ".out")
        return OutputObject(uri, target, local, self.plan.assemble_with == "Line")


def relative_key(prefix: str, uri: str) -> str:
    """The object's key below the input prefix: below the folder the prefix names, or else
    below the prefix's last ``/`` (a prefix that is part of a name, or one object's key)."""
    folder = prefix if prefix.endswith("/") else prefix + "/"
    if uri.startswith(folder):
        return uri[len(folder) :]
    return uri[prefix.rfind("/") + 1 :]


def cli(argv: list[str]) -> int:
    """``python -m modelyard.runtime.transform <host_dir>``; returns the exit code."""
    # numpy is not imported yet: the host's own array work (finding line ends) is one thread
    # at a time, and the model server's workers get their pools sized by their instance
    threads.size_pools(os.environ, 1, chosen={})
    return run_host(argv, "modelyard.runtime.transform", TransformPlan.read,
                    lambda d, plan, reporter: TransformRun(d, plan, reporter).execute())


__all__ = ["TransformRun", "cli"]
