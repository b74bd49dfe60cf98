"""Our event-stream frames, decoded by botocore exactly as boto3 decodes them."""

from __future__ import annotations

import botocore.session
import pytest
from botocore.eventstream import EventStream, EventStreamBuffer
from botocore.exceptions import EventStreamError
from botocore.parsers import EventStreamJSONParser

from modelyard.serving import eventstream


class _Raw:
    """What EventStream reads from: an object with ``stream()`` (urllib3's response in boto3)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self) -> list[bytes]:
        return [self.data[i:i + 5] for i in range(0, len(self.data), 5)]


def _events(data: bytes) -> EventStream:
    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    shape = model.operation_model("InvokeEndpointWithResponseStream").output_shape.members["Body"]
    return EventStream(_Raw(data), shape, EventStreamJSONParser(), "InvokeEndpointWithResponseStream")


def test_frames_split_anywhere_decode_to_the_same_messages() -> None:
    data = eventstream.payload_part(b"first") + eventstream.payload_part(b"") + eventstream.payload_part(b"x" * 70000)
    buffer = EventStreamBuffer()
    messages = []
    for start in range(0, len(data), 7):  # arbitrary boundaries, as TCP delivers them
        buffer.add_data(data[start:start + 7])
        messages += list(buffer)
    assert [m.payload for m in messages] == [b"first", b"", b"x" * 70000]
    assert messages[0].headers == {":event-type": "PayloadPart", ":content-type": "application/octet-stream",
                                   ":message-type": "event"}


def test_payload_parts_then_a_model_stream_error() -> None:
    data = eventstream.payload_part(b"a") + eventstream.payload_part(b"b") + eventstream.exception(
        "ModelStreamError", {"Message": "boom", "ErrorCode": "StreamBroken"})
    received = []
    with pytest.raises(EventStreamError) as err:
        for event in _events(data):
            received.append(event)
    assert received == [{"PayloadPart": {"Bytes": b"a"}}, {"PayloadPart": {"Bytes": b"b"}}]
    assert err.value.response["Error"] == {"Code": "ModelStreamError", "Message": "boom"}


def test_a_corrupted_frame_is_refused() -> None:
    frame = bytearray(eventstream.payload_part(b"payload"))
    frame[-6] ^= 0xFF  # flip a payload byte: the message CRC no longer matches
    buffer = EventStreamBuffer()
    buffer.add_data(bytes(frame))
    with pytest.raises(Exception, match="(?i)crc|checksum"):
        list(buffer)
