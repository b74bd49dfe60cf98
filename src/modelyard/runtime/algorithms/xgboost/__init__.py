"""SageMaker's built-in XGBoost algorithm ("algorithm mode" of the sagemaker-xgboost image).

Run a host with ``python -m modelyard.runtime.algorithms.xgboost`` (see :mod:`.entrypoint`).
This module itself only exposes what the platform server needs, without importing XGBoost:
the MetricDefinitions SageMaker attaches to built-in XGBoost jobs and metric directions.
"""

from .metrics import METRIC_DEFINITIONS, metric_definitions_for, objective_direction

__all__ = ["METRIC_DEFINITIONS", "metric_definitions_for", "objective_direction"]
