"""Multi-model serving (``Mode: MultiModel``): many models under one prefix, loaded on demand.

The instance starts with no model (``SAGEMAKER_MULTI_MODEL=true`` in the workers'
environment). A request names its model in ``X-Amzn-SageMaker-Target-Model``, a key below the
model's ``ModelDataUrl`` prefix (:mod:`.targets`). On the first request for a model a worker:

1. downloads ``<prefix>/<TargetModel>`` (a ``model.tar.gz``) and extracts it into
   ``/opt/ml/models/<safe name>/model``, once per instance (:mod:`.model_downloads`);
2. resolves that model's handlers, from its own ``code/inference.py`` when it has one (else
   from the container's code, else the framework's defaults), as :mod:`.handlers` does for a
   single model, then calls ``model_fn`` and warms the model up;
3. keeps it in its :class:`~.model_cache.ModelCache`, least recently used out first when the
   models' sizes pass the worker's memory bound.

A model's size is what loading it grew the worker's resident memory by, but never less than
its extracted size (freed memory that a new model reuses does not show as growth). The bound
is three quarters of the instance type's memory (or of this machine's, when it has less),
shared evenly among the workers; the model's ``MODELYARD_MULTI_MODEL_MEMORY_MB`` lowers it
(MB per instance, shared the same way).
With ``ModelCacheSetting: Disabled`` a model is unloaded after every invocation.

Beside ``/ping`` and ``/invocations`` a worker answers the container's model routes for its
own cache: ``GET /models``, ``GET /models/{name}``, ``DELETE /models/{name}`` (the name
URL-encoded). Errors the caller caused (no TargetModel, an invalid one, no object at that key)
are 400s the router turns into ``ValidationError``; a model whose ``model_fn`` fails is a 500.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote

from modelyard.runtime.failures import ClientError
from modelyard.runtime.serving import frameworks, handlers
from modelyard.runtime.serving.app import InferenceApp, Response, error, route
from modelyard.runtime.serving.context import Context
from modelyard.runtime.serving.loading import Loading
from modelyard.runtime.serving.model_cache import ModelCache
from modelyard.runtime.serving.model_downloads import (
    MODELS_DIR,
    ModelFetcher,
    TargetRefused,
    artifacts_from_environment,
)
from modelyard.runtime.serving.plan import ServePlan
from modelyard.runtime.serving.spec import WorkerSpec
from modelyard.runtime.serving.targets import (
    ERROR_CODE_HEADER,
    TARGET_MODEL_HEADER,
    VALIDATION_ERROR,
    InvalidTargetModel,
    decode_target_model,
    local_name,
)

#: the model's environment variable that lowers the memory the loaded models may take
MEMORY_VARIABLE = "MODELYARD_MULTI_MODEL_MEMORY_MB"
#: the share of the instance's memory the loaded models may take by default; the rest is the
#: workers' own, the requests' and the downloads'
MEMORY_SHARE = 0.75

#: warm_up(handlers, model, spec, context), the worker's (see :func:`.worker.warm_up`)
WarmUp = Callable[[handlers.Handlers, Any, WorkerSpec, Context], None]

_JSON = b"application/json"
_MODULE_PREFIX = "modelyard_model_"  # + the model's local name: its handler module


@dataclasses.dataclass(frozen=True)
class MultiModelSettings:
    """What a multi-model worker needs beyond the :class:`WorkerSpec`."""

    prefix: str  # ModelDataUrl: TargetModels are keys below it
    models_dir: str  # /opt/ml/models as the workers see it
    memory_bytes: int  # the bound of one worker's cache
    cache_enabled: bool = True  # MultiModelConfig.ModelCacheSetting
    program: str = handlers.DEFAULT_PROGRAM  # a model's own handler script, in its code/

    def to_dict(self) -> dict[str, Any]:
        """The JSON form carried in ``WorkerSpec.multi_model``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> MultiModelSettings:
        return cls(**raw)


