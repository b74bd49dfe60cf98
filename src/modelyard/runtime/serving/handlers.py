"""The user's handler module, resolved the way the SageMaker inference toolkit does.

``model_fn``, ``input_fn``, ``predict_fn`` and ``output_fn`` come from the user module when it
defines them and from the framework's defaults (:mod:`.frameworks`) otherwise; ``transform_fn``
replaces the last three and may not be defined with any of them. A handler receives a trailing
``context`` argument iff it declares one parameter more than the contract's. Everything is
decided once at startup, so a request pays for no ``inspect`` call and no attribute lookups.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from modelyard.runtime.failures import ClientError
from modelyard.runtime.serving import frameworks
from modelyard.runtime.serving.spec import WorkerSpec

DEFAULT_PROGRAM = "inference.py"

#: handler name → number of parameters without the context
ARITY = {
    "model_fn": 1,
    "input_fn": 2,
    "predict_fn": 2,
    "output_fn": 2,
    "transform_fn": 4,
    "pre_model_fn": 1,
    "model_warmup_fn": 2,
}


@dataclasses.dataclass(frozen=True)
class Handler:
    """One handler function and whether it takes the request context last."""

    func: Callable[..., Any]
    takes_context: bool = False
    user: bool = False  # from the user module (gets text bodies, see Pipeline)

    def __call__(self, context: Any, *args: Any) -> Any:
        if self.takes_context:
            return self.func(*args, context)
        return self.func(*args)


@dataclasses.dataclass(frozen=True)
class Handlers:
    """The resolved handlers of one worker; ``transform_fn`` set means the other three are not."""

    model_fn: Handler
    input_fn: Handler
    predict_fn: Handler
    output_fn: Handler
    transform_fn: Handler | None
    pre_model_fn: Handler | None
    model_warmup_fn: Handler | None
    default_accept: str


def import_user_module(spec: WorkerSpec) -> ModuleType | None:
    """Put the code dirs on sys.path and import the user module (None when there is none)."""
    for code_dir in reversed(spec.code_dirs):
        if code_dir not in sys.path:
            sys.path.insert(0, code_dir)
    program = spec.program
    if program is None:
        return None
    name = program[:-3] if program.endswith(".py") else program
    try:
        return importlib.import_module(name)
    except Exception as e:
        raise ClientError(
            f"Cannot import the user module {program}: {type(e).__name__}: {e}"
        ) from e


def find_program(code_dirs: list[Path], program: str | None) -> str | None:
    """SAGEMAKER_PROGRAM, checked to exist; else ``inference.py`` when a code dir has one."""
    if program:
        if not any((d / program).exists() for d in code_dirs):
            raise ClientError(f"SAGEMAKER_PROGRAM {program} is not in the code dir")
        return program
    if any((d / DEFAULT_PROGRAM).exists() for d in code_dirs):
        return DEFAULT_PROGRAM
    return None


def resolve(module: ModuleType | None, framework: str, default_accept: str | None) -> Handlers:
    """The handlers for ``module`` over ``framework``'s defaults; ClientError when inconsistent."""
    defaults = frameworks.defaults(framework)
    found = {name: _user_handler(module, name) for name in ARITY}
    if found["transform_fn"] is not None:
        clashing = [n for n in ("input_fn", "predict_fn", "output_fn") if found[n] is not None]
        if clashing:
            raise ClientError(
                "transform_fn cannot be defined together with input_fn, predict_fn or "
                f"output_fn (the user module also defines {', '.join(clashing)})"
            )

    def pick(name: str) -> Handler:
        return found[name] or Handler(getattr(defaults, name))

    return Handlers(
        model_fn=pick("model_fn"),
        input_fn=pick("input_fn"),
        predict_fn=pick("predict_fn"),
        output_fn=pick("output_fn"),
        transform_fn=found["transform_fn"],
        pre_model_fn=found["pre_model_fn"],
        model_warmup_fn=found["model_warmup_fn"],
        default_accept=default_accept or defaults.DEFAULT_ACCEPT,
    )


def _user_handler(module: ModuleType | None, name: str) -> Handler | None:
    func = getattr(module, name, None) if module is not None else None
    if func is None:
        return None
    if not callable(func):
        raise ClientError(f"{name} in the user module is not a function")
    expected = ARITY[name]
    try:
        count = len(inspect.signature(func).parameters)
    except (TypeError, ValueError):  # builtins without a signature: call them plainly
        count = expected
    if count not in (expected, expected + 1):
        raise ClientError(
            f"{name} takes {count} parameters; expected {expected}, or {expected + 1} with context"
        )
    return Handler(func, takes_context=count == expected + 1, user=True)


def load_model(handlers: Handlers, model_dir: str, context: Any) -> Any:
    """pre_model_fn (when defined), then model_fn; ClientError with the cause on failure."""
    if handlers.pre_model_fn is not None:
        call_at_startup("pre_model_fn", handlers.pre_model_fn, context, model_dir)
    return call_at_startup("model_fn", handlers.model_fn, context, model_dir)


def call_at_startup(name: str, handler: Handler, context: Any, *args: Any) -> Any:
    """Call a startup hook; its failure becomes the instance's ``ClientError: <name> failed``."""
    try:
        return handler(context, *args)
    except Exception as e:
        raise ClientError(f"{name} failed: {type(e).__name__}: {e}") from e
