"""The floor: a bare Starlette app that parses a CSV body with numpy, predicts, answers CSV.

Nothing else: no routing table, no authentication, no content negotiation, no schema. Whatever
a serving platform adds on top of this is its overhead. Run by uvicorn from the project's
environment::

    BENCH_MODEL=/path/to/xgboost-model .venv/bin/python -m uvicorn bench.serving.floor_app:app \\
        --host 127.0.0.1 --port 8080 --workers 1 --no-access-log
"""

from __future__ import annotations

import os

import numpy as np
import xgboost
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def load_booster(path: str) -> xgboost.Booster:
    booster = xgboost.Booster()
    with open(path, "rb") as f:  # UBJSON without a suffix: load the bytes, not the name
        booster.load_model(bytearray(f.read()))
    # one request is tiny; threads would only contend with the other workers for 2 cores
    booster.set_param({"nthread": 1})
    return booster


def parse_csv(body: bytes) -> np.ndarray:
    """Rows of floats from headerless CSV, in one numpy call."""
    text = body.strip()
    columns = text.split(b"\n", 1)[0].count(b",") + 1
    flat = np.fromstring(text.replace(b"\n", b","), dtype=np.float32, sep=",")
    return flat.reshape(-1, columns)


BOOSTER = load_booster(os.environ["BENCH_MODEL"])


async def invocations(request: Request) -> Response:
    rows = parse_csv(await request.body())
    predictions = BOOSTER.inplace_predict(rows)
    return Response("\n".join(map(str, predictions.tolist())), media_type="text/csv")


async def ping(request: Request) -> Response:
    return Response(b"", status_code=200)


app = Starlette(routes=[
    Route("/invocations", invocations, methods=["POST"]),
    Route("/ping", ping, methods=["GET"]),
])
