"""Process plumbing shared by the entry point and the training loop: stop signal and log lines.

Kept free of XGBoost so the entry point can install its SIGTERM handler and report failures
even when importing XGBoost itself is what fails.
"""

from __future__ import annotations

import threading


class Terminated(BaseException):
    """SIGTERM arrived (stop, timeout, spot interruption); a BaseException so nothing swallows it."""


# Set by the SIGTERM handler too: an exception raised while Python runs inside one of XGBoost's
# C callbacks (its log hook) is swallowed there, so training also checks this after each round.
termination_requested = threading.Event()


def print_line(message: str) -> None:
    """Log one line to stdout at once: the platform extracts metrics from it live."""
    print(message.rstrip("\n"), flush=True)
