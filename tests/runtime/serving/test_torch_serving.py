"""TorchScript models served by the PyTorch defaults."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from .conftest import archive

pytestmark = pytest.mark.torch


def test_torchscript_model_pt_is_loaded_and_served(serve, tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Sigmoid())
    # SageMaker's PyTorch contract is TorchScript, which torch now marks deprecated.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.script(network)
    module.save(str(tmp_path / "model.pt"))
    instance = serve(
        framework="torch",
        model_data_url=archive(tmp_path, {"model.pt": (tmp_path / "model.pt").read_bytes()}),
    )
    rows = [[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0]]
    response = instance.invoke(json.dumps(rows).encode(), "application/json")
    assert response.status == 200
    with torch.no_grad():
        expected = module(torch.tensor(rows)).numpy()
    np.testing.assert_allclose(np.array(response.json()), expected, rtol=1e-6)
    as_csv = instance.invoke(b"0.5,-1,2,0\n1,1,1,1", "text/csv", Accept="text/csv")
    got = np.array(
        [[float(v) for v in line.split(",")] for line in as_csv.body.decode().splitlines()]
    )
    np.testing.assert_allclose(got, expected, rtol=1e-6)
