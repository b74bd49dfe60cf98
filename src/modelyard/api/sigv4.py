"""Server-side verification of AWS Signature Version 4.

The expected signature is computed with botocore's own :class:`~botocore.auth.SigV4Auth`, the
code that signed the request on the client, so canonicalisation quirks (double-encoded paths,
header whitespace folding, query ordering) agree by construction rather than by re-implementation.

Usage from an ASGI handler::

    principal = verify_request(
        method=scope["method"],
        path=scope["raw_path"].decode(),  # as sent, still percent-encoded
        query=scope["query_string"].decode(),
        headers=request.headers,
        body=await request.body(),
        lookup_secret=lookup_secret(home),
    )

Errors are :class:`~modelyard.core.errors.AuthenticationError` (403) carrying the code AWS uses:
``MissingAuthenticationTokenException``, ``IncompleteSignatureException``,
``UnrecognizedClientException`` or ``InvalidSignatureException``.
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from modelyard.core.errors import AuthenticationError

__all__ = ["MAX_CLOCK_SKEW_S", "Principal", "verify_request"]

ALGORITHM = "AWS4-HMAC-SHA256"
#: How far the request's clock may be from ours, as on AWS.
MAX_CLOCK_SKEW_S = 15 * 60
# Payload-hash markers a client may put in X-Amz-Content-Sha256 instead of a hex digest.
_UNHASHED_PAYLOADS = ("UNSIGNED-PAYLOAD", "STREAMING-")

# A path whose canonical form is itself (no percent-encoding to redo).
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9/_.~-]*")
_TIMESTAMP = re.compile(r"\d{8}T\d{6}Z")

_MISSING_TOKEN = "Missing Authentication Token"
_UNKNOWN_KEY = "The security token included in the request is invalid."
_BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


@dataclass(frozen=True)
class Principal:
    """Who signed a request, and for which region and service (from the credential scope)."""

    access_key_id: str
    region: str
    service: str


@dataclass(frozen=True)
class _Authorization:
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def verify_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    lookup_secret: Callable[[str], str | None],
    now: float | None = None,
) -> Principal:
    """Check the SigV4 ``Authorization`` header of a request and return who signed it.

    ``path`` is the request path as sent (percent-encoded), ``query`` the raw query string
    without ``?``. ``lookup_secret`` maps an access key id to its secret, or None if unknown.
    ``now`` (epoch seconds) defaults to the current time.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    auth = _parse_authorization(lowered.get("authorization"))
    timestamp = _request_timestamp(lowered)
    _check_clock(timestamp, time.time() if now is None else now)
    secret = lookup_secret(auth.access_key_id)
    if secret is None:
        raise AuthenticationError("UnrecognizedClientException", _UNKNOWN_KEY)
    _check_content_hash(lowered, body)
    quick = _plain_signature(method, path, query, lowered, body, auth, timestamp, secret)
    if quick is None or not hmac.compare_digest(quick, auth.signature):
        expected = _expected_signature(method, path, query, lowered, body, auth, timestamp, secret)
        if not hmac.compare_digest(expected, auth.signature):
            raise AuthenticationError("InvalidSignatureException", _BAD_SIGNATURE)
    return Principal(auth.access_key_id, auth.region, auth.service)


def _plain_signature(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    auth: _Authorization,
    timestamp: str,
    secret: str,
) -> str | None:
    """The signature of a request with nothing to canonicalise (no query, a path of unreserved
    characters, every signed header present), computed directly: the hot path of
    InvokeEndpoint. None for any other request.

    Only a match is trusted: a request this gets wrong falls through to botocore's signer, so a
    difference here can cost time, never let a bad signature pass.
    """
    if query or not _PLAIN_PATH.fullmatch(path) or not all(h in headers for h in auth.signed_headers):
        return None
    payload = headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    lines = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in sorted(auth.signed_headers))
    canonical = f"{method.upper()}\n{path}\n\n{lines}\n{';'.join(sorted(auth.signed_headers))}\n{payload}"
    scope = f"{auth.date}/{auth.region}/{auth.service}/aws4_request"
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    to_sign = f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"
    key = _signing_key(secret, auth.date, auth.region, auth.service)
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=64)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


class _ReceivedRequestSigner(SigV4Auth):
    """SigV4Auth that signs exactly the headers the client listed in ``SignedHeaders``.

    botocore's signer picks headers itself and leaves out a fixed set (``user-agent``,
    ``expect`` ...); another SDK may sign those, and the server must follow the client's list.
    """

    def __init__(
        self, credentials: Credentials, service: str, region: str, signed: tuple[str, ...]
    ) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        chosen = HTTPHeaders()
        for name in self._signed:
            for value in request.headers.get_all(name) or []:
                chosen[name] = value
        return chosen


