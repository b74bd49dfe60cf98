"""Default handlers per framework, imported only for the framework an instance serves.

Each module provides ``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn`` (the inference
toolkit's signatures, without context), ``warm_up(model)`` and ``DEFAULT_ACCEPT``. Default
``input_fn`` always receives the body as ``bytes``.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from modelyard.runtime import threads
from modelyard.runtime.failures import ClientError

_MODULES = {
    "xgboost": "modelyard.runtime.serving.frameworks.xgboost",
    "sklearn": "modelyard.runtime.serving.frameworks.sklearn",
    "torch": "modelyard.runtime.serving.frameworks.torch",
}


def defaults(framework: str) -> ModuleType:
    """The default-handler module of ``framework``; ClientError for an unknown one."""
    try:
        name = _MODULES[framework]
    except KeyError:
        raise ClientError(
            f"No model server for the framework {framework!r}; known: {sorted(_MODULES)}"
        ) from None
    return importlib.import_module(name)


def threads_per_worker() -> int:
    """CPU threads one worker's model may use: the CPUs shared out among the workers.

    Every worker predicts one request at a time, so more threads than this only make the
    workers fight over cores (and a one-row prediction gains nothing from threads).
    """
    try:
        workers = int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS", "1"))
    except ValueError:
        workers = 1
    return threads.share(workers)
