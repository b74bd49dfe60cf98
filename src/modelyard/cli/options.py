"""Options every client command takes: which server, and how to print."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def session_for(home: Path | None, endpoint_url: str | None):  # noqa: ANN202 - lazy import
    from modelyard.sdk.session import Session

    return Session(endpoint_url=endpoint_url, home=home, start_server=False)


_common = [
    click.option("--home", type=click.Path(path_type=Path), help="Data directory of the server."),
    click.option("--endpoint-url", help="Server URL (default: the server running for --home)."),
    click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table"),
]


def common(fn):  # noqa: ANN001, ANN201 - click decorator plumbing
    for option in reversed(_common):
        fn = option(fn)
    return fn


_filters = [
    click.option("--status", help="Only those in this status."),
    click.option("--name-contains", help="Only those whose name contains this text."),
    click.option("--max", "limit", type=int, default=100, help="At most this many."),
]


def list_filters(fn):  # noqa: ANN001, ANN201 - click decorator plumbing
    """``--status``, ``--name-contains`` and ``--max`` for a list command."""
    for option in reversed(_filters):
        fn = option(fn)
    return fn


def newest(client: Any, operation: str, key: str, status: str | None, name_contains: str | None,
           limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` summaries of a SageMaker List operation, newest first, filtered."""
    kwargs: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Descending"}
    if status:
        kwargs["StatusEquals"] = status
    if name_contains:
        kwargs["NameContains"] = name_contains
    return collect(client.get_paginator(operation).paginate(**kwargs), key, limit)


def collect(pages: Any, key: str, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` items under ``key`` of a paginator's pages (reading no further)."""
    found: list[dict[str, Any]] = []
    for page in pages:
        found.extend(page[key])
        if len(found) >= limit:
            break
    return found[:limit]
