"""One worker process of a model-server instance.

``python -m modelyard.runtime.serving.worker --listen-fd N --ready-fd M --index I <spec>``,
started by the instance process (:mod:`.workers`) with the interpreter of the model's
environment. It imports the user module, resolves the handlers, calls ``model_fn`` once, warms
the model up, freezes the heap and serves HTTP on the inherited listening socket. Startup's
outcome goes to the instance as one JSON line on the ready pipe: ``{"failure": null}`` once
accepting, else the failure reason. SIGTERM drains (in-flight requests finish) and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import socket
import sys
import traceback
from typing import Any

from modelyard.runtime.failures import ClientError, truncate
from modelyard.runtime.serving import batching, frameworks, handlers
from modelyard.runtime.serving.app import InferenceApp
from modelyard.runtime.serving.context import Context
from modelyard.runtime.serving.httpserver import HttpServer
from modelyard.runtime.serving.multimodel import MultiModelApp
from modelyard.runtime.serving.spec import WorkerSpec

#: how long in-flight requests may take to finish after SIGTERM
DRAIN_SECONDS = 10.0
_PARENT_CHECK_SECONDS = 1.0


def load_app(spec: WorkerSpec, index: int) -> InferenceApp | MultiModelApp:
    """Import, resolve, load and warm up; ClientError when the user's part fails."""
    if spec.multi_model is not None:  # no model yet: each one loads on its first request
        return MultiModelApp.start(spec, index, warm_up)
    module = handlers.import_user_module(spec)
    resolved = handlers.resolve(module, spec.framework, spec.default_accept)
    context = Context(spec.model_dir, index)
    model = handlers.load_model(resolved, spec.model_dir, context)
    warm_up(resolved, model, spec, context)
    # Everything alive now lives as long as the worker: keep it out of every future
    # collection, so a full collection costs what the requests allocate, not the model.
    gc.collect()
    gc.freeze()
    return InferenceApp(resolved, model, spec, context)


def warm_up(resolved: handlers.Handlers, model: Any, spec: WorkerSpec, context: Context) -> None:
    """The user's model_warmup_fn, else the framework's warm-up when its predict_fn is used."""
    if resolved.model_warmup_fn is not None:
        hook = resolved.model_warmup_fn
        handlers.call_at_startup("model_warmup_fn", hook, context, spec.model_dir, model)
    elif not resolved.predict_fn.user:
        try:
            frameworks.defaults(spec.framework).warm_up(model)
        except Exception as e:  # a model the default cannot warm up still serves
            print(f"Warm-up skipped: {type(e).__name__}: {e}", file=sys.stderr)


def report_ready(fd: int, failure: str | None) -> None:
    """Tell the instance how startup went (one line, then the pipe closes)."""
    try:
        os.write(fd, (json.dumps({"failure": failure}) + "\n").encode())
    finally:
        os.close(fd)


async def serve(
    app: InferenceApp | MultiModelApp, spec: WorkerSpec, sock: socket.socket, ready_fd: int
) -> None:
    """Serve until SIGTERM/SIGINT or until the instance process is gone, then drain."""
    loop = asyncio.get_running_loop()
    connection = batching.connection_factory(app, spec)  # None: batching is off
    server = HttpServer(app.handle, spec.max_payload_bytes, spec.max_payload_mb, connection)
    # one worker has no sibling to leave connections to; batching gathers concurrent requests
    server.start(sock, exclusive=spec.workers > 1 and connection is None)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    _watch_parent(loop, os.getppid(), stop)
    report_ready(ready_fd, None)
    await stop.wait()
    await server.drain(DRAIN_SECONDS)


def _watch_parent(loop: asyncio.AbstractEventLoop, parent: int, stop: asyncio.Event) -> None:
    # An instance process killed with SIGKILL cannot stop its workers: they notice instead.
    if os.getppid() != parent:
        stop.set()
        return
    loop.call_later(_PARENT_CHECK_SECONDS, _watch_parent, loop, parent, stop)


def main(argv: list[str]) -> int:
    """Run one worker; its exit code."""
    parser = argparse.ArgumentParser(prog="modelyard.runtime.serving.worker")
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--ready-fd", type=int, required=True)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("spec")
    args = parser.parse_args(argv)
    spec = WorkerSpec.from_json(args.spec)
    try:
        app = load_app(spec, args.index)
    except ClientError as e:
        traceback.print_exc()
        report_ready(args.ready_fd, e.reason)
        return 1
    except Exception as e:
        traceback.print_exc()
        reason = f"InternalServerError: the model server failed to start: {type(e).__name__}: {e}"
        report_ready(args.ready_fd, truncate(reason))
        return 1
    sock = socket.socket(fileno=args.listen_fd)
    asyncio.run(serve(app, spec, sock, args.ready_fd))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
