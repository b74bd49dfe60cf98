"""Errors raised by modelyard, each with a stable wire code and an HTTP status.

The tree::

    ModelyardError                      root; ``code`` and ``status`` go on the wire
    ├── ValidationError                 ValidationException, 400: the request is wrong
    │   └── LegacyNotFound              ValidationException, 400: a training job, model,
    │                                   endpoint ... that does not exist (SageMaker's own
    │                                   "Could not find ..." / "Requested resource not found.")
    ├── ResourceNotFound                ResourceNotFound, 400: a newer resource kind is missing
    ├── ResourceInUse                   ResourceInUse, 400: the name is taken or the resource busy
    ├── ResourceLimitExceeded           ResourceLimitExceeded, 400: a quota or capacity bound
    ├── ConflictException               ConflictException, 400: a concurrent modification
    ├── AuthenticationError             (code varies), 403: missing or bad signature
    ├── UnknownOperation                UnknownOperationException, 400
    ├── StoreError                      InternalFailure, 500: the metadata store failed
    │   └── StaleRecord                 ConflictException, 400: optimistic update lost the race
    ├── ArtifactError                   ValidationException, 400: a URI or object cannot be used
    │   └── ArtifactNotFound            ValidationException, 400: no object at that URI
    ├── MissingExtra                    ValidationException, 400: an optional package is absent
    ├── ModelError                      ModelError, 424: the model container answered non-2xx
    └── ServiceUnavailable              ServiceUnavailable, 503: no instance could answer

Clients map codes back through :data:`ERROR_CLASSES`; they never import a server class by name.
"""

from __future__ import annotations


class ModelyardError(Exception):
    """Root of every error modelyard raises on purpose."""

    code = "InternalFailure"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ValidationError(ModelyardError):
    """The request breaks a rule of the API: a pattern, a range, a combination of fields."""

    code = "ValidationException"
    status = 400


class LegacyNotFound(ValidationError):
    """A resource of a kind SageMaker reports missing with ``ValidationException``.

    ``message`` defaults to the SDK-parsed form ``Could not find <kind> "<arn>".``.
    """

    def __init__(self, kind: str, arn: str, message: str | None = None) -> None:
        super().__init__(message or f'Could not find {kind} "{arn}".')
        self.kind = kind
        self.arn = arn


class ResourceNotFound(ModelyardError):
    """A resource of a newer kind (pipeline, feature group, ...) does not exist."""

    code = "ResourceNotFound"
    status = 400

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name} does not exist.")
        self.kind = kind
        self.name = name


class ResourceInUse(ModelyardError):
    """The name is already taken, or the resource cannot change in its current state."""

    code = "ResourceInUse"
    status = 400


class ResourceLimitExceeded(ModelyardError):
    """A quota or a capacity bound would be exceeded."""

    code = "ResourceLimitExceeded"
    status = 400


class ConflictException(ModelyardError):
    """Two writers changed the same resource at once."""

    code = "ConflictException"
    status = 400


class AuthenticationError(ModelyardError):
    """The request is unsigned or its SigV4 signature does not verify."""

    status = 403

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UnknownOperation(ModelyardError):
    """The ``X-Amz-Target`` names an operation modelyard does not serve."""

    code = "UnknownOperationException"
    status = 400

    def __init__(self, target: str) -> None:
        super().__init__(f"Operation {target} is not supported by modelyard.")
        self.target = target


class StoreError(ModelyardError):
    """The metadata store failed for a reason that is not the caller's fault."""

    code = "InternalFailure"
    status = 500


class StaleRecord(StoreError):
    """An update carried a version that is no longer current (someone else wrote first)."""

    code = "ConflictException"
    status = 400

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name} was modified concurrently; retry the request.")
        self.kind = kind
        self.name = name


class ArtifactError(ModelyardError):
    """A URI is malformed or unreachable, or an archive is unsafe to extract."""

    code = "ValidationException"
    status = 400


class ArtifactNotFound(ArtifactError):
    """Nothing is stored at a URI that must exist."""

    def __init__(self, uri: str) -> None:
        super().__init__(f"No object or prefix found at {uri}.")
        self.uri = uri


class MissingExtra(ValidationError):
    """An optional dependency is needed; the message names the extra to install."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"{module} is not installed; install it with: pip install 'modelyard[{extra}]'"
        )
        self.module = module
        self.extra = extra


class ModelError(ModelyardError):
    """The model container answered an invocation with a non-2xx status (or timed out).

    ``original_status`` and ``original_message`` are the container's; clients read them as
    ``OriginalStatusCode`` and ``OriginalMessage``.
    """

    code = "ModelError"
    status = 424

    def __init__(self, variant: str, original_status: int, original_message: str, account: str) -> None:
        side = "client" if original_status < 500 else "server"
        super().__init__(
            f"Received {side} error ({original_status}) from {variant} with message "
            f'"{original_message}". See the endpoint\'s logs in account {account} for more information.'
        )
        self.original_status = original_status
        self.original_message = original_message


class ServiceUnavailable(ModelyardError):
    """No instance of the endpoint could answer (it crashed mid-request, or is gone)."""

    code = "ServiceUnavailable"
    status = 503


ERROR_CLASSES: dict[str, type[ModelyardError]] = {
    "ValidationException": ValidationError,
    "ResourceNotFound": ResourceNotFound,
    "ResourceInUse": ResourceInUse,
    "ResourceLimitExceeded": ResourceLimitExceeded,
    "ConflictException": ConflictException,
    "UnknownOperationException": UnknownOperation,
    "InternalFailure": StoreError,
}