def _expected_signature(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    auth: _Authorization,
    timestamp: str,
    secret: str,
) -> str:
    signed_headers = {name: headers[name] for name in auth.signed_headers if name in headers}
    content_hash = headers.get("x-amz-content-sha256")
    if content_hash is not None:
        # botocore's canonical_request takes the payload hash from this header when present.
        signed_headers.setdefault("x-amz-content-sha256", content_hash)
    host = headers.get("host", "localhost")
    request = AWSRequest(
        method=method.upper(),
        url=f"http://{host}{path}",
        data=body,
        headers=signed_headers,
        # Decoded pairs are re-encoded by botocore the canonical way, whatever encoding the
        # client chose on the wire (e.g. an unencoded "/" or "+" for a space).
        params=parse_qsl(query, keep_blank_values=True),
    )
    request.context["timestamp"] = timestamp
    credentials = Credentials(auth.access_key_id, secret)
    signer = _ReceivedRequestSigner(credentials, auth.service, auth.region, auth.signed_headers)
    canonical = signer.canonical_request(request)
    string_to_sign = signer.string_to_sign(request, canonical)
    return str(signer.signature(string_to_sign, request))


def _parse_authorization(header: str | None) -> _Authorization:
    if not header:
        raise AuthenticationError("MissingAuthenticationTokenException", _MISSING_TOKEN)
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AuthenticationError(
            "IncompleteSignatureException", f"Unsupported authorization algorithm {algorithm!r}."
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields[key] = value.strip()
    for required in ("Credential", "SignedHeaders", "Signature"):
        if required not in fields:
            raise AuthenticationError(
                "IncompleteSignatureException",
                f"Authorization header requires '{required}' parameter. "
                f"Authorization={header}",
            )
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise AuthenticationError(
            "IncompleteSignatureException",
            "Credential should be scoped to a valid region, service and aws4_request. "
            f"Credential={fields['Credential']}",
        )
    key, date, region, service, _ = scope
    signed = tuple(name.strip().lower() for name in fields["SignedHeaders"].split(";") if name)
    return _Authorization(key, date, region, service, signed, fields["Signature"])


def _request_timestamp(headers: Mapping[str, str]) -> str:
    """The SigV4 timestamp (``20240101T000000Z``) from X-Amz-Date, else from Date."""
    amz_date = headers.get("x-amz-date")
    if amz_date:
        try:
            _epoch(amz_date)
        except ValueError as e:
            raise AuthenticationError(
                "IncompleteSignatureException", f"Invalid X-Amz-Date header {amz_date!r}."
            ) from e
        return amz_date
    date = headers.get("date")
    if date:
        try:
            moment = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError) as e:
            raise AuthenticationError(
                "IncompleteSignatureException", f"Invalid Date header {date!r}."
            ) from e
        return moment.astimezone(UTC).strftime(SIGV4_TIMESTAMP)
    raise AuthenticationError(
        "IncompleteSignatureException",
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    )


def _epoch(timestamp: str) -> int:
    """``20240101T000000Z`` as epoch seconds (strptime costs more than the signature check)."""
    if not _TIMESTAMP.fullmatch(timestamp):
        raise ValueError(f"not a SigV4 timestamp: {timestamp!r}")
    t = timestamp
    moment = (int(t[0:4]), int(t[4:6]), int(t[6:8]), int(t[9:11]), int(t[11:13]), int(t[13:15]))
    datetime(*moment)  # rejects a month 13 or a day 32
    return calendar.timegm(moment + (0, 0, 0))


def _check_clock(timestamp: str, now: float) -> None:
    skew = _epoch(timestamp) - now
    if abs(skew) <= MAX_CLOCK_SKEW_S:
        return
    current = datetime.fromtimestamp(now, tz=UTC)
    if skew < 0:
        bound = datetime.fromtimestamp(now - MAX_CLOCK_SKEW_S, tz=UTC)
        message = (
            f"Signature expired: {timestamp} is now earlier than {_fmt(bound)} "
            f"({_fmt(current)} - 15 min.)"
        )
    else:
        bound = datetime.fromtimestamp(now + MAX_CLOCK_SKEW_S, tz=UTC)
        message = (
            f"Signature not yet current: {timestamp} is still later than {_fmt(bound)} "
            f"({_fmt(current)} + 15 min.)"
        )
    raise AuthenticationError("InvalidSignatureException", message)


def _check_content_hash(headers: Mapping[str, str], body: bytes) -> None:
    """A claimed payload hash is signed in place of the body, so it must match the body."""
    claimed = headers.get("x-amz-content-sha256")
    if claimed is None or claimed.startswith(_UNHASHED_PAYLOADS):
        return
    if not hmac.compare_digest(claimed.lower(), hashlib.sha256(body).hexdigest()):
        raise AuthenticationError(
            "InvalidSignatureException",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )


def _fmt(moment: datetime) -> str:
    return moment.strftime(SIGV4_TIMESTAMP)
