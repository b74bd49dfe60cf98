"""The package's public surface is exactly what __all__ says, and importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import modelyard


def test_public_names() -> None:
    assert sorted(modelyard.__all__) == [
        "AsyncInferenceConfig", "AsyncPredictor", "CategoricalParameter", "ContinuousParameter",
        "Estimator", "HyperparameterTuner", "IntegerParameter", "Model", "Predictor", "Run",
        "ServerlessInferenceConfig", "Session", "TrainingFailed", "TransformFailed", "Transformer",
        "TuningFailed", "WaiterConfig", "__version__",
    ]
    for name in modelyard.__all__:
        assert getattr(modelyard, name) is not None


def test_import_does_not_load_heavy_modules() -> None:
    code = (
        "import sys, modelyard\n"
        "heavy = {'boto3', 'sqlalchemy', 'starlette', 'numpy', 'xgboost'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
