"""How job and model-server processes see ``/opt/ml``: the isolation mode to use."""

from __future__ import annotations

import os
import shutil

from modelyard.core.settings import Settings


def isolation_mode(settings: Settings) -> str:
    """``namespace`` (a private ``/opt/ml`` mount) where possible, else ``rewrite``.

    ``auto`` picks ``namespace`` when running as root with ``unshare`` available; the runtime
    itself falls back to ``rewrite`` if the kernel refuses.
    """
    if settings.isolation != "auto":
        return settings.isolation
    if os.geteuid() == 0 and shutil.which("unshare"):
        return "namespace"
    return "rewrite"
