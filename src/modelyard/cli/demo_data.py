"""The demo's data: scikit-learn's bundled breast-cancer set, split and written as CSV."""

from __future__ import annotations

from pathlib import Path


def write_breast_cancer(directory: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``train/train.csv`` and ``validation/validation.csv`` (label first, no header)."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    x_train, x_valid, y_train, y_valid = train_test_split(
        data.data, data.target, test_size=0.25, random_state=seed, stratify=data.target
    )
    paths = []
    for name, x, y in (("train", x_train, y_train), ("validation", x_valid, y_valid)):
        path = directory / name / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savetxt(path, np.column_stack([y, x]), delimiter=",", fmt="%.6g")
        paths.append(path.parent)
    return paths[0], paths[1]
