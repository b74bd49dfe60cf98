"""``modelyard demo``: the guided tour, on data bundled with scikit-learn.

It starts a server for the default home unless one runs, trains the built-in XGBoost algorithm
on the breast-cancer dataset through SageMaker's API with live logs, prints the validation
metric and where the model is, tunes it with a small Bayesian tuning job and prints the trials,
deploys the best trial to an endpoint, invokes it with a few rows, runs a canary update,
deletes the endpoint, and stops the server it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from modelyard.core.discovery import running_server_url

_SERVER_START_TIMEOUT = 60.0
_TRIALS = 6
_PARALLEL = 2
_ENDED = ("Completed", "Failed", "Stopped")


@click.command()
@click.option("--home", type=click.Path(path_type=Path), help="Data directory (default ~/.modelyard).")
def demo(home: Path | None) -> None:
    """Train a model through the SageMaker API and show where it went."""
    home = (home or Path(os.environ.get("MODELYARD_HOME") or Path.home() / ".modelyard")).expanduser()
    server = _ensure_server(home)
    try:
        _run(home)
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()


def _ensure_server(home: Path) -> subprocess.Popen[bytes] | None:
    if running_server_url(home):
        click.echo(f"Using the modelyard server already running for {home}.")
        return None
    home.mkdir(parents=True, exist_ok=True)
    click.secho("1. Starting the modelyard server (SageMaker API on 127.0.0.1)", bold=True)
    with open(home / "server.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelyard", "server", "--home", str(home), "--port", "0"],
            stdout=subprocess.DEVNULL, stderr=log,
        )
    deadline = time.monotonic() + _SERVER_START_TIMEOUT
    while not running_server_url(home):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise click.ClickException(f"The server did not start; see {home / 'server.log'}.")
        time.sleep(0.1)
    click.echo(f"   listening on {running_server_url(home)}")
    return proc


def _run(home: Path) -> None:
    import modelyard
    from modelyard.cli.demo_data import write_breast_cancer

    session = modelyard.Session(home=home, start_server=False)
    click.secho("2. Preparing data: scikit-learn's breast-cancer set as CSV (label first)", bold=True)
    train, validation = write_breast_cancer(home / "demo" / "data")
    click.echo(f"   train: {train}\n   validation: {validation}")
    click.secho("3. A first training job with the built-in XGBoost image (live logs below)", bold=True)
    estimator = modelyard.Estimator(
        framework="xgboost",
        hyperparameters={"objective": "binary:logistic", "num_round": 50, "max_depth": 4,
                         "eta": 0.2, "eval_metric": "auc"},
        instance_type="ml.m5.large",
        content_type="text/csv",
        base_job_name="demo-xgboost",
        session=session,
    )
    inputs = {"train": str(train), "validation": str(validation)}
    estimator.fit(inputs)
    _report(home, estimator)
    best = _tune(estimator, inputs)
    _serve(best, validation)


def _report(home: Path, estimator: object) -> None:
    job = estimator.describe()  # type: ignore[attr-defined]
    click.secho("4. Result", bold=True)
    for metric in job.get("FinalMetricDataList", []):
        if metric["MetricName"] == "validation:auc":
            click.echo(f"   validation:auc = {metric['Value']:.4f}")
    click.echo(f"   training job: {job['TrainingJobName']} ({job['TrainingJobStatus']}, "
               f"{job.get('TrainingTimeInSeconds')} s)")
    click.echo(f"   model: {estimator.model_data}")  # type: ignore[attr-defined]
    click.echo(f"   on disk: {_local_path(home, estimator.model_data)}")  # type: ignore[attr-defined]
    click.echo("   Inspect it again with: modelyard training-jobs describe " + job["TrainingJobName"])


def _tune(estimator: object, inputs: dict[str, str]) -> object:
    """A small Bayesian tuning job around the first model; the best trial's estimator."""
    import modelyard

    click.secho(f"5. Tuning: {_TRIALS} trials, {_PARALLEL} at a time, maximizing validation:auc",
                bold=True)
    tuner = modelyard.HyperparameterTuner(
        estimator, "validation:auc",
        {"eta": modelyard.ContinuousParameter(0.05, 0.5, scaling_type="Logarithmic"),
         "max_depth": modelyard.IntegerParameter(2, 6),
         "min_child_weight": modelyard.ContinuousParameter(1, 8)},
        strategy="Bayesian", max_jobs=_TRIALS, max_parallel_jobs=_PARALLEL, random_seed=7,
        base_tuning_job_name="demo-tuning",
    )
    tuner.fit(inputs, wait=False)
    shown = None
    while (job := tuner.describe())["HyperParameterTuningJobStatus"] not in _ENDED:
        counts = job["TrainingJobStatusCounters"]
        line = f"   {counts['Completed']} completed, {counts['InProgress']} running"
        if line != shown:
            click.echo(line)
            shown = line
        time.sleep(0.5)
    tuner.wait()
    frame = tuner.analytics().dataframe().sort_values("FinalObjectiveValue", ascending=False)
    click.echo(f"   {'trial':<44} {'eta':>6} {'max_depth':>9} {'min_child_weight':>16} {'auc':>7}")
    for row in frame.itertuples():
        auc = "-" if row.FinalObjectiveValue != row.FinalObjectiveValue else f"{row.FinalObjectiveValue:.4f}"
        click.echo(f"   {row.TrainingJobName:<44} {row.eta:>6.3f} {row.max_depth:>9} "
                   f"{row.min_child_weight:>16.2f} {auc:>7}")
    best = tuner.best_training_job()
    click.echo(f"   best: {best}; inspect with: modelyard tuning-jobs describe {tuner.latest_tuning_job}")
    return tuner.best_estimator()


