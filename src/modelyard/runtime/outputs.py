"""What leaves the host: model and output archives, and checkpoints (continuously).

Archives are streamed to a temporary file in the host dir and uploaded from there, so a large
model is never held in memory.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.runtime.inputs import folder_uri
from modelyard.runtime.reporting import Reporter

if TYPE_CHECKING:
    from modelyard.artifacts import Artifacts


def upload_archive(store: Artifacts, src_dir: Path, uri: str, scratch: Path) -> None:
    """Upload ``src_dir``'s contents (relative paths, no leading dir) as a tar.gz at ``uri``."""
    from modelyard.artifacts.archive import write_tar_gz

    fd, tmp_name = tempfile.mkstemp(suffix=".tar.gz", dir=scratch)
    try:
        with os.fdopen(fd, "wb") as out:
            write_tar_gz(src_dir, out)
        store.upload_file(Path(tmp_name), uri)
    finally:
        os.unlink(tmp_name)


def upload_model(
    store: Artifacts, model_dir: Path, uri: str, compress: bool, scratch: Path
) -> None:
    """model/ → model.tar.gz at ``uri``, or the files under the ``uri`` prefix uncompressed."""
    if compress:
        upload_archive(store, model_dir, uri, scratch)
    else:
        store.upload_dir(model_dir, folder_uri(uri))


def has_files(directory: Path) -> bool:
    """Whether anything at all is under ``directory``."""
    return directory.is_dir() and any(directory.iterdir())


class CheckpointSync:
    """Uploads new and changed checkpoint files every ``interval`` seconds while the work runs.

    Example::

        sync = CheckpointSync(store, local_dir, "s3://b/ckpt/", reporter)
        sync.start()
        ...  # the work runs
        sync.stop()  # one last sync, after the work has exited
    """

    def __init__(
        self,
        store: Artifacts,
        local_dir: Path,
        uri: str,
        reporter: Reporter,
        interval: float = 2.0,
    ) -> None:
        self._store = store
        self._local_dir = local_dir
        self._uri = folder_uri(uri)
        self._reporter = reporter
        self._interval = interval
        self._seen: dict = {}  # sync_dir's record of what was uploaded already
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # the loop and the final sync never overlap
        self._thread = threading.Thread(target=self._loop, name="checkpoint-sync", daemon=True)

    def start(self) -> None:
        """Start syncing in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and sync one last time; errors of the last sync are logged."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        self.sync_once()

    def sync_once(self) -> int:
        """Upload what changed since the last sync; the number of files uploaded."""
        with self._lock:
            try:
                count = self._store.sync_dir(self._local_dir, self._uri, self._seen)
            except Exception as e:  # keep training: a later sync may succeed
                self._reporter.runtime_log(f"Checkpoint upload to {self._uri} failed: {e}")
                return 0
        if count:
            self._reporter.runtime_log(f"Uploaded {count} checkpoint file(s) to {self._uri}")
        return count

    def _loop(self) -> None:
        while not self._stopping.wait(self._interval):
            self.sync_once()
