"""A real, throwaway PostgreSQL server for tests.

:func:`start_postgres` runs ``initdb`` into a fresh temporary folder and starts the server with
``pg_ctl`` on 127.0.0.1 and a free port, its unix socket inside that folder, trusting local
connections. :meth:`PostgresServer.stop` shuts it down and removes the folder.

PostgreSQL refuses to run as root. When the tests run as root, the server commands run as the
``postgres`` system user (the one the distribution's packages create) and the folder is handed to
it; if that user does not exist the server cannot start and :class:`PostgresUnavailable` says so
(creating users on the machine is not something a test suite should do).

>>> server = start_postgres()                       # doctest: +SKIP
>>> url = server.create_database("store_test")      # doctest: +SKIP
>>> server.stop()                                   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["PostgresServer", "PostgresUnavailable", "find_bin_dir", "start_postgres"]

# Bounded waits (seconds): initdb on a slow disk, server start and stop, one connection attempt.
_INITDB_TIMEOUT = 120
_START_TIMEOUT = 60
_STOP_TIMEOUT = 60
_SUPERUSER = "postgres"
_SYSTEM_USER = "postgres"

# Test servers hold nothing worth a crash-safe write; these make database creation fast.
_SERVER_SETTINGS = ("fsync=off", "full_page_writes=off", "synchronous_commit=off")


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be run here: binaries missing, or root without a ``postgres`` user."""


@dataclasses.dataclass
class PostgresServer:
    """A running test server. ``url`` points at its default test database."""

    url: str
    port: int
    root: Path
    bin_dir: Path
    run_as: pwd.struct_passwd | None
    stopped: bool = False

    def create_database(self, name: str) -> str:
        """Create an empty database and return its ``postgresql://`` URL."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"database name {name!r} must be letters, digits and underscores")
        # Imported here so that a missing driver skips the PostgreSQL tests instead of
        # breaking the import of this module.
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn("postgres"), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def dsn(self, database: str) -> str:
        """A libpq connection string for ``database`` over TCP."""
        return f"host=127.0.0.1 port={self.port} user={_SUPERUSER} dbname={database}"

    def url_for(self, database: str) -> str:
        """The SQLAlchemy-style URL of ``database`` on this server."""
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """Shut the server down (fast mode) and delete its folder. Safe to call twice."""
        if self.stopped:
            return
        self.stopped = True
        try:
            _run(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w",
                 "-t", str(_STOP_TIMEOUT), "stop"],
                run_as=self.run_as, cwd=self.root, timeout=_STOP_TIMEOUT + 10,
            )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def find_bin_dir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: from PATH, else the newest Debian install."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    installed = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted((Path(p) for p in installed), key=_major_version, reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) are not on PATH or in /usr/lib/postgresql; "
        "install the postgresql package to run these tests"
    )


def start_postgres(database: str = "modelyard_test") -> PostgresServer:
    """Initialise and start a server, create ``database`` and return the running server."""
    bin_dir = find_bin_dir()
    run_as = _server_user()
    root = Path(tempfile.mkdtemp(prefix="modelyard-pg-"))
    try:
        if run_as is not None:
            os.chown(root, run_as.pw_uid, run_as.pw_gid)
        _run(
            [str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", _SUPERUSER,
             "--auth=trust", "--encoding=UTF8", "--no-sync"],
            run_as=run_as, cwd=root, timeout=_INITDB_TIMEOUT,
        )
        port = _start(bin_dir, root, run_as)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    server = PostgresServer(url="", port=port, root=root, bin_dir=bin_dir, run_as=run_as)
    try:
        server.url = server.create_database(database)
    except BaseException:
        server.stop()
        raise
    return server


def _start(bin_dir: Path, root: Path, run_as: pwd.struct_passwd | None) -> int:
    """Start the server on a free port; retry with another port if one was taken meanwhile."""
    for attempt in range(3):
        port = _free_port()
        options = ["-c", "listen_addresses=127.0.0.1", "-p", str(port), "-k", str(root)]
        for setting in _SERVER_SETTINGS:
            options += ["-c", setting]
        log = root / "server.log"
        result = _run(
            [str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-l", str(log), "-w",
             "-t", str(_START_TIMEOUT), "-o", shlex.join(options), "start"],
            run_as=run_as, cwd=root, timeout=_START_TIMEOUT + 10, check=False,
        )
        if result.returncode == 0:
            return port
        if attempt == 2 or "already in use" not in _tail(log):
            raise RuntimeError(
                f"PostgreSQL did not start (pg_ctl exit {result.returncode}):\n"
                f"{result.stdout}{result.stderr}\n{_tail(log)}"
            )
    raise AssertionError("unreachable")


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: ourselves, or the ``postgres`` user when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(_SYSTEM_USER)
    except KeyError:
        raise PostgresUnavailable(
            "running as root, and PostgreSQL refuses to run as root; no 'postgres' system user "
            "exists to run it as. Run the tests as a normal user or install the postgresql "
            "package (which creates that user)"
        ) from None


def _run(
    args: list[str],
    *,
    run_as: pwd.struct_passwd | None,
    cwd: Path,
    timeout: float,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a server command, as ``run_as`` when given, with a bounded wait."""
    kwargs: dict[str, Any] = {}
    env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8")
    if run_as is not None:
        # The standard library switches user in the child (setgid/setgroups/setuid), which needs
        # no runuser/su and no shell quoting. Drop root's supplementary groups as well.
        kwargs.update(user=run_as.pw_uid, group=run_as.pw_gid, extra_groups=[])
        env.update(HOME=run_as.pw_dir, USER=run_as.pw_name, LOGNAME=run_as.pw_name)
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False,
        stdin=subprocess.DEVNULL, **kwargs,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{Path(args[0]).name} failed with exit {result.returncode}:\n"
            f"{result.stdout}{result.stderr}"
        )
    return result


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _major_version(bin_dir: Path) -> int:
    """15 for /usr/lib/postgresql/15/bin; 0 when the folder name is not a number."""
    name = bin_dir.parent.name
    return int(name) if name.isdigit() else 0


def _tail(log: Path, lines: int = 30) -> str:
    """The end of the server log, for error messages."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""

