"""Printing API answers for people (``-o table``) or programs (``-o json``)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def print_json(document: Any) -> None:
    print(json.dumps(_plain(document), indent=2, default=str))


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    table = Table(show_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*[_cell(row.get(c)) for c in columns])
    console.print(table)


def print_fields(document: dict[str, Any], fields: Sequence[str]) -> None:
    """A describe answer as ``name: value`` lines, only the fields that are present."""
    table = Table(show_header=False, show_edge=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for field in fields:
        if field in document:
            table.add_row(field, _cell(document[field]))
    console.print(table)


def show_table(output: str, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """A list answer as ``-o`` asks: JSON, else a table of ``columns``."""
    if output == "json":
        print_json(rows)
    else:
        print_table(rows, columns)


def show_fields(output: str, document: dict[str, Any], fields: Sequence[str]) -> None:
    """A describe answer as ``-o`` asks: JSON, else :func:`print_fields`."""
    if output == "json":
        print_json(document)
    else:
        print_fields(document, fields)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (dict, list)):
        return json.dumps(_plain(value), default=str)
    return str(value)


def print_log_events(events: Iterable[tuple[str, dict[str, Any]]], output: str) -> None:
    """Log lines as they come: JSON objects, or text with a ``[algo-N]`` prefix past host 1."""
    from modelyard.sdk.logs import line_prefix

    for stream, event in events:
        if output == "json":
            print_json({"stream": stream, **event})
        else:
            print(line_prefix(stream) + event["message"], flush=True)
