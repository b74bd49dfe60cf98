"""Optuna loads with the first tuning job, not with the server."""

from __future__ import annotations

import subprocess
import sys


def test_the_server_starts_without_importing_optuna() -> None:
    code = "import sys, modelyard.server.platform\nprint('optuna' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
