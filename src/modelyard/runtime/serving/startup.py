"""Everything before the workers start: the model, the code, the Python environment.

The ``/opt/ml`` tree of an instance is ``<instance_dir>/opt_ml``: ``model/`` holds the
extracted ``model.tar.gz`` (or the downloaded uncompressed prefix), ``code/`` the
``SAGEMAKER_SUBMIT_DIRECTORY`` tarball when it is not ``/opt/ml/model/code``. Code dirs go on
the workers' ``sys.path``; a ``requirements.txt`` in them is installed into a cached
environment (:mod:`modelyard.runtime.requirements_env`) whose interpreter runs the workers.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.core.errors import ArtifactError, ArtifactNotFound
from modelyard.runtime import environment, inputs, requirements_env, threads
from modelyard.runtime.failures import ClientError
from modelyard.runtime.layout import CONTAINER_ROOT
from modelyard.runtime.reporting import Reporter
from modelyard.runtime.serving import multimodel
from modelyard.runtime.serving.handlers import find_program
from modelyard.runtime.serving.plan import ServePlan
from modelyard.runtime.serving.spec import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_BATCH_DELAY_MS,
    DEFAULT_MAX_PAYLOAD_MB,
    WorkerSpec,
)

if TYPE_CHECKING:
    from modelyard.artifacts import Artifacts

MODEL_CODE = f"{CONTAINER_ROOT}/model/code"


@dataclasses.dataclass(frozen=True)
class Tree:
    """Real and visible paths of the instance's /opt/ml tree."""

    real: Path
    visible: str  # "/opt/ml" (namespace isolation) or str(real)

    def shown(self, relative: str) -> str:
        """The visible form of a path inside the tree."""
        return f"{self.visible}/{relative}"


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What the worker pool is started with."""

    spec: WorkerSpec
    python: Path
    env: dict[str, str]
    cwd: Path


def download_model(
    store: Callable[[], Artifacts], plan: ServePlan, model_dir: Path, reporter: Reporter
) -> None:
    """Put the model data into ``model_dir`` (nothing to do without a model_data_url)."""
    shutil.rmtree(model_dir, ignore_errors=True)  # a restarted instance re-downloads
    model_dir.mkdir(parents=True)
    url = plan.model_data_url
    if not url:
        reporter.runtime_log("No model data: the handlers need no artifacts")
        return
    from modelyard.artifacts.archive import extract_tar

    try:
        if plan.model_data_compressed:
            with store().open_read(url) as stream:
                extract_tar(stream, model_dir)
        else:
            store().download_prefix(url if url.endswith("/") else url + "/", model_dir)
    except ArtifactNotFound as e:
        raise ClientError(f"Could not find model data at {url}.") from e
    except ArtifactError as e:  # an unsafe or corrupt archive is the caller's
        raise ClientError(f"Cannot use the model data at {url}: {e}") from e
    reporter.runtime_log(f"Model data from {url} is in {model_dir}")


def fetch_code(
    store: Callable[[], Artifacts], env: Mapping[str, str], tree: Tree, reporter: Reporter
) -> list[Path]:
    """The code dirs (real paths), first wins: the submitted code, then ``model/code``."""
    model_code = tree.real / "model" / "code"
    submitted = env.get("SAGEMAKER_SUBMIT_DIRECTORY", "")
    dirs = []
    if submitted and submitted not in (MODEL_CODE, tree.shown("model/code")):
        code_dir = tree.real / "code"
        shutil.rmtree(code_dir, ignore_errors=True)
        code_dir.mkdir(parents=True)
        inputs.fetch_code(store(), submitted, code_dir, reporter)
        dirs.append(code_dir)
    if model_code.is_dir():
        dirs.append(model_code)
    return dirs


def worker_python(
    code_dirs: list[Path], plan: ServePlan, env: Mapping[str, str], reporter: Reporter
) -> Path:
    """The cached requirements environment of the first code dir with a requirements.txt."""
    for code_dir in code_dirs:
        requirements = code_dir / "requirements.txt"
        if requirements.exists():
            from modelyard.core.settings import Settings

            home = Settings.load().home
            pip_env = {**os.environ, **env}
            return requirements_env.cached_requirements_env(
                requirements, plan.framework, home, pip_env, reporter.log
            )
    return Path(sys.executable)


def build_spec(
    plan: ServePlan, env: Mapping[str, str], tree: Tree, code_dirs: list[Path]
) -> WorkerSpec:
    """The workers' startup decisions; ClientError for a missing program or bad limit."""
    program = None
    if code_dirs or not plan.multi_model:  # else SAGEMAKER_PROGRAM names each model's script
        program = find_program(code_dirs, env.get("SAGEMAKER_PROGRAM") or None)
    try:
        max_payload = int(env.get("SAGEMAKER_MAX_PAYLOAD_IN_MB", DEFAULT_MAX_PAYLOAD_MB))
    except ValueError:
        raise ClientError("SAGEMAKER_MAX_PAYLOAD_IN_MB must be a whole number") from None
    batch_size, max_batch_delay_ms = batch_limits(env)
    real_root = str(tree.real)
    return WorkerSpec(
        framework=plan.framework,
        model_dir=tree.shown("model"),
        code_dirs=[tree.visible + str(d)[len(real_root) :] for d in code_dirs],
        program=program,
        workers=max(1, plan.workers),
        max_payload_mb=max_payload,
        default_accept=env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or None,
        multi_model=multimodel.spec_field(plan, env, tree.visible),
        batch_size=batch_size,
        max_batch_delay_ms=max_batch_delay_ms,
    )


