"""modelyard: a self-hostable machine-learning platform that speaks SageMaker's API.

>>> import modelyard                                                     # doctest: +SKIP
>>> est = modelyard.Estimator(framework="xgboost", hyperparameters={"num_round": 10})  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AsyncInferenceConfig", "AsyncPredictor", "CategoricalParameter", "ContinuousParameter",
    "Estimator", "HyperparameterTuner", "IntegerParameter", "Model", "Predictor", "Run",
    "ServerlessInferenceConfig", "Session", "TrainingFailed", "TransformFailed", "Transformer",
    "TuningFailed", "WaiterConfig", "__version__",
]

if TYPE_CHECKING:
    from modelyard.sdk.async_inference import (
        AsyncInferenceConfig,
        AsyncPredictor,
        ServerlessInferenceConfig,
        WaiterConfig,
    )
    from modelyard.sdk.estimator import Estimator, TrainingFailed
    from modelyard.sdk.experiments import Run
    from modelyard.sdk.model import Model
    from modelyard.sdk.predictor import Predictor
    from modelyard.sdk.session import Session
    from modelyard.sdk.transformer import Transformer, TransformFailed
    from modelyard.sdk.tuner import (
        CategoricalParameter,
        ContinuousParameter,
        HyperparameterTuner,
        IntegerParameter,
        TuningFailed,
    )


_ASYNC_NAMES = frozenset({
    "AsyncInferenceConfig", "AsyncPredictor", "ServerlessInferenceConfig", "WaiterConfig",
})
_TUNER_NAMES = frozenset({
    "CategoricalParameter", "ContinuousParameter", "HyperparameterTuner", "IntegerParameter",
    "TuningFailed",
})


def __getattr__(name: str) -> Any:
    # Imported on first use so that `import modelyard` inside a job stays cheap.
    if name in _ASYNC_NAMES:
        from modelyard.sdk import async_inference

        return getattr(async_inference, name)
    if name in ("Estimator", "TrainingFailed"):
        from modelyard.sdk import estimator

        return getattr(estimator, name)
    if name == "Model":
        from modelyard.sdk.model import Model

        return Model
    if name == "Predictor":
        from modelyard.sdk.predictor import Predictor

        return Predictor
    if name == "Session":
        from modelyard.sdk.session import Session

        return Session
    if name == "Run":
        from modelyard.sdk.experiments import Run

        return Run
    if name in ("Transformer", "TransformFailed"):
        from modelyard.sdk import transformer

        return getattr(transformer, name)
    if name in _TUNER_NAMES:
        from modelyard.sdk import tuner

        return getattr(tuner, name)
    raise AttributeError(name)
