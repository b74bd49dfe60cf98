"""What to run: the user's entry point as the toolkit would run it, or a built-in algorithm.

Script mode (``sagemaker_program`` present), the toolkit's entry-point types:

- name ends ``.sh`` ⇒ COMMAND: ``/bin/sh -c "./name args"``;
- ``setup.py`` in the code dir ⇒ PACKAGE: ``pip install .`` then ``python -m <module>``;
- name ends ``.py`` ⇒ PROGRAM: ``python name args``;
- anything else ⇒ COMMAND.

Algorithm mode (no ``sagemaker_program``): the framework's built-in algorithm module.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import stat
from pathlib import Path

from modelyard.runtime.environment import module_name
from modelyard.runtime.failures import ClientError

PROGRAM = "program"
COMMAND = "command"
PACKAGE = "package"
ALGORITHM = "algorithm"

#: framework → module of its built-in algorithm
ALGORITHMS = {"xgboost": "modelyard.runtime.algorithms.xgboost"}


@dataclasses.dataclass(frozen=True)
class Work:
    """The command line of the work and where it runs."""

    kind: str
    command: list[str]
    cwd: Path
    python: Path  # the interpreter of the work's environment
    #: the module ``command`` runs with ``python -m``, when it is platform code that a warm
    #: host may fork instead (see :mod:`modelyard.runtime.forking`); None for user code
    module: str | None = None


def is_builtin_algorithm(framework: str, hyperparameters: dict[str, str]) -> bool:
    """Whether a job with these hyperparameters runs ``framework``'s built-in algorithm."""
    return "sagemaker_program" not in hyperparameters and framework in ALGORITHMS


def entry_point_kind(code_dir: Path, program: str) -> str:
    """The toolkit's classification of ``program`` (see the module docstring)."""
    if program.endswith(".sh"):
        return COMMAND
    if (code_dir / "setup.py").exists():
        return PACKAGE
    if program.endswith(".py"):
        return PROGRAM
    return COMMAND


def script_command(
    kind: str, python: Path, code_dir: Path, program: str, args: list[str]
) -> list[str]:
    """The command line for a script of ``kind`` (PROGRAM, PACKAGE or COMMAND)."""
    if kind == PROGRAM:
        return [str(python), program, *args]
    if kind == PACKAGE:
        return [str(python), "-m", str(module_name(program)), *args]
    entry = code_dir / program
    if not entry.exists():
        raise ClientError(f"The entry point {program} is not in the submitted code.")
    # The toolkit chmods the entry point executable before running it through the shell.
    entry.chmod(entry.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    line = " ".join(shlex.quote(part) for part in [f"./{program}", *args])
    return ["/bin/sh", "-c", line]


def algorithm_command(framework: str, python: Path) -> list[str]:
    """The built-in algorithm of ``framework``; ClientError when it has none."""
    return [str(python), "-m", algorithm_module(framework)]


def algorithm_module(framework: str) -> str:
    """The module of ``framework``'s built-in algorithm; ClientError when it has none."""
    module = ALGORITHMS.get(framework)
    if module is None:
        raise ClientError(
            f"No entry point: the hyperparameter sagemaker_program is not set and the "
            f"{framework} framework has no built-in algorithm."
        )
    return module


def check_program(code_dir: Path, program: str) -> None:
    """ClientError when a ``.py`` entry point is missing (clearer than python's own error)."""
    if program.endswith(".py") and not (code_dir / program).exists():
        listing = ", ".join(sorted(os.listdir(code_dir))[:20]) or "nothing"
        raise ClientError(
            f"The entry point {program} is not in the submitted code (found: {listing})."
        )
