"""Artifact URIs and object keys: parsing, joining and the key rules every store enforces.

Three spellings are accepted wherever SageMaker takes an S3 URI:

- ``s3://bucket/key`` (the key is taken literally: S3 keys are not percent-encoded in URIs),
- ``file:///abs/path`` (percent-decoded, as :meth:`pathlib.Path.as_uri` encodes),
- a plain local path, absolute or relative to the current directory.

>>> parse_uri("s3://bucket/data/train/")
ParsedUri(scheme='s3', bucket='bucket', key='data/train/')
>>> join_uri("s3://bucket/jobs/", "/j1/", "output")
's3://bucket/jobs/j1/output'
"""

from __future__ import annotations

import dataclasses
import os
import urllib.parse

from modelyard.core.errors import ArtifactError

S3 = "s3"
FILE = "file"


@dataclasses.dataclass(frozen=True)
class ParsedUri:
    """One artifact URI taken apart.

    ``scheme`` is ``s3`` or ``file``. For ``s3`` the key is relative to ``bucket``; for ``file``
    ``bucket`` is empty and ``key`` is an absolute, normalised path. A trailing ``/`` (a
    "directory" prefix) is kept, because prefix matching depends on it.
    """

    scheme: str
    bucket: str
    key: str


def parse_uri(uri: str) -> ParsedUri:
    """Split ``uri`` into scheme, bucket and key; raise ArtifactError for what cannot be stored."""
    if not uri:
        raise ArtifactError("An artifact URI must not be empty.")
    if "\x00" in uri:
        raise ArtifactError(f"Artifact URI {uri!r} contains a NUL character.")
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return ParsedUri(FILE, "", _absolute(uri))
    scheme = scheme.lower()
    if scheme == S3:
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise ArtifactError(f"S3 URI {uri} names no bucket.")
        return ParsedUri(S3, bucket, key)
    if scheme == FILE:
        host, slash, path = rest.partition("/")
        # RFC 8089 allows an empty host or "localhost"; any other host is a remote file.
        if host not in ("", "localhost") or not slash:
            raise ArtifactError(f"File URI {uri} must be file:///absolute/path.")
        return ParsedUri(FILE, "", _absolute("/" + urllib.parse.unquote(path)))
    raise ArtifactError(
        f"Unsupported artifact URI scheme {scheme}:// in {uri}; use s3:// or file://."
    )


def _absolute(path: str) -> str:
    """An absolute, normalised local path that keeps a trailing ``/`` when one was given."""
    out = os.path.abspath(os.path.expanduser(path))
    if path.endswith("/") and not out.endswith("/"):
        out += "/"
    return out


def join_uri(base: str, *parts: str) -> str:
    """Join ``parts`` under ``base`` with exactly one ``/`` between them and none at the end.

    Parts are literal path segments (a ``/`` inside a part separates segments); empty parts are
    skipped. Under a ``file://`` base the parts are percent-encoded so that the result parses
    back to the same path.

    >>> join_uri("file:///tmp/data/", "x y")
    'file:///tmp/data/x%20y'
    """
    scheme, sep, path = base.partition("://")
    head = f"{scheme}://" if sep else ""
    if not sep:
        path = base
    segments = [s for part in parts for s in part.split("/") if s]
    if head.lower() == "file://":
        segments = [urllib.parse.quote(s, safe="") for s in segments]
    stem = path.rstrip("/")
    rooted = path.startswith("/")
    if not segments:
        return head + (stem or ("/" if rooted else ""))
    if not stem and not rooted:
        # "s3://" alone cannot take parts; a bare relative base ("") joins to a relative path.
        if sep:
            raise ArtifactError(f"Cannot join parts under {base!r}: it names no bucket or path.")
        return "/".join(segments)
    return head + stem + "/" + "/".join(segments)


def check_key(key: str) -> str:
    """Return ``key`` when it is a valid object key, else raise ArtifactError.

    A key is relative (no leading ``/``), has no ``.`` or ``..`` segments and no NUL. The same
    rule holds for every store, so a key that works on a laptop also works on S3 and the other
    way round.
    """
    if not key:
        raise ArtifactError("An object key must not be empty.")
    if key.startswith("/"):
        raise ArtifactError(f"Object key {key!r} must not start with '/'.")
    if "\x00" in key:
        raise ArtifactError(f"Object key {key!r} contains a NUL character.")
    if any(segment in (".", "..") for segment in key.split("/")):
        raise ArtifactError(f"Object key {key!r} must not contain '.' or '..' segments.")
    return key


def check_prefix(prefix: str) -> str:
    """Like :func:`check_key` but an empty prefix (everything) is allowed."""
    return check_key(prefix) if prefix else prefix
