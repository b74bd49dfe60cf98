"""``python -m modelyard.runtime.algorithms.xgboost``: one host of a built-in XGBoost job.

Exit codes: 0 trained and saved; 1 failed, with the reason in ``<base>/output/failure``
(``ClientError: ...`` for the customer's mistakes, ``AlgorithmError: ...`` otherwise); 143 stopped
by SIGTERM (after saving the model when ``save_model_on_termination`` is true).
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Mapping
from types import FrameType

from .environment import AlgorithmEnvironment, read_json
from .errors import AlgorithmError, AlgorithmFailure
from .lifecycle import Terminated, print_line, termination_requested

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_TERMINATED = 143


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the algorithm in this process and return its exit code."""
    env = AlgorithmEnvironment.from_environ(os.environ if environ is None else environ)
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        run(env)
    except Terminated:
        print_line("SIGTERM: training stopped")
        return EXIT_TERMINATED
    except AlgorithmFailure as failure:
        return _fail(env, failure)
    except Exception as e:  # noqa: BLE001 - the job must end with a reason, whatever broke
        traceback.print_exc()
        return _fail(env, AlgorithmError(f"{type(e).__name__}: {e}"))
    return EXIT_OK


def run(env: AlgorithmEnvironment) -> None:
    """Validate, load the channels, train (resuming from checkpoints) and save the model."""
    # Imported here so a failure to import XGBoost still ends in a failure file.
    _import_xgboost_without_sklearn()
    from . import data, distributed, hyperparameters
    from .train import TrainingRun, train

    config = hyperparameters.validate(read_json(env.hyperparameters_file, default={}))
    channels = data.parse_channels(read_json(env.input_data_config_file, default=None) or _default_channels(env))
    cluster = distributed.Cluster.from_environment(env)
    datasets = {
        name: data.load_channel(channel, env.channel_dir(name), csv_weights=config.csv_weights)
        for name, channel in channels.items()
    }
    columns = max(d.shape[1] for d in datasets.values())
    for name, dataset in datasets.items():
        print_line(f"{name}: {dataset.shape[0]} rows, {dataset.shape[1]} features ({channels[name].format})")
    metrics = ",".join(config.eval_metrics) or "(objective default)"
    print_line(f"num_round: {config.num_round}, eval_metric: {metrics}, params: {config.params}")
    if config.ignored:
        print_line(f"Ignored (not used by XGBoost 3): {', '.join(config.ignored)}")
    training = TrainingRun(
        config=config,
        checkpoint_dir=env.checkpoint_dir(),
        model_dir=env.model_dir,
        is_master=cluster.is_master,
    )
    if cluster.is_distributed:
        print_line(f"Distributed training: {cluster.current_host} of {', '.join(cluster.hosts)}")
    with cluster.communicator():
        nthread = config.params.get("nthread")
        matrices = {name: d.to_dmatrix(columns, nthread) for name, d in datasets.items()}
        train(training, matrices["train"], matrices.get("validation"))


def preload() -> None:
    """Import everything :func:`run` imports, for a zygote to fork jobs from (no work runs).

    See :mod:`modelyard.runtime.forking`: a job forked after this starts training at once.
    """
    _import_xgboost_without_sklearn()
    from . import data, distributed, hyperparameters, train  # noqa: F401


def _import_xgboost_without_sklearn() -> None:
    """Import XGBoost with scikit-learn hidden: over a second of CPU saved on every job.

    XGBoost imports scikit-learn only to define its sklearn-style estimators; the algorithm
    trains plain Boosters. scikit-learn stays importable afterwards, for the container metrics
    and LIBSVM parsing that use it. (The model server's XGBoost defaults do the same.)
    """
    if "xgboost" in sys.modules or "sklearn" in sys.modules:
        return
    sys.modules["sklearn"] = None  # type: ignore[assignment]  # an ImportError inside xgboost
    try:
        import xgboost  # noqa: F401
    finally:
        del sys.modules["sklearn"]


def _default_channels(env: AlgorithmEnvironment) -> dict[str, dict[str, str]]:
    # Without inputdataconfig.json: whichever channel folders exist, in the default format.
    channels = {"train": {}} | ({"validation": {}} if env.channel_dir("validation").is_dir() else {})
    return channels


def _fail(env: AlgorithmEnvironment, failure: AlgorithmFailure) -> int:
    text = failure.failure_text
    print(text, file=sys.stderr, flush=True)
    try:
        env.failure_file.parent.mkdir(parents=True, exist_ok=True)
        env.failure_file.write_text(text)
    except OSError as e:
        print(f"Could not write {env.failure_file}: {e}", file=sys.stderr, flush=True)
    return EXIT_FAILED


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    termination_requested.set()
    raise Terminated()


__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_TERMINATED", "main", "preload", "run"]