def batch_limits(env: Mapping[str, str]) -> tuple[int, float]:
    """``SAGEMAKER_TS_BATCH_SIZE`` (requests per batch, 1 = no batching) and
    ``SAGEMAKER_TS_MAX_BATCH_DELAY`` (ms), as TorchServe reads them; ClientError when bad."""
    raw_size = env.get("SAGEMAKER_TS_BATCH_SIZE", "").strip()
    raw_delay = env.get("SAGEMAKER_TS_MAX_BATCH_DELAY", "").strip()
    try:
        size = int(raw_size) if raw_size else DEFAULT_BATCH_SIZE
    except ValueError:
        size = 0
    if size < 1:
        raise ClientError(
            f"SAGEMAKER_TS_BATCH_SIZE must be a whole number of requests, 1 or more (1: no "
            f"batching); got {raw_size!r}"
        )
    try:
        delay = float(raw_delay) if raw_delay else DEFAULT_MAX_BATCH_DELAY_MS
    except ValueError:
        delay = -1.0
    if not 0 <= delay < float("inf"):  # NaN fails this too
        raise ClientError(
            "SAGEMAKER_TS_MAX_BATCH_DELAY must be the longest a request may wait for a batch, "
            f"in milliseconds, 0 or more; got {raw_delay!r}"
        )
    return size, delay


def worker_environment(
    plan: ServePlan, env: Mapping[str, str], tree: Tree, spec: WorkerSpec, python: Path
) -> dict[str, str]:
    """The workers' environment: the instance's, the model's and the container's variables."""
    out = dict(os.environ)
    out.update(env)
    out.update(environment.s3_endpoint(os.environ))
    out.update(
        SAGEMAKER_BASE_DIR=tree.visible,
        SAGEMAKER_REGION=plan.region,
        AWS_REGION=plan.region,
        AWS_DEFAULT_REGION=plan.region,
        SAGEMAKER_BIND_TO_PORT=str(plan.port),
        SAGEMAKER_MODEL_SERVER_WORKERS=str(spec.workers),
        # Logs go line by line into logs.jsonl; a buffered worker would hold them back.
        PYTHONUNBUFFERED="1",
    )
    if spec.multi_model is not None:
        out["SAGEMAKER_MULTI_MODEL"] = "true"
    threads.size_pools(out, threads.share(spec.workers), chosen=env)
    out["PYTHONPATH"] = os.pathsep.join([*spec.code_dirs, *filter(None, [out.get("PYTHONPATH")])])
    requirements_env.activate(python, out)
    return out
