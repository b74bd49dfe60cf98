"""One batch of invocations through one model's handlers, each request answered as its own.

1. ``input_fn`` runs for each request alone, so a body that cannot be decoded fails alone.
2. Decoded inputs that are arrays of at least two dimensions (numpy, or torch tensors) with
   the same dtype, trailing shape (and device) are concatenated along axis 0 and go through
   ``predict_fn`` once; the prediction is split back by each request's row count. Anything
   else is predicted alone: other types (a LIBSVM CSR matrix, lists), 1-D arrays (one sample or
   a column of samples? only the model knows) and empty ones.
3. When the batched ``predict_fn`` raises, or returns a stream, each request of that batch is
   predicted alone, so only the request at fault gets the error. When it returns a result
   whose length is not the batch's row count, the requests are predicted alone as well and
   this worker stops batching: the model does not answer row for row.
4. ``output_fn`` runs for each request alone, with the context pointed at that request again.

``predict_fn`` must therefore answer one row per input row, as the default handlers do. A
handler module with ``transform_fn``, or a ``predict_fn`` that takes the request context, is
never batched (see :func:`.batching.unbatchable`).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import numpy as np

from modelyard.runtime.serving.app import InferenceApp, Response, answer, failure
from modelyard.runtime.serving.streams import is_stream


@dataclasses.dataclass(eq=False, slots=True)
class _Call:
    """One request of the batch once its input is decoded."""

    index: int
    headers: dict[bytes, bytes]
    accept: str
    data: Any
    attributes: str | None  # the response custom attributes its handlers set so far
    prediction: Any = None
    failed: Exception | None = None


class BatchInference:
    """Runs batches of requests through ``app``'s handlers (one batch at a time)."""

    def __init__(self, app: InferenceApp) -> None:
        self.app = app
        #: False once predict_fn has answered a batch with the wrong number of rows
        self.merging = True

    def run(
        self, requests: Sequence[tuple[dict[bytes, bytes], bytes]]
    ) -> Iterator[tuple[int, Response]]:
        """``(index in requests, response)`` for every request, each as soon as it is ready.

        Consume each response before asking for the next: the context points at its request
        until then (a streamed body may still call handler code).
        """
        app, handlers, context = self.app, self.app.handlers, self.app.context
        calls = []
        for index, (headers, body) in enumerate(requests):
            context.begin(headers)
            try:
                handler_body, content_type, accept = app.request_parts(headers, body)
                data = handlers.input_fn(context, handler_body, content_type)
            except Exception as e:
                yield index, failure(e)
                continue
            calls.append(_Call(index, headers, accept, data, context.response_custom_attributes))
        for group in self._groups(calls):
            self._predict(group)
        for call in calls:
            if call.failed is not None:
                yield call.index, failure(call.failed)
                continue
            context.begin(call.headers, call.attributes)
            try:
                result = call.prediction
                # as InferenceApp._run: the default encoders know arrays, not streams
                if not is_stream(result) or handlers.output_fn.user:
                    result = handlers.output_fn(context, result, call.accept)
                response = answer(result, call.accept, context)
            except Exception as e:
                response = failure(e)
            yield call.index, response

    def _groups(self, calls: list[_Call]) -> list[list[_Call]]:
        """The calls whose inputs can be concatenated together, then each other one alone."""
        if not self.merging:
            return [[call] for call in calls]
        groups: dict[Hashable, list[_Call]] = {}
        alone = []
        for call in calls:
            key = merge_key(call.data)
            if key is None:
                alone.append([call])
            else:
                groups.setdefault(key, []).append(call)
        return [*groups.values(), *alone]

    def _predict(self, group: list[_Call]) -> None:
        if len(group) > 1 and self.merging and self._predict_together(group):
            return
        handlers, context, model = self.app.handlers, self.app.context, self.app.model
        for call in group:
            context.begin(call.headers, call.attributes)
            try:
                call.prediction = handlers.predict_fn(context, call.data, model)
            except Exception as e:
                call.failed = e
            call.attributes = context.response_custom_attributes

    def _predict_together(self, group: list[_Call]) -> bool:
        """One predict_fn call for the whole group; False when its requests must run alone."""
        rows = [len(call.data) for call in group]
        # predict_fn takes no context when batching is on (see batching.unbatchable)
        predict, context = self.app.handlers.predict_fn, self.app.context
        try:
            merged = concatenate([call.data for call in group])
            prediction = predict(context, merged, self.app.model)
        except Exception as e:
            _log(f"predict_fn failed on a batch of {len(group)} requests "
                 f"({type(e).__name__}: {e}); predicting each alone")  # fmt: skip
            return False
        if is_stream(prediction):  # a stream cannot be split: each request gets its own
            close = getattr(prediction, "close", None)
            if close is not None:
                close()
            return False
        parts = split(prediction, rows)
        if parts is None:
            self.merging = False
            _log(f"predict_fn answered {sum(rows)} rows with {_describe(prediction)}, not one "
                 "row per input row: batching is off for this worker")  # fmt: skip
            return False
        for call, part in zip(group, parts, strict=True):
            call.prediction = part
        return True


def merge_key(data: Any) -> Hashable | None:
    """What inputs must share to be concatenated along axis 0; None: never concatenated."""
    if type(data) is np.ndarray:  # subclasses (masked arrays, matrices) do not concatenate
        if data.ndim >= 2 and data.shape[0] > 0 and not data.dtype.hasobject:
            return ("numpy", data.dtype, data.shape[1:])
        return None
    torch = sys.modules.get("torch")  # a tensor exists only if torch is imported
    if torch is not None and isinstance(data, torch.Tensor):
        if data.dim() >= 2 and data.shape[0] > 0 and data.layout == torch.strided:
            return ("torch", data.dtype, tuple(data.shape[1:]), data.device)
    return None


def concatenate(parts: list[Any]) -> Any:
    """Inputs that share a :func:`merge_key`, as one along axis 0."""
    if type(parts[0]) is np.ndarray:
        return np.concatenate(parts)
    return sys.modules["torch"].cat(parts)


def split(prediction: Any, rows: list[int]) -> list[Any] | None:
    """``prediction`` cut along axis 0 into ``rows``-long parts; None unless it has exactly
    ``sum(rows)`` rows (an array, tensor or list)."""
    if not _has_rows(prediction, sum(rows)):
        return None
    parts, start = [], 0
    for count in rows:
        parts.append(prediction[start : start + count])
        start += count
    return parts


def _has_rows(prediction: Any, total: int) -> bool:
    if isinstance(prediction, list):
        return len(prediction) == total
    if isinstance(prediction, np.ndarray):
        return prediction.ndim >= 1 and len(prediction) == total
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(prediction, torch.Tensor):
        return prediction.dim() >= 1 and len(prediction) == total
    return False


def _describe(prediction: Any) -> str:
    shape = getattr(prediction, "shape", None)
    if shape is not None:
        return f"a {type(prediction).__name__} of shape {tuple(shape)}"
    return f"a {type(prediction).__name__}"


def _log(message: str) -> None:
    print(message, file=sys.stderr)  # into the instance's log