def _serve(estimator: object, validation: Path) -> None:
    """Deploy the trained model, call it, and take the endpoint down again."""
    import numpy as np

    click.secho("6. Deploying the best trial: CreateModel, CreateEndpointConfig, CreateEndpoint", bold=True)
    predictor = estimator.deploy(instance_type="ml.m5.large")  # type: ignore[attr-defined]
    click.echo(f"   endpoint {predictor.endpoint_name} is InService")
    rows = np.loadtxt(validation / "validation.csv", delimiter=",")[:5]
    scores = predictor.predict(rows[:, 1:])
    click.secho("7. InvokeEndpoint with 5 validation rows (text/csv)", bold=True)
    for label, score in zip(rows[:, 0], scores, strict=True):
        click.echo(f"   label {int(label)}  predicted probability {score:.3f}")
    _canary(estimator, predictor, rows[:1, 1:])
    predictor.delete_endpoint()
    click.echo(f"   deleted endpoint {predictor.endpoint_name}")


def _canary(estimator: object, predictor: object, row: object) -> None:
    """A canary update to a second model version, with traffic counted while it bakes."""
    import threading
    from collections import Counter

    from modelyard.sdk.model import Model

    click.secho("8. Canary update: 50 % of traffic to version 2 for 4 s, then all of it", bold=True)
    version2 = Model(model_data=estimator.model_data, image_uri=estimator.image_uri,  # type: ignore[attr-defined]
                     session=estimator.session).create()  # type: ignore[attr-defined]
    policy = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
        "Type": "CANARY", "WaitIntervalInSeconds": 4,
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50}}}}
    done = threading.Event()
    update = threading.Thread(target=lambda: (predictor.update(version2, variant_name="Version2",  # type: ignore[attr-defined]
                                                               deployment_config=policy), done.set()))
    update.start()
    seen: Counter[str] = Counter()
    while not done.is_set():
        predictor.predict(row)  # type: ignore[attr-defined]
        seen[predictor.last_variant] += 1  # type: ignore[attr-defined]
    update.join()
    shares = ", ".join(f"{variant}: {count}" for variant, count in seen.items())
    click.echo(f"   requests during the update, by variant: {shares}; none failed")
    click.echo(f"   endpoint now serves {predictor.endpoint()['EndpointConfigName']}")  # type: ignore[attr-defined]


def _local_path(home: Path, uri: str) -> str:
    from modelyard.artifacts import Artifacts
    from modelyard.core.settings import Settings

    store, key = Artifacts(Settings.load(home=home)).resolve(uri)
    root = getattr(store, "root", None)
    return str(Path(root or "/") / key) if root is not None or store.scheme == "file" else uri
