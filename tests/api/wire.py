"""Test helper: a real botocore client whose requests are answered locally and recorded.

Requests leave the client exactly as on the network (serialised, signed), so tests can check
what the server would receive without starting one.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from botocore.awsrequest import AWSResponse
from botocore.session import get_session

from modelyard.api.sigv4 import Principal, verify_request

ACCESS_KEY = "MYAKTESTTESTTESTTEST"
SECRET_KEY = "s3cr3t/s3cr3t+s3cr3t/s3cr3t+s3cr3t/s3cr3"
REGION = "us-west-2"
ENDPOINT = "http://127.0.0.1:8080"


def lookup(key: str) -> str | None:
    """The ``lookup_secret`` of a server that knows only the test key pair."""
    return SECRET_KEY if key == ACCESS_KEY else None


@dataclass
class Sent:
    """One request as it left the client, split the way a server receives it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def verify(self, **overrides: Any) -> Principal:
        """Run :func:`verify_request` on this request, with any argument replaced."""
        args: dict[str, Any] = {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
            "lookup_secret": lookup,
        }
        args.update(overrides)
        return verify_request(**args)


class RawBody(io.BytesIO):
    """The urllib3-like raw body AWSResponse reads from."""

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield self.getvalue()


@dataclass
class Capture:
    """A ``before-send`` hook: keeps each request and answers 200 with ``reply``."""

    reply: bytes = b"{}"
    sent: list[Sent] = field(default_factory=list)

    def __call__(self, request: Any, **kwargs: Any) -> AWSResponse:
        parts = urlsplit(request.url)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif hasattr(body, "read"):
            body = body.read()
        headers = {
            k.lower(): v.decode() if isinstance(v, bytes) else v
            for k, v in request.headers.items()
        }
        # The HTTP client adds Host from the URL; the signer signed that value.
        headers.setdefault("host", parts.netloc)
        self.sent.append(Sent(request.method, parts.path, parts.query, headers, body))
        headers_out = {"content-length": str(len(self.reply))}
        return AWSResponse(request.url, 200, headers_out, RawBody(self.reply))


def client(service: str, capture: Capture, secret: str = SECRET_KEY) -> Any:
    """A botocore client for ``service`` whose requests ``capture`` answers."""
    made = get_session().create_client(
        service,
        region_name=REGION,
        endpoint_url=ENDPOINT,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=secret,
    )
    made.meta.events.register("before-send", capture)
    return made
