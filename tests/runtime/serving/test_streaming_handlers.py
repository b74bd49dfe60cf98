"""Handlers that return iterators: chunked answers, and the trailer that reports a failure."""

from __future__ import annotations

import socket

from .conftest import archive

GENERATOR = """\
def model_fn(model_dir):
    return None

def transform_fn(model, body, content_type, accept):
    def chunks():
        for i in range(3):
            if body == b"fail" and i == 2:
                raise ValueError("broke after two")
            yield f"part{i}" if i % 2 else f"part{i}".encode()
    return chunks(), "text/plain"
"""


def _raw_invoke(port: int, body: bytes) -> bytes:
    """The whole answer as sent (http.client would hide the chunk framing and trailers)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\n"
                     b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        received = b""
        while data := sock.recv(65536):
            received += data
    return received


def test_an_iterator_is_sent_in_chunks(serve, tmp_path):
    instance = serve(framework="sklearn", model_data_url=archive(tmp_path, {"code/inference.py": GENERATOR}))
    head, _, body = _raw_invoke(instance.port, b"ok").partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
    assert body == b"5\r\npart0\r\n5\r\npart1\r\n5\r\npart2\r\n0\r\n\r\n"
    joined = instance.invoke(b"ok", "application/octet-stream")
    assert (joined.status, joined.body) == (200, b"part0part1part2")


def test_a_failure_mid_stream_ends_with_the_error_trailer(serve, tmp_path):
    instance = serve(framework="sklearn", model_data_url=archive(tmp_path, {"code/inference.py": GENERATOR}))
    head, _, body = _raw_invoke(instance.port, b"fail").partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    chunks, _, trailer = body.partition(b"0\r\nx-modelyard-stream-error: ")
    assert chunks == b"5\r\npart0\r\n5\r\npart1\r\n"
    assert b"ValueError: broke after two%0A" in trailer and trailer.endswith(b"\r\n\r\n")
