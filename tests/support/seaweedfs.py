"""A real SeaweedFS S3 gateway for tests, over the product's :mod:`modelyard.artifacts.seaweedfs`.

Each gateway gets a fresh random key pair and small volumes::

    server = start_seaweedfs(tmp_path)
    try:
        client = server.client()
        ...
    finally:
        server.stop()
"""

from __future__ import annotations

from pathlib import Path

from modelyard.artifacts.seaweedfs import START_TIMEOUT_S, find_weed, start_gateway

# The tests' historical name for a running gateway.
from modelyard.artifacts.seaweedfs import S3Gateway as S3Server
from modelyard.core.credentials import generate_credentials

__all__ = ["S3Server", "find_weed", "start_seaweedfs"]


def start_seaweedfs(
    workdir: Path, *, timeout: float = START_TIMEOUT_S, auto_create_bucket: bool = False
) -> S3Server:
    """Start a gateway under ``workdir`` on free ports and wait until it takes writes."""
    keys = generate_credentials()
    return start_gateway(
        workdir,
        access_key_id=keys.access_key_id,
        secret_access_key=keys.secret_access_key,
        timeout=timeout,
        auto_create_bucket=auto_create_bucket,
        volume_size_limit_mb=64,  # small volumes keep test memory and disk low
    )
