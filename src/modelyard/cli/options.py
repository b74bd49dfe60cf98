"""Options every client command takes: which server, and how to print."""

from __future__ import annotations

from pathlib import Path

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
