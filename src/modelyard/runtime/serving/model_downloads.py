"""TargetModels from the prefix into the instance's models dir, each downloaded once.

Every worker of an instance may get the first request for a model at the same moment. The
first to take the model's file lock downloads and extracts it into a scratch dir and renames
that into place; the others wait on the lock and then find it there. A model dir therefore
exists only complete, so later requests look for it without any lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.runtime.serving.targets import local_name

if TYPE_CHECKING:
    from modelyard.artifacts import Artifacts

#: the dir below /opt/ml that holds ``<safe name>/model`` per TargetModel
MODELS_DIR = "models"


def prepare_models_dir(models_dir: Path) -> None:
    """An empty models dir: a restarted instance downloads its models again."""
    shutil.rmtree(models_dir, ignore_errors=True)
    models_dir.mkdir(parents=True)


class TargetRefused(Exception):
    """The TargetModel cannot be served because of the caller (answered 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ModelFetcher:
    """Puts TargetModels into the models dir, each downloaded once per instance.

    A complete model is ``<models_dir>/<safe name>/model``; it appears only by renaming a
    finished extraction, so its presence means complete, and workers check it without a lock.
    """

    def __init__(self, prefix: str, models_dir: Path, store: Callable[[], Artifacts]) -> None:
        self.prefix = prefix
        self.models_dir = models_dir
        self.store = store

    def uri(self, name: str) -> str:
        """Where the TargetModel ``name`` (already checked) is stored."""
        from modelyard.artifacts import join_uri

        return join_uri(self.prefix, name)

    def fetch(self, name: str) -> tuple[Path, bool]:
        """The model's extracted dir, and whether this call downloaded it; TargetRefused."""
        local = local_name(name)
        root = self.models_dir / local
        if root.is_dir():
            return root / "model", False
        with _locked(self.models_dir / f".{local}.lock"):
            if root.is_dir():  # another worker finished it while this one waited
                return root / "model", False
            partial = self.models_dir / f".{local}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            try:
                self._download(name, partial / "model")
            except BaseException:
                shutil.rmtree(partial, ignore_errors=True)
                raise
            partial.rename(root)
        return root / "model", True

    def _download(self, name: str, target: Path) -> None:
        from modelyard.artifacts import extract_tar
        from modelyard.core.errors import ArtifactError, ArtifactNotFound

        uri = self.uri(name)
        try:
            with self.store().open_read(uri) as stream:
                extract_tar(stream, target)
        except ArtifactNotFound:
            raise TargetRefused(missing_message(uri)) from None
        except ArtifactError as e:  # a corrupt or unsafe archive is the caller's to fix
            raise TargetRefused(f"Cannot use the model data at {uri}: {e}") from None


def missing_message(uri: str) -> str:
    """SageMaker's words for a TargetModel with no object behind it."""
    from modelyard.artifacts import parse_uri

    parsed = parse_uri(uri)
    where = (f"bucket: {parsed.bucket}, key: {parsed.key}" if parsed.scheme == "s3"
             else f"path: {parsed.key}")
    return (
        f"Failed to download model data({where}). Please ensure that there is an object "
        "located at the URL and that it is a model.tar.gz."
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


def artifacts_from_environment() -> Callable[[], Artifacts]:
    """The artifact store, configured from the forwarded MODELYARD_* variables on first use
    (a worker that never downloads never builds one)."""
    store: list[Artifacts] = []

    def get() -> Artifacts:
        if not store:
            from modelyard.artifacts import Artifacts

            store.append(Artifacts.from_environment())
        return store[0]

    return get
