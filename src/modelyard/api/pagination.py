"""Opaque ``NextToken`` pagination for List* operations.

A token is base64url of a small JSON document holding the offset of the next page and a hash of
the request's filters. A token presented with different filters (another query, or a tampered
token) is rejected with ``ValidationException: Invalid pagination token`` instead of silently
returning an unrelated page. Typical use in a handler::

    offset, limit = page_window(params)
    rows = store.list(..., offset=offset, limit=limit + 1)   # one extra row: is there more?
    token = next_token(params, offset + limit) if len(rows) > limit else None
    return {"TrainingJobSummaries": rows[:limit], "NextToken": token}  # shaping drops None

Clients rely on the last page carrying no ``NextToken`` at all (see the Logs note in the
contracts), so a token is made only when more results remain.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from modelyard.core.errors import ValidationError

__all__ = ["decode_token", "next_token", "page_window"]

_INVALID = "Invalid pagination token"
# AWS documents NextToken as at most 8192 characters; ours are far shorter, so anything longer
# is not ours and is not worth decoding.
_MAX_TOKEN_LENGTH = 8192


def page_window(
    params: Mapping[str, Any],
    default_max: int = 10,
    max_max: int = 100,
    token_key: str = "NextToken",
    limit_key: str = "MaxResults",
) -> tuple[int, int]:
    """``(offset, limit)`` of the page a List request asks for.

    ``limit`` is ``params[limit_key]`` (checked to lie in 1..``max_max``) or ``default_max``;
    ``offset`` comes from ``params[token_key]`` (0 without one). CloudWatch Logs spells the keys
    ``nextToken``/``limit``.
    """
    limit = params.get(limit_key)
    if limit is None:
        limit = default_max
    elif isinstance(limit, bool) or not isinstance(limit, int):
        raise ValidationError(_one_error(limit, limit_key, "Member must be an integer"))
    elif limit < 1:
        raise ValidationError(
            _one_error(limit, limit_key, "Member must have value greater than or equal to 1")
        )
    elif limit > max_max:
        raise ValidationError(
            _one_error(limit, limit_key, f"Member must have value less than or equal to {max_max}")
        )
    token = params.get(token_key)
    offset = 0 if token is None else decode_token(token, params, token_key, limit_key)
    return offset, limit


def next_token(
    params: Mapping[str, Any],
    offset: int,
    token_key: str = "NextToken",
    limit_key: str = "MaxResults",
) -> str:
    """A token resuming at ``offset`` that only a request with the same filters will accept.

    Call it only when more results remain: the last page must carry no token at all.
    """
    document = {"o": offset, "f": _filter_hash(params, token_key, limit_key)}
    raw = json.dumps(document, separators=(",", ":")).encode("ascii")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_token(
    token: Any,
    params: Mapping[str, Any],
    token_key: str = "NextToken",
    limit_key: str = "MaxResults",
) -> int:
    """The offset inside ``token``; :class:`ValidationError` if it is malformed or foreign."""
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_LENGTH:
        raise ValidationError(_INVALID)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        document = json.loads(raw)
        offset, filters = document["o"], document["f"]
    except (binascii.Error, ValueError, TypeError, KeyError) as e:
        raise ValidationError(_INVALID) from e
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationError(_INVALID)
    if filters != _filter_hash(params, token_key, limit_key):
        raise ValidationError(_INVALID)
    return offset


def _filter_hash(params: Mapping[str, Any], token_key: str, limit_key: str) -> str:
    # Page size may change between pages (boto3 paginators allow it); everything else may not.
    filters = {k: v for k, v in params.items() if k not in (token_key, limit_key) and v is not None}
    canonical = json.dumps(filters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _one_error(value: Any, key: str, constraint: str) -> str:
    path = key[:1].lower() + key[1:]
    return (
        f"1 validation error detected: Value '{value}' at '{path}' "
        f"failed to satisfy constraint: {constraint}"
    )
