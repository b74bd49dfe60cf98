"""TargetModel names of a multi-model endpoint: which are allowed and where each one lives.

A TargetModel (``X-Amzn-SageMaker-Target-Model``) is an object key relative to the model's
``ModelDataUrl`` prefix, e.g. ``model-a.tar.gz`` or ``team/model-b.tar.gz``. The router checks
it before forwarding and the model server checks it again before it builds a URI or a path
from it, so neither relies on the other:

>>> check_target_model("team/model-b.tar.gz")
'team/model-b.tar.gz'
>>> check_target_model("../other/model.tar.gz")  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
InvalidTargetModel: TargetModel '../other/model.tar.gz' must not contain '.', '..' or ...

The model server answers refusals the caller caused (no TargetModel, an invalid one, one with
no object under the prefix) with a 400 carrying :data:`ERROR_CODE_HEADER`; the router turns
exactly those into a ``ValidationError`` instead of a ``ModelError``.
"""

from __future__ import annotations

import hashlib
import re

#: the request header that names the model (botocore's ``TargetModel``)
TARGET_MODEL_HEADER = b"x-amzn-sagemaker-target-model"
#: set by the model server on errors the caller caused; the value is the runtime error code
ERROR_CODE_HEADER = b"x-modelyard-error-code"
VALIDATION_ERROR = b"ValidationError"

#: botocore's maximum length of TargetModel
MAX_LENGTH = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_READABLE_PART = 80


class InvalidTargetModel(ValueError):
    """A TargetModel that cannot name an object under the prefix (the message says why)."""


def check_target_model(name: str) -> str:
    """``name`` when it is a key below the prefix, else InvalidTargetModel.

    Refused: empty or longer than 1024 characters, control characters, a leading ``/``
    (an absolute key), empty, ``.`` or ``..`` segments (nothing may climb out of the prefix).
    """
    if not name or len(name) > MAX_LENGTH:
        raise InvalidTargetModel(
            f"TargetModel must be 1 to {MAX_LENGTH} characters long; got {len(name)}."
        )
    if _CONTROL.search(name):
        raise InvalidTargetModel(f"TargetModel {name!r} contains control characters.")
    if name.startswith("/"):
        raise InvalidTargetModel(
            f"TargetModel {name!r} must be relative to the model's ModelDataUrl prefix, "
            "not start with '/'."
        )
    if any(segment in ("", ".", "..") for segment in name.split("/")):
        raise InvalidTargetModel(
            f"TargetModel {name!r} must not contain '.', '..' or empty path segments: "
            "it names an object under the model's ModelDataUrl prefix."
        )
    return name


def decode_target_model(raw: bytes) -> str:
    """The header's value as a checked name (UTF-8, as botocore sends it)."""
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidTargetModel("TargetModel is not valid UTF-8.") from None
    return check_target_model(name)


def local_name(name: str) -> str:
    """A file-system-safe, collision-free directory name for a checked TargetModel.

    The readable part keeps letters, digits, ``.``, ``_`` and ``-``; a hash of the whole name
    tells apart names that differ only in the replaced characters (``a/b`` and ``a_b``).

    >>> local_name("team/model-b.tar.gz")
    'team_model-b.tar.gz-33f90c6c2179'
    """
    readable = _UNSAFE_CHARS.sub("_", name)[:_READABLE_PART]
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:12]
    return f"{readable}-{digest}"
