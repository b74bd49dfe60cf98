"""modelyard.tuning: hyperparameter tuning jobs (CreateHyperParameterTuningJob and friends).

Trials are ordinary training jobs; Optuna's samplers and pruners decide what they run and when
they stop (see :mod:`modelyard.tuning.strategies`).
"""
