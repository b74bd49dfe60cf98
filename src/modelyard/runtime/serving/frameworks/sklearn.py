"""scikit-learn serving defaults, as the sagemaker-scikit-learn container has them.

``model_fn`` loads ``model.joblib`` (or ``model.pkl``) when the model dir has one; otherwise the
user module must define it, as in the real container. Bodies are decoded to float32 arrays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelyard.runtime.serving import codecs

DEFAULT_ACCEPT = codecs.JSON
MODEL_FILES = ("model.joblib", "model.pkl")


def model_fn(model_dir: str) -> Any:
    """The joblib-saved estimator of ``model_dir``; NotImplementedError when there is none."""
    for name in MODEL_FILES:
        path = Path(model_dir) / name
        if path.exists():
            import joblib  # type: ignore[import-untyped]  # ships with scikit-learn

            return joblib.load(path)
    raise NotImplementedError(
        f"no {' or '.join(MODEL_FILES)} in the model dir: please provide a model_fn "
        "implementation in the user module"
    )


def input_fn(body: bytes, content_type: str) -> np.ndarray:
    """JSON, CSV or NPY to a float32 array."""
    return codecs.decode(body, content_type, np.float32)


def predict_fn(data: Any, model: Any) -> Any:
    """``model.predict(data)``."""
    return model.predict(data)


def output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    """JSON, CSV or NPY, the first the Accept list names."""
    return codecs.encode(prediction, accept)


def warm_up(model: Any) -> None:
    """Predict one zero row when the estimator says how many features it takes."""
    features = getattr(model, "n_features_in_", None)
    if isinstance(features, int) and hasattr(model, "predict"):
        model.predict(np.zeros((1, features), np.float32))
