"""Resource names and image URIs as the SageMaker SDK makes them."""

from __future__ import annotations

import datetime as dt
import re

# framework name -> (training repository, inference repository, default version tag)
FRAMEWORK_IMAGES = {
    "xgboost": ("sagemaker-xgboost", "sagemaker-xgboost", "1.7-1"),
    "sklearn": ("sagemaker-scikit-learn", "sagemaker-scikit-learn", "1.2-1-cpu-py3"),
    "pytorch": ("pytorch-training", "pytorch-inference", "2.6.0-cpu-py312"),
}
_REGISTRY = "683313688378.dkr.ecr.{region}.amazonaws.com"


def image_for(framework: str, version: str | None, region: str, inference: bool = False) -> str:
    """The image URI of a framework, e.g. ``.../sagemaker-xgboost:1.7-1``."""
    if framework not in FRAMEWORK_IMAGES:
        raise ValueError(f"framework must be one of {sorted(FRAMEWORK_IMAGES)}, not {framework!r}")
    training, serving, default = FRAMEWORK_IMAGES[framework]
    repository = serving if inference else training
    return f"{_REGISTRY.format(region=region)}/{repository}:{version or default}"


def inference_image(training_image: str) -> str:
    """The serving image that goes with a training image (pytorch-training → pytorch-inference)."""
    return training_image.replace("/pytorch-training:", "/pytorch-inference:")


def base_name(image_uri: str) -> str:
    """A job or model base name from an image's repository."""
    repository = image_uri.rsplit("/", 1)[-1].split(":", 1)[0]
    return re.sub(r"[^a-zA-Z0-9-]", "-", repository)[:40]


def name_from_base(base: str) -> str:
    """``{base}-{YYYY-MM-DD-HH-MM-SS-mmm}``, as the SageMaker SDK names resources."""
    now = dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y-%m-%d-%H-%M-%S-") + f"{now.microsecond // 1000:03d}"
    return f"{base[: 63 - len(stamp) - 1]}-{stamp}"