def worker_settings(plan: ServePlan, env: Mapping[str, str], models_dir: str) -> MultiModelSettings:
    """The workers' settings; ClientError when MODELYARD_MULTI_MODEL_MEMORY_MB is not a
    positive number or there is no prefix."""
    if not plan.model_data_url:
        raise ClientError("A multi-model container needs a ModelDataUrl prefix")
    machine = _machine_memory_mb()
    budget_mb = min(plan.memory_mb or machine, machine) * MEMORY_SHARE
    requested = env.get(MEMORY_VARIABLE)
    if requested:
        try:
            value = float(requested)
        except ValueError:
            value = 0.0
        if not value > 0:
            raise ClientError(
                f"{MEMORY_VARIABLE} must be a positive number of MB, got {requested!r}"
            )
        budget_mb = min(budget_mb, value)
    return MultiModelSettings(
        prefix=plan.model_data_url,
        models_dir=models_dir,
        memory_bytes=int(budget_mb * 2**20 / max(1, plan.workers)),
        cache_enabled=plan.model_cache,
        program=env.get("SAGEMAKER_PROGRAM") or handlers.DEFAULT_PROGRAM,
    )


def spec_field(plan: ServePlan, env: Mapping[str, str], root: str) -> dict[str, Any] | None:
    """``WorkerSpec.multi_model`` for ``plan`` whose /opt/ml the workers see at ``root``: None
    unless it is a multi-model container."""
    if not plan.multi_model:
        return None
    return worker_settings(plan, env, f"{root}/{MODELS_DIR}").to_dict()


