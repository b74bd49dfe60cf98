"""Errors of the built-in XGBoost algorithm; their text becomes the job's FailureReason.

The tree::

    AlgorithmFailure      root; ``failure_text`` is what goes into ``<base>/output/failure``
    ├── ClientError       the customer can fix it: hyperparameters, channels, data
    └── AlgorithmError    XGBoost or modelyard failed on input that looked valid
"""

from __future__ import annotations

import re


class AlgorithmFailure(Exception):
    """Root of the failures the algorithm reports on purpose."""

    kind = "AlgorithmError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def failure_text(self) -> str:
        """The line written to the failure file, e.g. ``ClientError: ...``."""
        return f"{self.kind}: {self.message}"


class ClientError(AlgorithmFailure):
    """Raised for bad hyperparameters, channels, content types or data."""

    kind = "ClientError"


class AlgorithmError(AlgorithmFailure):
    """Raised when training fails for a reason the customer could not have prevented."""

    kind = "AlgorithmError"


def first_line_of(error: Exception) -> str:
    """The first non-empty line of ``error``'s text, or its class name."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


# "[05:19:25] /path/data.cc:576: Check failed: valid: Weights must be positive values."
_XGBOOST_PREFIX = re.compile(r"^\[[0-9:]+\]\s+\S+:\d+:\s*(Check failed:\s*)?")


def xgboost_message(error: Exception) -> str:
    """The readable part of an XGBoostError: first line, without timestamp and source file."""
    return _XGBOOST_PREFIX.sub("", first_line_of(error))
