"""Checkpoints ``xgboost-checkpoint.<iteration>``: written every round, resumed on restart.

A checkpoint named ``.N`` holds the booster after round N (0-based), so a job restarted after a
spot interruption continues at round N + 1. Files are written under a dot-name and renamed, so a
kill mid-write never leaves a truncated checkpoint that the next attempt would trip over, and
the platform's checkpoint sync (which skips nothing) never uploads half a file under the real name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import xgboost
from xgboost.callback import TrainingCallback

PREFIX = "xgboost-checkpoint."
DEFAULT_KEEP = 5
_NAME = re.compile(rf"^{re.escape(PREFIX)}(\d+)$")


def checkpoint_path(folder: Path, iteration: int) -> Path:
    """Where the checkpoint after round ``iteration`` lives."""
    return folder / f"{PREFIX}{iteration}"


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """``(iteration, path)`` of every checkpoint in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name)) and p.is_file()]
    return sorted(found)


def write_model(booster: xgboost.Booster, path: Path) -> None:
    """Save ``booster`` in UBJSON (what ``Booster.load_model`` reads) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(booster.save_raw("ubj"))
    os.replace(partial, path)


def load_latest(folder: Path) -> tuple[bytearray, int] | None:
    """The newest readable checkpoint as ``(model bytes, rounds it holds)``, or None.

    An unreadable newest file (a disk filled up, a foreign file) falls back to the one before,
    which costs a few rounds instead of the whole job.
    """
    for _, path in reversed(list_checkpoints(folder)):
        raw = bytearray(path.read_bytes())
        try:
            booster = xgboost.Booster(model_file=raw)
        except xgboost.core.XGBoostError:
            continue
        return raw, booster.num_boosted_rounds()
    return None


class SaveCheckpoint(TrainingCallback):
    """Write a checkpoint after every ``every`` rounds and keep only the newest ``keep``."""

    def __init__(self, folder: Path, every: int = 1, keep: int = DEFAULT_KEEP) -> None:
        super().__init__()
        self.folder = folder
        self.every = max(1, every)
        self.keep = max(1, keep)
        self._first_round = 0

    def before_training(self, model: xgboost.Booster) -> xgboost.Booster:
        # xgboost.train counts epochs from 0 even when it continues a model.
        self._first_round = model.num_boosted_rounds()
        return model

    def after_iteration(self, model: xgboost.Booster, epoch: int, evals_log: TrainingCallback.EvalsLog) -> bool:
        iteration = self._first_round + epoch
        if (iteration + 1) % self.every == 0:
            write_model(model, checkpoint_path(self.folder, iteration))
            self._prune()
        return False

    def _prune(self) -> None:
        for _, stale in list_checkpoints(self.folder)[: -self.keep]:
            stale.unlink(missing_ok=True)