def _machine_memory_mb() -> int:
    import psutil

    return int(psutil.virtual_memory().total // 2**20)


@dataclasses.dataclass
class LoadedModel:
    """One model in a worker's cache: its app (handlers + model) and what to undo."""

    app: InferenceApp
    module_name: str | None  # the model's own handler module in sys.modules
    code_dir: str | None  # put on sys.path for that module
    size: int = 0
    load_seconds: float = 0.0


class MultiModelApp:
    """One multi-model worker's routes: the same ``handle`` as :class:`InferenceApp`."""

    def __init__(self, spec: WorkerSpec, index: int, settings: MultiModelSettings,
                 shared_module: ModuleType | None, warm_up: WarmUp,
                 fetcher: ModelFetcher) -> None:  # fmt: skip
        self.spec = spec
        self.index = index
        self.settings = settings
        self.shared_module = shared_module
        self.warm_up = warm_up
        self.fetcher = fetcher
        self.cache: ModelCache[LoadedModel] = ModelCache(settings.memory_bytes, _forget)
        self._ping = Response(200, _JSON, b'{"status": "Healthy"}\n')

    @classmethod
    def start(cls, spec: WorkerSpec, index: int, warm_up: WarmUp) -> MultiModelApp:
        """The worker's app before any model: the container's code and the framework loaded."""
        assert spec.multi_model is not None
        settings = MultiModelSettings.from_dict(spec.multi_model)
        shared = handlers.import_user_module(spec)  # SAGEMAKER_SUBMIT_DIRECTORY, if any
        # Imported now so that no model's measured size includes the framework library.
        frameworks.defaults(spec.framework)
        _freeze_heap()
        store = artifacts_from_environment()
        fetcher = ModelFetcher(settings.prefix, Path(settings.models_dir), store)
        return cls(spec, index, settings, shared, warm_up, fetcher)

    def handle(
        self, method: bytes, path: bytes, headers: dict[bytes, bytes], body: bytes
    ) -> Response:
        """The response to one request."""
        return route(method, path, headers, body, self.invoke, self._ping, self._models_route)

    def _models_route(self, method: bytes, path: bytes) -> Response | None:
        if path == b"/models" or path.startswith(b"/models/"):
            return self._manage(method, path)
        return None

    def invoke(self, headers: dict[bytes, bytes], body: bytes) -> Response:
        """Run the target model's handlers on one request, loading the model when needed."""
        raw = headers.get(TARGET_MODEL_HEADER)
        if raw is None:
            return refusal(
                "TargetModel is required: this is a multi-model endpoint; name the model to "
                "invoke (a key below the model's ModelDataUrl prefix)."
            )
        try:
            name = decode_target_model(raw)
        except InvalidTargetModel as e:
            return refusal(str(e))
        loaded = self.cache.get(name)
        loading = Loading(hit=loaded is not None)
        if loaded is None:
            outcome = self._load(name, loading)
            if isinstance(outcome, Response):
                return outcome
            loaded = outcome
        try:
            response = loaded.app.invoke(headers, body)
        finally:
            if not self.settings.cache_enabled:
                with loading.timing("unload"):
                    self.cache.remove(name)
                self._log(f"Unloaded model {name} (ModelCacheSetting is Disabled)")
        return response._replace(headers=(*response.headers, loading.header()))

    # -- loading ----------------------------------------------------------------------------

    def _load(self, name: str, loading: Loading) -> LoadedModel | Response:
        try:
            with loading.timing("download"):
                model_dir, downloaded = self.fetcher.fetch(name)
        except TargetRefused as e:
            self._log(f"Cannot load model {name}: {e.message}")
            return refusal(e.message)
        if downloaded:
            self._log(f"Downloaded model {name} from {self.fetcher.uri(name)}")
        else:
            loading.download = 0  # on disk already: no download to count
        on_disk = _tree_size(model_dir)
        with loading.timing("unload"):
            room_made = self.cache.make_room(on_disk)
        self._evicted(room_made)
        before = _rss()
        try:
            with loading.timing("load"):
                loaded = self._build(name, model_dir)
        except ClientError as e:
            self._log(f"Failed to load model {name}: {e.message}")
            return error(500, f"Failed to load model {name}: {e.message}")
        except Exception:
            text = traceback.format_exc()
            self._log(f"Failed to load model {name}:\n{text}")
            return error(500, f"Failed to load model {name}:\n{text}")
        loaded.load_seconds = loading.load / 1e6
        after = _rss()
        grown = after - before if before is not None and after is not None else 0
        loaded.size = max(grown, on_disk)
        with loading.timing("unload"):
            evicted = self.cache.put(name, loaded, loaded.size)
        if not room_made and not evicted:
            loading.unload = 0  # nothing was unloaded: only the bookkeeping was timed
        _freeze_heap()
        self._log(
            f"Loaded model {name} in {loaded.load_seconds:.3f} s ({_mb(loaded.size)} MB); "
            f"{len(self.cache)} model(s) in memory, {_mb(self.cache.total)} of "
            f"{_mb(self.cache.bound)} MB"
        )
        self._evicted(evicted)
        return loaded

    def _build(self, name: str, model_dir: Path) -> LoadedModel:
        """Resolve the model's handlers, call model_fn, warm up; ClientError on failure."""
        module, module_name, code_dir = self._module_for(name, model_dir)
        try:
            resolved = handlers.resolve(module, self.spec.framework, self.spec.default_accept)
            code_dirs = [code_dir] if code_dir else self.spec.code_dirs
            spec = dataclasses.replace(self.spec, model_dir=str(model_dir), code_dirs=code_dirs)
            context = Context(str(model_dir), self.index)
            model = handlers.load_model(resolved, str(model_dir), context)
            self.warm_up(resolved, model, spec, context)
            return LoadedModel(InferenceApp(resolved, model, spec, context), module_name, code_dir)
        except BaseException:
            _forget_module(module_name, code_dir)
            raise

    def _module_for(
        self, name: str, model_dir: Path
    ) -> tuple[ModuleType | None, str | None, str | None]:
        """The model's own handler module (and its sys.modules name and code dir), else the
        container's module shared by every model."""
        code_dir = model_dir / "code"
        script = code_dir / self.settings.program
        if not script.is_file():
            return self.shared_module, None, None
        if (code_dir / "requirements.txt").exists():
            self._log(f"Model {name}: code/requirements.txt is not installed in multi-model "
                      "mode; put shared requirements in the container's code")
        module_name = _MODULE_PREFIX + local_name(name).replace(".", "_").replace("-", "_")
        module = _import_script(module_name, script, name, self.settings.models_dir)
        return module, module_name, str(code_dir)

    # -- the management routes --------------------------------------------------------------

    def _manage(self, method: bytes, path: bytes) -> Response:
        if path == b"/models":
            if method != b"GET":
                return error(405, "Use GET /models")
            models = [self._describe(name) for name in reversed(self.cache.sizes())]
            return _json({"models": models})
        name = unquote(path[len(b"/models/"):].decode("latin-1"))
        if name not in self.cache:
            return error(404, f"Model {name} is not loaded in this worker")
        if method == b"GET":
            return _json(self._describe(name))
        if method == b"DELETE":
            self.cache.remove(name)
            self._log(f"Unloaded model {name} (DELETE /models)")
            return _json({"status": f"Model {name} unloaded"})
        return error(405, "Use GET or DELETE /models/{name}")

    def _describe(self, name: str) -> dict[str, Any]:
        loaded = self.cache.peek(name)
        assert loaded is not None
        return {"modelName": name, "modelUrl": self.fetcher.uri(name),
                "memoryBytes": loaded.size, "loadSeconds": round(loaded.load_seconds, 6)}

    def _evicted(self, names: list[str]) -> None:
        for name in names:
            self._log(f"Evicted model {name} (least recently used) to stay within "
                      f"{_mb(self.cache.bound)} MB")

    def _log(self, message: str) -> None:
        print(f"Worker {self.index}: {message}", file=sys.stderr)


def refusal(message: str) -> Response:
    """A 400 the router answers as ``ValidationError`` (the caller's mistake, not the model's)."""
    return Response(400, b"text/plain", message.encode("utf-8", "replace"),
                    ((ERROR_CODE_HEADER, VALIDATION_ERROR),))


def _import_script(module_name: str, script: Path, name: str, models_dir: str) -> ModuleType:
    """Import a model's handler script under its own module name (models' scripts share a
    file name); its code dir stays on sys.path while the model is loaded, for its imports."""
    code_dir = str(script.parent)
    # Another model's helper modules of the same name (a utils.py of its own) would answer
    # this script's imports from sys.modules: let them go (their model keeps its references).
    _drop_modules_under(models_dir, keep_handlers=True)
    sys.path.insert(0, code_dir)
    spec = importlib.util.spec_from_file_location(module_name, script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        _forget_module(module_name, code_dir)
        raise ClientError(
            f"Cannot import code/{script.name} of model {name}: {type(e).__name__}: {e}"
        ) from e
    return module


def _forget(name: str, loaded: LoadedModel) -> None:
    """What unloading a model undoes; the collection returns its memory before the next load
    is measured."""
    _forget_module(loaded.module_name, loaded.code_dir)
    gc.unfreeze()  # the model's objects were frozen with the rest: let its cycles be collected
    _freeze_heap()


def _freeze_heap() -> None:
    # As for a single model (see worker.load_app): the loaded models stay out of the
    # collections that requests trigger; an eviction unfreezes to free one.
    gc.collect()
    gc.freeze()


def _forget_module(module_name: str | None, code_dir: str | None) -> None:
    if module_name is not None:
        sys.modules.pop(module_name, None)
    if code_dir is not None:
        _drop_modules_under(code_dir, keep_handlers=False)
        if code_dir in sys.path:
            sys.path.remove(code_dir)


def _drop_modules_under(directory: str, keep_handlers: bool) -> None:
    """Remove from sys.modules what was imported from files below ``directory``."""
    root = directory.rstrip(os.sep) + os.sep
    for key, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if path.startswith(root) and not (keep_handlers and key.startswith(_MODULE_PREFIX)):
            del sys.modules[key]


def _rss() -> int | None:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except (ImportError, OSError):
        return None


def _tree_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def _mb(size: int) -> str:
    return f"{size / 2**20:.3g}"


def _json(value: Any) -> Response:
    return Response(200, _JSON, json.dumps(value).encode())
