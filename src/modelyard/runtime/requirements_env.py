"""Python environments for a job's ``requirements.txt`` (and setup.py packages).

A requirements environment is a virtualenv layered on the runtime's own interpreter: a ``.pth``
file in its site-packages calls ``site.addsitedir`` on the parent's site-packages, so the
framework (numpy, xgboost, torch ...) stays importable and pip sees it as already installed,
while packages installed in the layer win. Environments are cached under
``$MODELYARD_HOME/envs/<key>/``, ``key = sha256(requirements + framework + interpreter)``, and
reused by every later job with the same requirements.

Concurrent jobs build one environment once: the build holds an ``fcntl`` lock on
``<key>.lock`` and marks the finished environment with a ``.complete`` file; an environment
without the mark (a build that was killed) is deleted and rebuilt. The environment is built in
place rather than in a temporary directory renamed at the end, because pip writes the absolute
path of the environment into the console scripts it installs (their ``#!`` line), and a rename
would break them.

Caveat: the key hashes the text of requirements.txt, so a requirement naming a local path is not
rebuilt when the files at that path change.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import site
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from modelyard.runtime.failures import ClientError

COMPLETE_MARK = ".complete"
_PTH_NAME = "_modelyard_parent.pth"


def env_key(requirements: bytes, framework: str) -> str:
    """The cache key of an environment for ``requirements`` under ``framework``."""
    digest = hashlib.sha256()
    for part in (requirements, framework.encode(), sys.version.encode(), sys.prefix.encode()):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def venv_python(env_dir: Path) -> Path:
    """The interpreter of a virtualenv."""
    return env_dir / "bin" / "python"


def venv_site_packages(env_dir: Path) -> Path:
    """The site-packages dir of a virtualenv made by this interpreter's version."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return env_dir / "lib" / version / "site-packages"


def activate(python: Path, env: dict[str, str]) -> None:
    """Make ``python``'s environment the active one in ``env`` (PATH, VIRTUAL_ENV), in place."""
    env["PATH"] = os.pathsep.join([str(python.parent), env.get("PATH", os.defpath)])
    if (python.parent.parent / "pyvenv.cfg").exists():
        env["VIRTUAL_ENV"] = str(python.parent.parent)


def parent_site_dirs() -> list[str]:
    """Site dirs of the interpreter running the runtime (the layer underneath)."""
    return [d for d in site.getsitepackages() if os.path.isdir(d)]


def create_layered_venv(env_dir: Path, parents: list[str]) -> Path:
    """Make a pip-less virtualenv at ``env_dir`` that also sees ``parents``; its python."""
    import venv  # only needed when a job brings requirements

    venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(env_dir)
    # Lines of a .pth that start with "import" are executed at startup; addsitedir (unlike a
    # plain path line) also runs the parent's own .pth files, e.g. editable installs.
    lines = [f"import site; site.addsitedir({d!r})\n" for d in parents]
    (venv_site_packages(env_dir) / _PTH_NAME).write_text("".join(lines))
    return venv_python(env_dir)


def pip_install(
    python: Path,
    args: list[str],
    cwd: Path,
    env: Mapping[str, str],
    log: Callable[[str], None],
) -> None:
    """Run ``pip --python <python> install <args>`` from this interpreter, logging each line.

    pip's own environment is the job's, so ``PIP_INDEX_URL`` and friends in the job's
    ``Environment`` apply. Raises ClientError when pip fails.
    """
    command = [sys.executable, "-m", "pip", "--python", str(python), "install", *args]
    pip_env = {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    log("$ pip install " + " ".join(args))
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=pip_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    ) as proc:
        assert proc.stdout is not None
        tail: list[str] = []
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            log(line)
            tail = (tail + [line])[-5:]
        returncode = proc.wait()
    if returncode != 0:
        detail = "\n".join(tail)
        raise ClientError(f"pip install {' '.join(args)} failed (exit {returncode}):\n{detail}")


def cached_requirements_env(
    requirements: Path,
    framework: str,
    home: Path,
    env: Mapping[str, str],
    log: Callable[[str], None],
) -> Path:
    """The python of the cached environment for ``requirements``; built on first use."""
    key = env_key(requirements.read_bytes(), framework)
    envs = home / "envs"
    envs.mkdir(parents=True, exist_ok=True)
    env_dir = envs / key
    if (env_dir / COMPLETE_MARK).exists():
        log(f"Reusing the Python environment {env_dir} for requirements.txt")
        return venv_python(env_dir)
    with open(envs / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if (env_dir / COMPLETE_MARK).exists():  # another job built it while we waited
            log(f"Reusing the Python environment {env_dir} for requirements.txt")
            return venv_python(env_dir)
        shutil.rmtree(env_dir, ignore_errors=True)  # a half-built leftover
        log(f"Building the Python environment {env_dir} for requirements.txt")
        python = create_layered_venv(env_dir, parent_site_dirs())
        try:
            pip_install(python, ["-r", str(requirements)], requirements.parent, env, log)
        except BaseException:
            shutil.rmtree(env_dir, ignore_errors=True)
            raise
        (env_dir / COMPLETE_MARK).write_text(key)
    return python


def job_package_env(
    env_dir: Path,
    base_python: Path,
    code_dir: Path,
    env: Mapping[str, str],
    log: Callable[[str], None],
) -> Path:
    """A per-job environment with the code dir's setup.py package installed (toolkit PACKAGE).

    Layered on ``base_python``'s environment, so the shared cache is never written to.
    """
    if base_python == Path(sys.executable):
        parents = parent_site_dirs()
    else:
        parents = [str(venv_site_packages(base_python.parent.parent))]
    python = create_layered_venv(env_dir, parents)
    pip_install(python, ["."], code_dir, env, log)
    return python
