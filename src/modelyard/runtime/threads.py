"""How many threads the native libraries of a runtime process start.

OpenBLAS (under numpy), OpenMP (XGBoost, scikit-learn) and MKL size their thread pools when
they load, from the environment, and default to one thread per core. A model server runs one
worker per core, each predicting one request at a time, so by default every worker would
start a pool as large as the machine; OpenBLAS's threads also spin while a worker starts
(about 0.2 s of CPU each, measured with ``/usr/bin/time`` on this project's worker), taking
cores from the workers still loading. Workers therefore get their share of the cores, unless
the model's environment says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from modelyard.runtime.environment import count_cpus

#: read by the libraries once, when they load
POOL_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def share(workers: int) -> int:
    """Threads for each of ``workers`` processes sharing this process's CPUs (at least 1)."""
    return max(1, count_cpus() // max(1, workers))


def size_pools(env: MutableMapping[str, str], threads: int, chosen: Mapping[str, str]) -> None:
    """Set the pool variables of ``env`` to ``threads``, except those ``chosen`` sets."""
    for name in POOL_VARIABLES:
        env[name] = chosen.get(name, str(threads))
