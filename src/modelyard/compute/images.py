"""Container image URIs mapped to local runtimes by repository name.

``683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1`` runs on the xgboost
runtime: the registry, account, region and tag are ignored, the repository picks the framework.
The runtime is this Python environment with the framework installed (an optional extra).
"""

from __future__ import annotations

import dataclasses
import importlib.util

from modelyard.core.errors import MissingExtra, ValidationError


@dataclasses.dataclass(frozen=True)
class Runtime:
    """A local stand-in for a family of framework images."""

    framework: str  # xgboost | sklearn | torch
    module: str  # the import that must be available
    extra: str  # the modelyard extra that installs it
    builtin_algorithm: bool  # runs an algorithm when no sagemaker_program is given


RUNTIMES = {
    "sagemaker-xgboost": Runtime("xgboost", "xgboost", "xgboost", True),
    "sagemaker-scikit-learn": Runtime("sklearn", "sklearn", "sklearn", False),
    "pytorch-training": Runtime("torch", "torch", "torch", False),
    "pytorch-inference": Runtime("torch", "torch", "torch", False),
}


def repository_of(image_uri: str) -> str:
    """``acct.dkr.ecr.region.amazonaws.com/repo:tag`` → ``repo`` (also without a registry)."""
    path = image_uri.split("@", 1)[0]
    last = path.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def runtime_for(image_uri: str) -> Runtime:
    """The local runtime of an image, or a ValidationError listing the supported images."""
    runtime = RUNTIMES.get(repository_of(image_uri))
    if runtime is None:
        supported = ", ".join(sorted(RUNTIMES))
        raise ValidationError(
            f"Image {image_uri} is not supported by modelyard. Supported image repositories: "
            f"{supported} (any registry and tag)."
        )
    if importlib.util.find_spec(runtime.module) is None:
        raise MissingExtra(runtime.module, runtime.extra)
    return runtime
