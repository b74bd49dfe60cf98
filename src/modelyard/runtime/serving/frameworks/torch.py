"""PyTorch serving defaults, as the sagemaker-pytorch-inference container has them.

``model_fn`` loads TorchScript: ``model.pt``, else the single ``*.pt``/``*.pth`` file. Inputs
become float tensors on the model's device (CUDA when available); outputs become lists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from modelyard.runtime.serving import codecs
from modelyard.runtime.serving.frameworks import threads_per_worker

DEFAULT_ACCEPT = codecs.JSON


def device() -> torch.device:
    """CUDA when the worker sees a GPU, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def model_fn(model_dir: str) -> Any:
    """The TorchScript module of ``model_dir``."""
    torch.set_num_threads(threads_per_worker())
    directory = Path(model_dir)
    path = directory / "model.pt"
    if not path.exists():
        found = sorted(p for p in directory.iterdir() if p.suffix in (".pt", ".pth"))
        if len(found) != 1:
            names = ", ".join(p.name for p in found) or "none"
            raise ValueError(
                f"expected model.pt or exactly one *.pt/*.pth file in the model dir (found {names})"
            )
        path = found[0]
    model = torch.jit.load(str(path), map_location=device())
    return model.eval()


def input_fn(body: bytes, content_type: str) -> torch.Tensor:
    """JSON, CSV or NPY to a float tensor on the serving device."""
    array = codecs.decode(body, content_type, np.float32)
    return torch.from_numpy(np.ascontiguousarray(array)).to(device())


def predict_fn(data: Any, model: Any) -> Any:
    """``model(data)`` in eval mode, without autograd."""
    model.eval()
    with torch.no_grad():
        return model(data)


def output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    """Tensors as lists (JSON), CSV rows or NPY, the first the Accept list names."""
    if isinstance(prediction, torch.Tensor):
        prediction = prediction.detach().cpu().numpy()
    return codecs.encode(prediction, accept)


def warm_up(model: Any) -> None:
    """Nothing: the input shape of a TorchScript module is not known."""
