"""The benchmark model in each peer's own format, written by that peer's own library.

Each conversion runs inside the peer's venv (a short script on stdin), loading the same
``xgboost-model`` file the other targets load:

- MLflow: ``mlflow.xgboost.save_model`` with a signature of the 20 named float columns, as a
  user following MLflow's guide would log it (the signature turns on the scoring server's
  schema enforcement);
- BentoML: ``bentoml.xgboost.save_model`` into a model store under the bench work directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from bench.serving.model import FEATURES
from bench.serving.peers import BENTOML, MLFLOW, PeerEnv

_MLFLOW_SAVE = f"""
import sys
import numpy as np, pandas as pd, xgboost, mlflow.xgboost
from mlflow.models import infer_signature
booster = xgboost.Booster()
booster.load_model(bytearray(open(sys.argv[1], "rb").read()))  # UBJSON, no suffix
sample = pd.DataFrame(np.zeros((2, {FEATURES}), dtype=np.float32),
                      columns=[f"f{{i}}" for i in range({FEATURES})])
signature = infer_signature(sample, booster.inplace_predict(sample.to_numpy()))
mlflow.xgboost.save_model(booster, sys.argv[2], signature=signature, model_format="ubj")
"""

_BENTOML_SAVE = """
import sys
import xgboost, bentoml
booster = xgboost.Booster()
booster.load_model(bytearray(open(sys.argv[1], "rb").read()))  # UBJSON, no suffix
bentoml.xgboost.save_model("bench-xgboost", booster)
"""


def save_for_mlflow(model_file: Path, workdir: Path) -> Path:
    """The MLflow model directory for ``model_file``."""
    target = workdir / "mlflow-model"
    shutil.rmtree(target, ignore_errors=True)  # mlflow refuses to overwrite
    _run(MLFLOW, _MLFLOW_SAVE, [str(model_file), str(target)], {})
    return target


def save_for_bentoml(model_file: Path, workdir: Path) -> Path:
    """A BentoML home whose model store holds ``bench-xgboost``; pass it as BENTOML_HOME."""
    home = workdir / "bentoml-home"
    shutil.rmtree(home, ignore_errors=True)  # one version of the model, not one per run
    _run(BENTOML, _BENTOML_SAVE, [str(model_file)], {"BENTOML_HOME": str(home),
                                                      "BENTOML_DO_NOT_TRACK": "True"})
    return home


def _run(env: PeerEnv, script: str, args: list[str], extra_env: dict[str, str]) -> None:
    result = subprocess.run([str(env.python), "-", *args], input=script, text=True,
                            capture_output=True, env={**os.environ, **extra_env})
    if result.returncode != 0:
        raise RuntimeError(f"saving the model for {env.name} failed:\n{result.stderr[-2000:]}")
