"""Adaptive batching: when the batcher runs what (on a scripted loop), how a batch runs through
the handlers, batching connections on a real loop, and the settings' validation."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from modelyard.runtime.failures import ClientError
from modelyard.runtime.serving import batching, handlers
from modelyard.runtime.serving.app import InferenceApp
from modelyard.runtime.serving.batch_inference import BatchInference, merge_key, split
from modelyard.runtime.serving.context import CUSTOM_ATTRIBUTES, Context
from modelyard.runtime.serving.httpserver import HttpServer
from modelyard.runtime.serving.spec import WorkerSpec
from modelyard.runtime.serving.startup import batch_limits

# -- a scripted event loop ---------------------------------------------------------------------


class _Handle:
    def __init__(self, callback: Callable[..., Any], args: tuple[Any, ...], when: float) -> None:
        self.callback, self.args, self.when = callback, args, when
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ScriptedLoop:
    """asyncio's turn on a virtual clock: the callbacks made ready by the previous turn, then
    the I/O of this turn (``turn(*io)``), then the timers that are due."""

    def __init__(self) -> None:
        self.now = 0.0
        self.ready: list[_Handle] = []
        self.timers: list[_Handle] = []

    def time(self) -> float:
        return self.now

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> _Handle:
        handle = _Handle(callback, args, self.now)
        self.ready.append(handle)
        return handle

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> _Handle:
        return self.call_at(self.now + delay, callback, *args)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> _Handle:
        handle = _Handle(callback, args, when)
        self.timers.append(handle)
        return handle

    def turn(self, *io: Callable[[], None]) -> None:
        due = sorted((t for t in self.timers if t.when <= self.now), key=lambda t: t.when)
        self.timers = [t for t in self.timers if t.when > self.now]
        todo = [*self.ready, *(_Handle(f, (), self.now) for f in io), *due]
        self.ready = []
        for handle in todo:
            if not handle.cancelled:
                handle.callback(*handle.args)

    def idle(self) -> None:
        """Turns until nothing is ready; the clock jumps to each next timer, as select waits."""
        for _ in range(1000):
            live = [t for t in self.timers if not t.cancelled]
            if not self.ready and not live:
                return
            if not self.ready:
                self.now = max(self.now, min(t.when for t in live))
            self.turn()
        raise AssertionError("the batcher never settles")


class Recorder:
    """A batcher on a scripted loop whose batches take ``cost`` virtual seconds each."""

    def __init__(self, max_size: int = 4, max_delay: float = 0.010, cost: float = 0.001) -> None:
        self.loop = ScriptedLoop()
        self.cost = cost
        self.batches: list[list[str]] = []
        self.started: list[float] = []  # virtual time each batch started
        self.arrived: dict[str, float] = {}
        self.batcher = batching.Batcher(self.loop, self._run, max_size, max_delay)

    def _run(self, batch: list[str]) -> None:
        self.batches.append(batch)
        self.started.append(self.loop.now)
        self.loop.now += self.cost

    def deliver(self, *names: str) -> None:
        """One loop turn whose I/O delivers ``names``, then turns until the loop is idle."""
        for name in names:
            self.arrived[name] = self.loop.now
        self.loop.turn(*(lambda n=name: self.batcher.submit(n) for name in names))
        self.loop.idle()

    def waited(self, name: str) -> float:
        """Virtual seconds between the arrival of ``name`` and the start of its batch."""
        index = next(i for i, b in enumerate(self.batches) if name in b)
        return self.started[index] - self.arrived[name]


# -- when batches run ----------------------------------------------------------------------


def test_requests_one_at_a_time_never_wait():
    r = Recorder()
    for i in range(5):
        r.deliver(f"r{i}")
        r.loop.now += 0.0005  # the client's round trip before its next request
    assert r.batches == [[f"r{i}"] for i in range(5)]
    assert [r.waited(f"r{i}") for i in range(5)] == [0.0] * 5
    assert r.batcher.estimate.together == 1


def test_requests_delivered_together_share_batches_never_above_the_max():
    r = Recorder(max_size=4)
    r.deliver(*[f"r{i}" for i in range(10)])
    # the first found the worker idle and ran at once; the others count it in flight
    assert [len(b) for b in r.batches] == [1, 4, 4, 1]
    assert [x for b in r.batches for x in b] == [f"r{i}" for i in range(10)]  # in arrival order
    assert r.waited("r0") == 0.0
    free = r.started[2] + r.cost  # when r9 could have run
    assert r.started[3] - free <= r.batcher.estimate.max_delay


def test_requests_that_arrive_during_a_batch_run_together_after_it():
    r = Recorder(max_size=4, cost=0.002)
    r.loop.turn(lambda: r.batcher.submit("a"))  # runs at once: its batch takes 2 ms
    assert r.batches == [["a"]]
    # The next turn's I/O delivers what arrived meanwhile, before any timer.
    r.loop.turn(*(lambda n=n: r.batcher.submit(n) for n in ("b", "c", "d", "e", "f")))
    r.loop.idle()
    assert r.batches == [["a"], ["b", "c", "d", "e"], ["f"]]


def test_a_request_right_after_its_own_answer_is_not_concurrent_load():
    r = Recorder(max_size=4)
    for i in range(3):
        # a fast client's next request reaches the loop's very next turn, like one that
        # arrived during the batch; but it comes on the connection that batch just answered
        r.loop.turn(lambda i=i: r.batcher.submit(f"a{i}", "connection a"))
    assert r.batches == [["a0"], ["a1"], ["a2"]]
    assert r.batcher.estimate.together == 1
    r.loop.turn(lambda: r.batcher.submit("b0", "connection b"))  # another client's: concurrent
    assert r.batcher.estimate.together == 2


def test_a_request_that_arrived_during_a_batch_waits_for_the_next_one():
    r = Recorder(max_size=4, max_delay=0.050, cost=0.001)
    r.loop.turn(lambda: r.batcher.submit("a1"))  # runs at once
    r.loop.turn(lambda: r.batcher.submit("b1"))  # arrived while a1 ran: two in flight
    assert r.batcher.estimate.together == 2
    r.loop.turn()  # b1's flush: one of two expected, so it waits
    assert r.batches == [["a1"]] and r.batcher.pending == 1
    r.loop.now += 0.0003  # a1's client answers
    r.deliver("a2")
    assert r.batches == [["a1"], ["b1", "a2"]]
    assert r.started[1] == pytest.approx(r.loop.now - r.cost)  # ran as soon as a2 came


def test_a_request_left_over_from_a_full_batch_waits_from_that_batch_s_end():
    r = Recorder(max_size=2, max_delay=0.005, cost=0.010)
    r.loop.turn(*(lambda n=n: r.batcher.submit(n) for n in "abcd"))  # a runs at once
    r.loop.turn()  # b and c run; d could not run before their end
    r.loop.turn()  # d's flush: it waits for company, counted from that end
    assert r.batches == [["a"], ["b", "c"]] and r.batcher.pending == 1
    r.loop.now += 0.001
    r.deliver("e")
    assert r.batches == [["a"], ["b", "c"], ["d", "e"]]


def test_a_wait_never_passes_the_max_delay():
    r = Recorder(max_size=4, max_delay=0.005)
    r.deliver("a", "b", "c", "d", "e")  # one runs at once, four were in flight with it
    assert r.batches[-1] == ["b", "c", "d", "e"]
    r.batcher.estimate.gather = 1.0  # gathering has been slow: only the max delay bounds it
    r.loop.now += 0.1
    r.deliver("f")
    assert r.batches[-1] == ["f"]
    assert r.waited("f") == pytest.approx(0.005)


def test_after_a_burst_one_short_wait_then_none():
    r = Recorder(max_size=4, max_delay=0.100)
    r.deliver("a", "b", "c", "d", "e")  # four gathered at once: the wait limit drops
    waits = []
    for i in range(4):
        r.loop.now += 0.01
        r.deliver(f"x{i}")
        waits.append(r.waited(f"x{i}"))
    assert 0 < waits[0] <= batching.GATHER_SLACK * batching.MIN_WAIT  # not the 100 ms max
    assert waits[1:] == [0.0, 0.0, 0.0]
    assert r.batcher.estimate.together == 1


def test_a_zero_max_delay_batches_what_is_there_and_never_waits():
    r = Recorder(max_size=4, max_delay=0.0)
    r.deliver("a", "b", "c")
    r.loop.now += 0.01
    r.deliver("d")
    assert r.batches == [["a"], ["b", "c"], ["d"]]
    assert r.waited("c") == r.cost  # behind "a" only
    assert r.waited("d") == 0.0


def test_stop_batching_runs_one_at_a_time():
    r = Recorder(max_size=4)
    r.batcher.stop_batching()
    r.deliver("a", "b", "c")
    assert r.batches == [["a"], ["b"], ["c"]]


# -- how a batch runs ----------------------------------------------------------------------


RECORDING = """\
import json
import numpy as np

