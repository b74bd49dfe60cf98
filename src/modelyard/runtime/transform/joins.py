"""DataProcessing: InputFilter before batching, JoinSource and OutputFilter after.

A CSV record is the array of its column strings; a JSON or JSON Lines record is its value.
With JoinSource=Input each output line is joined to the original input record it answers:
CSV columns are appended to the input row; a JSON object gets the prediction under
``SageMakerOutput``; any other JSON value becomes ``{"SageMakerInput": ..., "SageMakerOutput":
...}``. OutputFilter then selects from the joined record (or from the output line alone).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from modelyard.runtime.failures import ClientError
from modelyard.runtime.transform.jsonpath import PathError, parse_path, select
from modelyard.runtime.transform.records import NEWLINE, Batch

CSV = "csv"
JSON = "json"
RAW = "raw"


def format_of(content_type: str | None) -> str:
    """``csv``, ``json`` (JSON and JSON Lines) or ``raw`` for a media type."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind == "text/csv":
        return CSV
    if kind in ("application/json", "application/jsonlines", "application/x-jsonlines"):
        return JSON
    return RAW


def decode(record: bytes, form: str) -> Any:
    """A record as a JSON-like value: CSV columns as a list of strings."""
    try:
        text = record.decode("utf-8")
        if form == CSV:
            return next(csv.reader([text]), [])
        if form == JSON:
            return json.loads(text)
    except ValueError as e:
        raise ClientError(f"a record is not valid {form.upper()}: {e}") from None
    raise ClientError("DataProcessing filters and joins need CSV, JSON or JSON Lines records")


def encode(value: Any, form: str) -> bytes:
    """The inverse of :func:`decode`: a CSV row, or compact JSON."""
    if form == CSV:
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(value if isinstance(value, list) else [value])
        return out.getvalue().encode("utf-8")
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


class DataProcessing:
    """The job's filters and join, parsed once."""

    def __init__(self, input_filter: str, output_filter: str, join_source: str,
                 content_type: str | None) -> None:
        self.input_path = parse_path(input_filter) if input_filter.strip() != "$" else None
        self.output_path = parse_path(output_filter) if output_filter.strip() != "$" else None
        self.join = join_source == "Input"
        self.input_form = format_of(content_type)

    @property
    def per_record(self) -> bool:
        """Whether requests must be built record by record (no whole-chunk fast path)."""
        return self.input_path is not None or self.join

    @property
    def per_output_line(self) -> bool:
        """Whether responses must be taken apart line by line."""
        return self.join or self.output_path is not None

    def filter_input(self, record: bytes) -> bytes:
        """InputFilter applied to one record (as the model will receive it)."""
        if self.input_path is None:
            return record
        return encode(_select(self.input_path, decode(record, self.input_form), "InputFilter"),
                      self.input_form)

    def outputs(self, batch: Batch, body: bytes, content_type: str | None) -> bytes:
        """The response body after join and OutputFilter, one output record a line."""
        if not self.per_output_line:
            return body
        answers = body.rstrip(NEWLINE).split(NEWLINE) if body.strip() else []
        if self.join and len(answers) != batch.records:
            raise ClientError(
                f"JoinSource=Input needs one output line per input record; the model answered "
                f"{len(answers)} line(s) for {batch.records} record(s) (use an Accept type with "
                "one prediction a line, such as text/csv or application/jsonlines)"
            )
        form = format_of(content_type)
        inputs: Sequence[bytes | None] = batch.inputs if self.join else [None] * len(answers)
        return NEWLINE.join(self._one(i, a, form) for i, a in zip(inputs, answers))

    def _one(self, original: bytes | None, answer: bytes, output_form: str) -> bytes:
        if original is None:
            value, form = _output_value(answer, output_form), output_form
        else:
            value, form = self._joined(original, answer, output_form)
        if self.output_path is not None:
            value = _select(self.output_path, value, "OutputFilter")
        return encode(value, form if form != RAW else JSON)

    def _joined(self, original: bytes, answer: bytes, output_form: str) -> tuple[Any, str]:
        source = decode(original, self.input_form)
        if self.input_form == CSV:
            extra = decode(answer, CSV) if output_form == CSV else [answer.decode("utf-8")]
            return source + extra, CSV
        prediction = _prediction(answer, output_form)
        if isinstance(source, dict):
            return {**source, "SageMakerOutput": prediction}, JSON
        return {"SageMakerInput": source, "SageMakerOutput": prediction}, JSON


def _output_value(answer: bytes, form: str) -> Any:
    if form == RAW:
        return answer.decode("utf-8", "replace")
    return decode(answer, form)


def _prediction(answer: bytes, form: str) -> Any:
    """An output line as a JSON value: JSON parsed; one CSV column a number when it is one."""
    if form == JSON:
        return json.loads(answer)
    columns = decode(answer, CSV) if form == CSV else [answer.decode("utf-8", "replace")]
    values = [_number_or_text(c) for c in columns]
    return values[0] if len(values) == 1 else values


def _number_or_text(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def _select(path: Any, value: Any, which: str) -> Any:
    try:
        return select(path, value)
    except PathError as e:
        raise ClientError(f"{which} cannot be applied to a record: {e}") from None
