"""Materialise what the work reads: input channels, checkpoints to resume from, the code.

File and FastFile channels are both downloaded before the work starts (FastFile's streaming
view is a performance feature; a full copy is observably the same). ``CompressionType: Gzip``
is left as it is: SageMaker only decompresses on the fly in Pipe mode, which is not offered.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.core.errors import ArtifactError, ArtifactNotFound
from modelyard.runtime.failures import ClientError
from modelyard.runtime.plan import ChannelPlan, HostPlan
from modelyard.runtime.reporting import Reporter

if TYPE_CHECKING:
    from modelyard.artifacts import Artifacts


def download_channels(
    store: Artifacts, plan: HostPlan, data_dir: Path, reporter: Reporter
) -> None:
    """Download every channel of ``plan`` into ``data_dir/<channel>``."""
    for channel in plan.channels:
        target = data_dir / channel.name
        count = download_channel(store, channel, plan, target)
        reporter.runtime_log(f"Channel {channel.name}: {count} file(s) from {channel.source_uri}")


def download_channel(store: Artifacts, channel: ChannelPlan, plan: HostPlan, target: Path) -> int:
    """One channel (this host's shard of it); ClientError when the source holds nothing.

    A host whose ShardedByS3Key shard is empty (more hosts than objects) gets no files.
    """
    target.mkdir(parents=True, exist_ok=True)
    hosts = sorted(plan.hosts)
    shard = {
        "host_index": hosts.index(plan.host),
        "host_count": len(hosts),
        "sharded": channel.distribution == "ShardedByS3Key",
    }
    uri = channel.source_uri
    try:
        if channel.data_type == "ManifestFile":
            return store.download_manifest(uri, target, **shard)
        return store.download_prefix(uri, target, **shard)
    except ArtifactNotFound as e:
        raise ClientError(f"No objects found at {uri} (channel {channel.name}).") from e
    except ArtifactError as e:
        if channel.data_type == "ManifestFile":  # a malformed manifest is the caller's
            raise ClientError(str(e)) from e
        raise


def folder_uri(uri: str) -> str:
    """``uri`` as a folder prefix (checkpoint URIs name a folder, with or without a ``/``)."""
    return uri if uri.endswith("/") else uri + "/"


def download_checkpoints(store: Artifacts, uri: str, target: Path, reporter: Reporter) -> int:
    """Resume: copy what an earlier attempt saved under ``uri`` into ``target``."""
    try:
        count = store.download_prefix(folder_uri(uri), target)
    except ArtifactNotFound:
        count = 0  # first attempt: nothing saved yet
    if count:
        reporter.runtime_log(f"Restored {count} checkpoint file(s) from {uri}")
    return count


def fetch_code(store: Artifacts, source: str, code_dir: Path, reporter: Reporter) -> None:
    """Put the submitted code into ``code_dir``, as the toolkit does (only if it is empty).

    ``source`` is ``sagemaker_submit_directory``: an ``s3://`` tarball, a ``file://`` or plain
    local tarball, or a local directory (copied).
    """
    if any(code_dir.iterdir()):
        return  # a restarted attempt already has it
    local = source[len("file://") :] if source.startswith("file://") else source
    if "://" not in local and os.path.isdir(local):
        shutil.copytree(local, code_dir, dirs_exist_ok=True)
    else:
        from modelyard.artifacts.archive import extract_tar

        try:
            with store.open_read(source) as stream:
                extract_tar(stream, code_dir)
        except ArtifactNotFound as e:
            raise ClientError(f"No code found at {source} (sagemaker_submit_directory).") from e
        except ArtifactError as e:  # an unsafe or corrupt archive is the caller's
            raise ClientError(f"Cannot use the code at {source}: {e}") from e
    reporter.runtime_log(f"Code from {source} is in {code_dir}")