CALLS = []

def model_fn(model_dir):
    return 2.0

def predict_fn(data, model):
    CALLS.append(len(data))
    if (np.asarray(data) < 0).any():
        raise ValueError("negative input")
    return data[:, :1] * model
"""

WITH_CONTEXT = RECORDING + """
def input_fn(body, content_type, context):
    context.set_custom_attributes("seen=" + (context.custom_attributes or "none"))
    return np.asarray(json.loads(body), dtype=np.float32)

def output_fn(prediction, accept, context):
    return json.dumps({"p": prediction.tolist(), "attrs": context.custom_attributes}), accept
"""


def make_app(source: str | None, framework: str = "sklearn", model: Any = None) -> InferenceApp:
    module = None
    if source is not None:
        module = types.ModuleType("batching_test_handlers")
        exec(compile(source, "inference.py", "exec"), module.__dict__)
    resolved = handlers.resolve(module, framework, None)
    context = Context("/opt/ml/model", 0)
    if model is None:
        model = handlers.load_model(resolved, "/opt/ml/model", context)
    spec = WorkerSpec(framework, "/opt/ml/model", [], None, 1)
    app = InferenceApp(resolved, model, spec, context)
    app.module = module  # type: ignore[attr-defined]  # the test reads CALLS from it
    return app


def json_request(rows: Any, **headers: str) -> tuple[dict[bytes, bytes], bytes]:
    raw = {b"content-type": b"application/json"}
    raw.update({k.lower().encode(): v.encode() for k, v in headers.items()})
    return raw, json.dumps(rows).encode()


def run_batch(app: InferenceApp, requests: list[tuple[dict[bytes, bytes], bytes]]) -> list[Any]:
    """The responses in request order (each index exactly once)."""
    answers = dict(BatchInference(app).run(requests))
    assert sorted(answers) == list(range(len(requests)))
    return [answers[i] for i in range(len(requests))]


def test_arrays_are_predicted_together_and_split_by_rows():
    app = make_app(RECORDING)
    requests = [json_request([[1, 0]]), json_request([[2, 0], [3, 0]]), json_request([[4, 0]])]
    responses = run_batch(app, requests)
    assert app.module.CALLS == [4]
    assert [json.loads(r.body) for r in responses] == [[[2.0]], [[4.0], [6.0]], [[8.0]]]
    assert all(r.status == 200 for r in responses)


def test_a_body_that_cannot_be_decoded_fails_alone():
    app = make_app(RECORDING)
    requests = [json_request([[1, 0]]), ({b"content-type": b"application/json"}, b"{oops"),
                json_request([[3, 0]])]  # fmt: skip
    responses = run_batch(app, requests)
    assert [r.status for r in responses] == [200, 415, 200]
    assert app.module.CALLS == [2]


def test_a_failing_batch_is_predicted_again_one_by_one():
    app = make_app(RECORDING)
    requests = [json_request([[1, 0]]), json_request([[-1, 0]]), json_request([[3, 0]])]
    responses = run_batch(app, requests)
    assert [r.status for r in responses] == [200, 500, 200]
    assert b"ValueError: negative input" in responses[1].body
    assert json.loads(responses[2].body) == [[6.0]]
    assert app.module.CALLS == [3, 1, 1, 1]


def test_inputs_of_other_shapes_or_types_are_predicted_apart():
    app = make_app(RECORDING)
    requests = [json_request([[1, 0]]), json_request([[2, 0, 0]]), json_request([[3, 0]]),
                json_request([5, 6]), json_request([[4, 0]])]  # fmt: skip
    responses = run_batch(app, requests)
    assert sorted(app.module.CALLS) == [1, 2, 3]  # widths 2 (three of them), 3, and 1-D alone
    assert json.loads(responses[4].body) == [[8.0]]
    assert responses[3].status == 500  # 1-D data[:, :1] fails: alone, as without batching


def test_a_prediction_of_the_wrong_length_turns_merging_off():
    source = RECORDING.replace("return data[:, :1] * model", "return float(data.sum())")
    app = make_app(source)
    runner = BatchInference(app)
    requests = [json_request([[1, 0]]), json_request([[2, 0]])]
    answers = dict(runner.run(requests))
    assert [json.loads(answers[i].body) for i in range(2)] == [1.0, 2.0]
    assert runner.merging is False
    assert app.module.CALLS == [2, 1, 1]
    dict(runner.run(requests))
    assert app.module.CALLS == [2, 1, 1, 1, 1]  # no second try


def test_a_streaming_predict_fn_answers_each_request_with_its_own_stream():
    source = RECORDING.replace(
        "return data[:, :1] * model", "return (str(v) for v in data[:, 0].tolist())"
    )
    app = make_app(source)
    runner = BatchInference(app)
    responses = dict(runner.run([json_request([[1, 0]]), json_request([[2, 0], [3, 0]])]))
    assert [b"".join(responses[i].stream) for i in range(2)] == [b"1.0", b"2.03.0"]
    assert runner.merging is True


def test_custom_attributes_stay_with_their_request():
    app = make_app(WITH_CONTEXT)
    requests = [json_request([[i, 0]], **{"X-Amzn-SageMaker-Custom-Attributes": f"id={i}"})
                for i in range(3)]  # fmt: skip
    requests.append(json_request([[9, 0]]))
    responses = run_batch(app, requests)
    assert app.module.CALLS == [4]
    for i, response in enumerate(responses[:3]):
        assert json.loads(response.body) == {"p": [[2.0 * i]], "attrs": f"id={i}"}
        assert (CUSTOM_ATTRIBUTES, f"seen=id={i}".encode()) in response.headers
    assert json.loads(responses[3].body)["attrs"] is None
    assert (CUSTOM_ATTRIBUTES, b"seen=none") in responses[3].headers


def test_xgboost_defaults_predict_csv_requests_together(trained):
    import xgboost

    booster = xgboost.Booster(model_file=bytearray(trained.model_file))
    app = make_app(None, "xgboost", model=booster)
    calls = []
    predict = app.handlers.predict_fn.func  # the xgboost default

    def counting(data: Any, model: Any) -> Any:
        calls.append(data.shape[0])
        return predict(data, model)

    app.handlers = dataclasses.replace(app.handlers, predict_fn=handlers.Handler(counting))
    blocks = [trained.features[0:1], trained.features[1:4], trained.features[4:6]]
    requests = [({b"content-type": b"text/csv"}, _csv(b)) for b in blocks]
    requests.append(({b"content-type": b"text/libsvm"}, b"0:1.5 3:2.0\n"))  # CSR: alone
    responses = run_batch(app, requests)
    assert calls == [6, 1]
    for block, response in zip(blocks, responses):
        got = [float(v) for v in response.body.split()]
        np.testing.assert_allclose(got, trained.expected(block), rtol=1e-6)
    assert responses[3].status == 200


@pytest.mark.torch
def test_torch_defaults_predict_tensors_together():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    network = torch.nn.Linear(3, 2)
    app = make_app(None, "torch", model=network)
    rows = [[[1.0, 2.0, 3.0]], [[0.5, 0.0, -1.0], [2.0, 2.0, 2.0]]]
    responses = run_batch(app, [json_request(r) for r in rows])
    with torch.no_grad():
        for block, response in zip(rows, responses):
            expected = network(torch.tensor(block)).numpy()
            np.testing.assert_allclose(json.loads(response.body), expected, rtol=1e-5)


def test_merge_keys_and_splits():
    assert merge_key(np.zeros((2, 3), np.float32)) == merge_key(np.ones((5, 3), np.float32))
    assert merge_key(np.zeros((2, 3), np.float32)) != merge_key(np.zeros((2, 3), np.float64))
    assert merge_key(np.zeros((2, 4))) != merge_key(np.zeros((2, 3)))
    for never in (np.zeros(3), np.zeros((0, 3)), np.zeros((2, 2), object), [[1, 2]],
                  np.ma.masked_array(np.zeros((2, 2)))):  # fmt: skip
        assert merge_key(never) is None
    parts = split(np.arange(6), [1, 3, 2])
    assert [p.tolist() for p in parts] == [[0], [1, 2, 3], [4, 5]]
    assert split(list("abc"), [2, 1]) == [["a", "b"], ["c"]]
    assert split(np.arange(5), [1, 3, 2]) is None
    assert split(np.float64(3.0), [1]) is None
    assert split((1, 2), [1, 1]) is None  # a tuple is several outputs, not rows


def test_handlers_that_cannot_batch():
    transform = "def model_fn(d):\n    return 1\ndef transform_fn(m, b, c, a):\n    return b''\n"
    assert "transform_fn" in batching.unbatchable(make_app(transform))
    with_context = RECORDING.replace("def predict_fn(data, model):",
                                     "def predict_fn(data, model, context):")
    assert "context" in batching.unbatchable(make_app(with_context))
    assert batching.unbatchable(make_app(WITH_CONTEXT)) is None  # input/output_fn may take it
    assert batching.unbatchable(object()) is not None


# -- batching connections on a real event loop ---------------------------------------------


async def _serve(app: InferenceApp, batch_size: int) -> tuple[HttpServer, socket.socket]:
    spec = WorkerSpec("sklearn", "/opt/ml/model", [], None, 1, batch_size=batch_size,
                      max_batch_delay_ms=5)  # fmt: skip
    server = HttpServer(app.handle, 1 << 20, 1, batching.connection_factory(app, spec))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server.start(sock, exclusive=False)
    return server, sock


def _post(rows: Any, path: str = "/invocations") -> bytes:
    body = json.dumps(rows).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body  # fmt: skip


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))  # fmt: skip
    return status, await reader.readexactly(length)


def test_concurrent_connections_are_batched_and_answered_each(capsys):
    app = make_app(RECORDING)

    async def scenario() -> list[tuple[int, bytes]]:
        server, sock = await _serve(app, batch_size=4)
        port = sock.getsockname()[1]
        clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(6)]
        for i, (_, writer) in enumerate(clients):
            writer.write(_post([[i, 0]]))  # all sent before the server's loop turn
        answers = [await _read_response(reader) for reader, _ in clients]
        for _, writer in clients:
            writer.close()
            await writer.wait_closed()
        await server.drain(1)
        sock.close()
        return answers

    answers = asyncio.run(scenario())
    assert [json.loads(body) for _, body in answers] == [[[2.0 * i]] for i in range(6)]
    # the first ran at once, the five that came with it in batches of at most four
    assert app.module.CALLS[0] == 1 and sum(app.module.CALLS) == 6
    assert max(app.module.CALLS) == 4
    assert "Batching up to 4 concurrent requests" in capsys.readouterr().err


def test_pipelined_requests_are_answered_in_order():
    app = make_app(RECORDING)

    async def scenario() -> list[tuple[int, bytes]]:
        server, sock = await _serve(app, batch_size=4)
        reader, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        ping = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
        writer.write(_post([[1, 0]]) + ping + _post([[2, 0]]) + _post([[3, 0]], "/nowhere"))
        answers = [await _read_response(reader) for _ in range(4)]
        writer.close()
        await writer.wait_closed()
        await server.drain(1)
        sock.close()
        return answers

    answers = asyncio.run(scenario())
    assert [status for status, _ in answers] == [200, 200, 200, 404]
    assert json.loads(answers[0][1]) == [[2.0]]
    assert b"Healthy" in answers[1][1]
    assert json.loads(answers[2][1]) == [[4.0]]


# -- settings ----------------------------------------------------------------------------


def test_batch_limits_from_the_environment():
    assert batch_limits({}) == (1, 100.0)
    size, delay = "SAGEMAKER_TS_BATCH_SIZE", "SAGEMAKER_TS_MAX_BATCH_DELAY"
    assert batch_limits({size: "8", delay: "5"}) == (8, 5.0)
    assert batch_limits({size: " 4 ", delay: "0.5"}) == (4, 0.5)
    assert batch_limits({size: "", delay: ""}) == (1, 100.0)  # set but empty: the defaults


@pytest.mark.parametrize(("name", "value"), [
    ("SAGEMAKER_TS_BATCH_SIZE", "0"), ("SAGEMAKER_TS_BATCH_SIZE", "-2"),
    ("SAGEMAKER_TS_BATCH_SIZE", "four"), ("SAGEMAKER_TS_BATCH_SIZE", "2.5"),
    ("SAGEMAKER_TS_MAX_BATCH_DELAY", "-1"), ("SAGEMAKER_TS_MAX_BATCH_DELAY", "soon"),
    ("SAGEMAKER_TS_MAX_BATCH_DELAY", "nan"), ("SAGEMAKER_TS_MAX_BATCH_DELAY", "inf"),
])  # fmt: skip
def test_bad_batch_limits_are_client_errors(name, value):
    with pytest.raises(ClientError) as raised:
        batch_limits({name: value})
    assert raised.value.reason.startswith(f"ClientError: {name} must be")
    assert repr(value) in raised.value.reason


def _csv(rows: np.ndarray) -> bytes:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in rows).encode()
