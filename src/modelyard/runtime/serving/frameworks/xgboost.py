"""Built-in XGBoost algorithm serving: the sagemaker-xgboost container's content types.

Requests: ``text/csv`` (no header, no label) and ``text/libsvm`` (a leading label is optional).
Responses: ``text/csv`` (one prediction per line), ``application/json``
(``{"predictions": [{"score": x}, ...]}``) and ``application/jsonlines``. Every non-dot file of
the model dir is a Booster; several are averaged (``SAGEMAKER_INFERENCE_ENSEMBLE=false`` keeps
only the first).

xgboost is imported on first use, by :func:`xgboost_module`: when the default ``model_fn`` is the
first to need it, it is imported without scikit-learn (see there).
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.runtime.algorithms.xgboost.errors import xgboost_message
from modelyard.runtime.serving import codecs
from modelyard.runtime.serving.errors import (
    NoContent,
    PredictionFailed,
    UnsupportedContentType,
)

if TYPE_CHECKING:
    import xgboost

DEFAULT_ACCEPT = codecs.CSV
LIBSVM_TYPES = ("text/libsvm", "text/x-libsvm")
ACCEPTS = (codecs.CSV, codecs.JSON, codecs.JSONLINES)

_xgboost: Any = None  # the module, once imported


def xgboost_module(without_sklearn: bool = False) -> Any:
    """The ``xgboost`` module, imported on the first call.

    ``without_sklearn``: import it with scikit-learn hidden, unless either is imported already.
    xgboost imports scikit-learn only to define its sklearn-style estimators, and that import
    is about 1.2 s of CPU, most of a worker's start (three times the rest of xgboost). The
    default ``model_fn`` asks for this: it loads plain Boosters, and a user module that wanted
    the estimators has imported xgboost or scikit-learn by the time it runs. scikit-learn
    itself stays importable afterwards.
    """
    global _xgboost
    if _xgboost is None:
        hide = without_sklearn and "sklearn" not in sys.modules and "xgboost" not in sys.modules
        if hide:
            sys.modules["sklearn"] = None  # type: ignore[assignment]  # ImportError in xgboost
        try:
            import xgboost
        finally:
            if hide:
                del sys.modules["sklearn"]
        _xgboost = xgboost
    return _xgboost


def model_fn(model_dir: str) -> xgboost.Booster | list[xgboost.Booster]:
    """Every non-dot file of ``model_dir`` as a Booster (one, or the ensemble's list)."""
    xgboost_module(without_sklearn=True)
    files = sorted(
        p for p in Path(model_dir).iterdir() if p.is_file() and not p.name.startswith(".")
    )
    if not files:
        raise FileNotFoundError(f"no model file in {model_dir}")
    if os.environ.get("SAGEMAKER_INFERENCE_ENSEMBLE", "true").lower() == "false":
        files = files[:1]
    boosters = [_load_booster(path) for path in files]
    for booster in boosters:
        # One thread: an OpenMP team costs more than a small batch's prediction (a one-row
        # call went from ~170 µs to over 2 ms of CPU with two spinning threads on a busy
        # machine); an instance runs one worker per vCPU for parallelism instead.
        booster.set_param({"nthread": 1})
    return boosters[0] if len(boosters) == 1 else boosters


def _load_booster(path: Path) -> xgboost.Booster:
    xgb = xgboost_module()
    data = path.read_bytes()
    try:
        return xgb.Booster(model_file=bytearray(data))
    except xgb.core.XGBoostError:
        if not data.startswith(b"\x80"):  # not a pickle either
            raise
    # Older images saved the Booster with pickle; the user's own artifact, so trusted.
    booster = pickle.loads(data)
    if not isinstance(booster, xgb.Booster):
        raise TypeError(f"{path.name} holds a {type(booster).__name__}, not an XGBoost Booster")
    return booster


def input_fn(body: bytes, content_type: str) -> Any:
    """A float32 matrix from CSV, or a CSR matrix from LIBSVM; 204 when empty, else 415."""
    if not body:
        raise NoContent()
    kind = codecs.media_type(content_type)
    if kind == codecs.CSV:
        return codecs.parse_csv(body)
    if kind in LIBSVM_TYPES:
        return parse_libsvm(body)
    raise UnsupportedContentType(
        f"Content type {content_type!r} is not supported; use text/csv or text/libsvm"
    )


def parse_libsvm(body: bytes) -> Any:
    """LIBSVM rows (``[label] index:value ...``, 0-based indices) as a CSR matrix."""
    import scipy.sparse  # type: ignore[import-untyped]  # only LIBSVM requests need it

    indptr, indices, values = [0], [], []
    try:
        for line in body.splitlines():
            tokens = line.split(b"#", 1)[0].split()
            if not tokens:
                continue
            if b":" not in tokens[0]:
                tokens = tokens[1:]  # the label: ignored when predicting
            for token in tokens:
                index, _, value = token.partition(b":")
                indices.append(int(index))
                values.append(float(value))
            indptr.append(len(indices))
    except ValueError as e:
        raise UnsupportedContentType(f"The LIBSVM body is malformed: {e}") from None
    if len(indptr) == 1:
        raise UnsupportedContentType("The LIBSVM body holds no rows")
    width = max(indices, default=-1) + 1
    return scipy.sparse.csr_matrix(
        (np.asarray(values, np.float32), np.asarray(indices), np.asarray(indptr)),
        shape=(len(indptr) - 1, width),
    )


def predict_fn(data: Any, model: Any) -> np.ndarray:
    """inplace_predict on each Booster (averaged for an ensemble); 400 when XGBoost refuses."""
    boosters = model if isinstance(model, list) else [model]
    xgb = xgboost_module()
    try:
        predictions = [_predict_one(xgb, booster, data) for booster in boosters]
    except (xgb.core.XGBoostError, ValueError) as e:  # ValueError: feature shape mismatch
        raise PredictionFailed(
            f"Unable to evaluate payload provided: {xgboost_message(e)}"
        ) from None
    return predictions[0] if len(predictions) == 1 else np.mean(predictions, axis=0)


def _predict_one(xgb: Any, model: Any, data: Any) -> np.ndarray:
    if not isinstance(model, xgb.Booster):
        return np.asarray(model.predict(data))  # a user model_fn's sklearn-style model
    if isinstance(data, xgb.DMatrix):
        return model.predict(data)
    if hasattr(data, "tocsr") and data.shape[1] < model.num_features():
        data = data.tocsr(copy=True)
        data.resize((data.shape[0], model.num_features()))  # trailing features missing
    return model.inplace_predict(data)


def output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    """CSV lines, ``{"predictions": [{"score": ...}]}`` or JSON lines, as Accept asks."""
    kind = codecs.choose_accept(accept, ACCEPTS)
    array = np.asarray(prediction)
    if kind == codecs.CSV:
        return codecs.csv_bytes(array), kind
    scores = [_json_number(row) for row in array]
    if kind == codecs.JSON:
        records = ",".join('{"score":' + s + "}" for s in scores)
        return ('{"predictions":[' + records + "]}").encode(), kind
    return "".join('{"score":' + s + "}\n" for s in scores).encode(), kind


def _json_number(value: np.ndarray) -> str:
    # str() of a numpy scalar is its shortest round-tripping repr; NaN/inf are not JSON.
    if value.ndim:
        return "[" + ",".join(_json_number(v) for v in value) + "]"
    number = float(value)
    return str(value) if np.isfinite(number) else "null"


def warm_up(model: Any) -> None:
    """One zero row through every Booster: the first prediction pays one-time setup."""
    boosters = model if isinstance(model, list) else [model]
    xgb = xgboost_module()
    for booster in boosters:
        if isinstance(booster, xgb.Booster):
            booster.inplace_predict(np.zeros((1, booster.num_features()), np.float32))
