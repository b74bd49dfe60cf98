"""Why a job failed, in the words SageMaker uses (``FailureReason``).

Two kinds of failure reach the controller through the ``exit`` event:

- the work failed (exit code 1): the reason is the first 1024 characters of
  ``/opt/ml/output/failure`` when the script or algorithm wrote one, else the toolkit's
  ``ExecuteUserScriptError`` text built here;
- the job's inputs or settings are wrong (:class:`ClientError`, also exit code 1): missing input
  objects, a requirements.txt that does not install, a missing optional extra.

Anything else raised inside the runtime is a platform error (exit code 2).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from modelyard.core.errors import ModelyardError

#: FailureReason's length limit in the API
MAX_REASON = 1024


class ClientError(ModelyardError):
    """The job cannot run because of something the caller gave it (SageMaker's ClientError)."""

    code = "ClientError"
    status = 400

    @property
    def reason(self) -> str:
        """The FailureReason for this error."""
        return truncate(f"ClientError: {self.message}")


def platform_error(error: BaseException, log: Callable[[str], None]) -> str:
    """The FailureReason of the platform's own fault, its traceback written to ``log`` first.

    Call it from the ``except Exception`` of a host's outermost handler.
    """
    for line in traceback.format_exc().splitlines():
        log(line)
    return truncate(f"InternalServerError: {type(error).__name__}: {error}")


def truncate(text: str) -> str:
    """At most :data:`MAX_REASON` characters."""
    return text[:MAX_REASON]


def read_failure_file(path: Path) -> str | None:
    """The first 1024 characters of the failure file, or None when there is none (or empty)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(MAX_REASON)
    except (FileNotFoundError, IsADirectoryError):
        return None
    return text if text.strip() else None


def script_error(returncode: int, stderr_tail: Sequence[str], command: Sequence[str]) -> str:
    """The toolkit's message for a user script that exited with ``returncode``.

    Example: ``AlgorithmError: ExecuteUserScriptError:\\nExitCode 1\\nErrorMessage "..."\\n
    Command "python train.py --epochs 2"``.
    """
    lines = list(stderr_tail)
    if returncode == 137:
        lines.insert(0, "OutOfMemory: Process killed by SIGKILL")
    message = "\n".join(lines)
    text = (
        "AlgorithmError: ExecuteUserScriptError:\n"
        f"ExitCode {returncode}\n"
        f'ErrorMessage "{message}"\n'
        f'Command "{" ".join(command)}"'
    )
    if len(text) > MAX_REASON:
        # Keep the end of the error message: the last stderr lines say what went wrong.
        head = f"AlgorithmError: ExecuteUserScriptError:\nExitCode {returncode}\nErrorMessage \""
        tail = f'"\nCommand "{" ".join(command)}"'[: MAX_REASON // 4]
        room = MAX_REASON - len(head) - len(tail)
        text = head + message[-room:] + tail
    return text


def write_failure_file(path: Path, reason: str) -> None:
    """Write the failure file unless the work already wrote one (the first write wins)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(reason, encoding="utf-8")
