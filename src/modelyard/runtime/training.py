"""The Downloading → Training → Uploading part of a host run (see :mod:`.host`).

SageMaker reports pip's work as part of *Training* (the toolkit installs requirements.txt inside
the container, after the image started), so the requirements environment is built after the
Training status, and its output is in the job's log.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.runtime import (
    entrypoint,
    environment,
    failures,
    inputs,
    outputs,
    requirements_env,
)
from modelyard.runtime.distributed import rendezvous_env, torchrun_command, uses_torchrun
from modelyard.runtime.hyperparameters import Hyperparameters
from modelyard.runtime.plan import EXIT_ALGORITHM_ERROR, EXIT_OK, EXIT_STOPPED
from modelyard.runtime.supervisor import Outcome

if TYPE_CHECKING:
    from modelyard.runtime.host import HostRun


def train(run: HostRun) -> tuple[int, str | None]:
    """Download, run the work, upload; the exit code and failure reason."""
    hps = Hyperparameters.parse(run.hyperparameters)
    download(run, hps)
    run.reporter.status("Training", "Training image download completed. Training in progress.")
    sync = None
    if run.plan.checkpoint_uri:
        sync = outputs.CheckpointSync(
            run.store, run.layout.checkpoint_dir, run.plan.checkpoint_uri, run.reporter
        )
        sync.start()
    try:
        work = prepare_work(run, hps)
        env = work_environment(run, hps, work.python)
        outcome = run.supervisor.run(work.command, work.cwd, env, work.module)
    finally:
        if sync is not None:
            sync.stop()
    code, failure = judge(run, outcome, work.command)
    upload(run, code)
    return code, failure


def download(run: HostRun, hps: Hyperparameters) -> None:
    """Channels, checkpoints of an earlier attempt, and the submitted code."""
    run.reporter.status("Downloading", "Downloading input data")
    inputs.download_channels(run.store, run.plan, run.layout.path("input/data"), run.reporter)
    if run.plan.checkpoint_uri:
        inputs.download_checkpoints(
            run.store, run.plan.checkpoint_uri, run.layout.checkpoint_dir, run.reporter
        )
    submit = hps.text("sagemaker_submit_directory")
    if submit:
        inputs.fetch_code(run.store, submit, run.layout.path("code"), run.reporter)


def prepare_work(run: HostRun, hps: Hyperparameters) -> entrypoint.Work:
    """The command line: the built-in algorithm, or the script in its Python environment."""
    python = Path(sys.executable)
    code_dir = run.layout.path("code")
    cwd = Path(run.layout.shown("code"))
    program = hps.text("sagemaker_program")
    if program is None:
        command = entrypoint.algorithm_command(run.plan.framework, python)
        module = entrypoint.algorithm_module(run.plan.framework)
        return entrypoint.Work(entrypoint.ALGORITHM, command, cwd, python, module)
    python = _script_python(run, code_dir, program)
    kind = entrypoint.entry_point_kind(code_dir, program)
    args = hps.cli_args()
    if kind == entrypoint.PROGRAM:
        entrypoint.check_program(code_dir, program)
    if uses_torchrun(hps):
        processes = environment.count_gpus(os.environ)
        command = torchrun_command(
            python, run.plan, run.namespace, kind, program, args, processes
        )
    else:
        command = entrypoint.script_command(kind, python, code_dir, program, args)
    return entrypoint.Work(kind, command, cwd, python)


def _script_python(run: HostRun, code_dir: Path, program: str) -> Path:
    """The interpreter for the script: the requirements environment and/or the package's."""
    from modelyard.core.settings import Settings

    python = Path(sys.executable)
    pip_env = {**os.environ, **run.environment}
    requirements = code_dir / "requirements.txt"
    if requirements.exists():
        home = Settings.load().home
        python = requirements_env.cached_requirements_env(
            requirements, run.plan.framework, home, pip_env, run.reporter.log
        )
    if entrypoint.entry_point_kind(code_dir, program) == entrypoint.PACKAGE:
        python = requirements_env.job_package_env(
            run.host_dir / "venv", python, code_dir, pip_env, run.reporter.log
        )
    return python


def work_environment(run: HostRun, hps: Hyperparameters, python: Path) -> dict[str, str]:
    """The child's environment: the runtime's, the job's, the platform's and the SM_* set."""
    plan, layout = run.plan, run.layout
    sm_env = environment.training_env(plan, layout, hps, environment.count_gpus(os.environ))
    env = dict(os.environ)
    env.update(run.environment)
    env.update(environment.platform_variables(plan, layout))
    env.update(environment.s3_endpoint(os.environ))
    env.update(environment.sm_variables(sm_env, hps.cli_args()))
    env.update(rendezvous_env(plan, run.namespace))
    # So that `python` in a .sh entry point is the job's interpreter.
    requirements_env.activate(python, env)
    code = layout.shown("code")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (code, env.get("PYTHONPATH")) if p)
    return env


def judge(run: HostRun, outcome: Outcome, command: list[str]) -> tuple[int, str | None]:
    """Exit code and failure reason from the work's outcome; writes success or failure."""
    output = run.layout.path("output")
    if run.supervisor.stop_requested.is_set():
        run.reporter.runtime_log(f"The work was stopped (exit code {outcome.returncode})")
        return EXIT_STOPPED, None
    if outcome.returncode == 0:
        (output / "success").touch()
        return EXIT_OK, None
    reason = failures.read_failure_file(output / "failure")
    if reason is None:
        reason = failures.script_error(outcome.returncode, outcome.stderr_tail, command)
        failures.write_failure_file(output / "failure", reason)
    return EXIT_ALGORITHM_ERROR, reason


def upload(run: HostRun, code: int) -> None:
    """Model and output data (on the uploading host); best effort unless the job succeeded."""
    plan, layout = run.plan, run.layout
    if not plan.upload_outputs:
        return
    run.reporter.status("Uploading", "Uploading generated training model")
    model_dir, data_dir = layout.path("model"), layout.path("output/data")
    strict = code == EXIT_OK
    if strict or outputs.has_files(model_dir):
        _attempt(
            run,
            strict,
            "model",
            lambda: outputs.upload_model(
                run.store, model_dir, plan.model_uri, plan.compress_model, run.host_dir
            ),
        )
    _attempt(
        run,
        strict,
        "output data",
        lambda: outputs.upload_archive(run.store, data_dir, plan.output_uri, run.host_dir),
    )


def _attempt(run: HostRun, strict: bool, what: str, action: Callable[[], None]) -> None:
    """Run an upload; when not ``strict`` a failure is logged instead of raised."""
    try:
        action()
        run.reporter.runtime_log(f"Uploaded the {what}")
    except Exception as e:
        if strict:
            raise
        run.reporter.runtime_log(f"Could not upload the {what}: {e}")
