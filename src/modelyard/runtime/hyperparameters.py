"""Hyperparameter handling exactly as sagemaker-training-toolkit does it.

On the wire every hyperparameter is a string; the SDK JSON-encodes framework estimators' values
(``"\\"train.py\\""``, ``"0.1"``, ``"true"``), the generic ``Estimator`` sends ``str(v)``. The
toolkit ``json.loads`` each value (keeping the raw string when that fails), moves ``sagemaker_*``
and a few reserved keys out of the user's view, and turns the rest into CLI arguments.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

#: keys the toolkit keeps for itself; everything else starting with ``sagemaker_`` is a
#: "framework parameter" (distribution flags ...), exported as SM_FRAMEWORK_PARAMS
RESERVED = frozenset(
    {
        "sagemaker_program",
        "sagemaker_submit_directory",
        "sagemaker_enable_cloudwatch_metrics",
        "sagemaker_region",
        "sagemaker_container_log_level",
        "sagemaker_job_name",
        "default_user_module_name",
        "_tuning_objective_metric",
        "sagemaker_s3_output",
    }
)

# "/opt/ml" as a path prefix: not preceded by a path character, followed by "/" or the end.
_OPT_ML = re.compile(r"(?<![\w./-])/opt/ml(?![\w.-])")


def decode(raw: str) -> Any:
    """One wire value as the toolkit sees it: ``json.loads`` or, failing that, the string."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@dataclasses.dataclass(frozen=True)
class Hyperparameters:
    """The decoded hyperparameters, split into the user's and the framework's."""

    raw: dict[str, str]
    user: dict[str, Any]
    framework: dict[str, Any]

    @classmethod
    def parse(cls, raw: Mapping[str, str]) -> Hyperparameters:
        """Decode and split ``raw`` (the strings of hyperparameters.json)."""
        user: dict[str, Any] = {}
        framework: dict[str, Any] = {}
        for key, value in raw.items():
            target = framework if key.startswith("sagemaker_") or key in RESERVED else user
            target[key] = decode(value)
        return cls(raw=dict(raw), user=user, framework=framework)

    @property
    def framework_params(self) -> dict[str, Any]:
        """The ``sagemaker_*`` values that are not reserved (SM_FRAMEWORK_PARAMS)."""
        return {k: v for k, v in self.framework.items() if k not in RESERVED}

    def text(self, key: str) -> str | None:
        """A framework value as a string (``sagemaker_program`` ...), or None when absent."""
        value = self.framework.get(key)
        return None if value is None else str(value)

    def flag(self, key: str) -> bool:
        """Whether a framework flag such as ``sagemaker_pytorch_ddp_enabled`` is on."""
        value = self.framework.get(key)
        if isinstance(value, str):
            return value.strip().lower() == "true"
        return bool(value)

    def log_level(self) -> int:
        """``sagemaker_container_log_level`` (default 20, logging.INFO)."""
        value = self.framework.get("sagemaker_container_log_level", 20)
        try:
            return int(value)
        except (TypeError, ValueError):
            return 20

    def cli_args(self) -> list[str]:
        """The user hyperparameters as the toolkit's CLI arguments (see :func:`to_cli_args`)."""
        return to_cli_args(self.user)


def to_cli_args(mapping: Mapping[str, Any]) -> list[str]:
    """``{"epochs": 2, "lr": 0.1}`` → ``["--epochs", "2", "--lr", "0.1"]``.

    Keys sorted; a one-character key gets a single dash; dict values become ``k1=v1,k2=v2``
    (sorted keys); None becomes ``""``; everything else is ``str(value)`` (so ``True``).
    """
    args: list[str] = []
    for key in sorted(mapping):
        name = str(key)
        args.append(("-" if len(name) == 1 else "--") + name if name else "")
        args.append(_arg_value(mapping[key]))
    return args


def _arg_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return ",".join(f"{k}={_text(v)}" for k, v in sorted(value.items()))
    return _text(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin1")
    return str(value)


def rewrite_opt_ml(value: str, root: str) -> str:
    """Replace every ``/opt/ml`` path prefix in ``value`` by ``root`` (rewrite isolation).

    Works on raw wire strings, JSON-encoded or not: ``"\\"/opt/ml/model\\""`` keeps its quotes.
    """
    return _OPT_ML.sub(lambda _: root, value)
