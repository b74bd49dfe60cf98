"""Data capture: sampled requests and responses as JSON lines, in the layout Model Monitor reads.

Each captured invocation is one line::

    {"captureData": {"endpointInput": {...}, "endpointOutput": {...}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "...", "inferenceTime": "...Z"},
     "eventVersion": "0"}

Lines are buffered in memory and written every ``flush_seconds`` (and on shutdown) to
``{DestinationS3Uri}/{endpoint}/{variant}/{yyyy}/{mm}/{dd}/{hh}/{mm-ss-SSS}-{uuid}.jsonl``,
one file per hour of inference time, as SageMaker does.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import random
import threading
import uuid
from collections import defaultdict
from typing import Any

from modelyard.artifacts import Artifacts, join_uri

log = logging.getLogger(__name__)

_CSV_TYPES = ("text/csv",)
_JSON_TYPES = ("application/json", "application/jsonlines")


def capture_status(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """DescribeEndpoint's DataCaptureConfig summary of an endpoint config's DataCaptureConfig."""
    if not config:
        return None
    enabled = bool(config.get("EnableCapture", True))
    return {
        "EnableCapture": enabled,
        "CaptureStatus": "Started" if enabled else "Stopped",
        "CurrentSamplingPercentage": int(config["InitialSamplingPercentage"]),
        "DestinationS3Uri": config["DestinationS3Uri"],
    }


class Capturer:
    """Samples invocations and writes them out in batches. Thread-safe."""

    def __init__(self, artifacts: Artifacts, flush_seconds: float | None = None) -> None:
        self.artifacts = artifacts
        self.flush_seconds = float(flush_seconds if flush_seconds is not None
                                   else os.environ.get("MODELYARD_CAPTURE_FLUSH_SECONDS", "60"))
        self._pending: dict[tuple[str, str, str], list[tuple[dt.datetime, str]]] = defaultdict(list)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modelyard-capture", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self.flush()

    def record(self, endpoint: str, variant: str, config: dict[str, Any], request: tuple[str, bytes],
               response: tuple[str, bytes], inference_id: str | None) -> None:
        """Capture one successful invocation if the sampling draw says so."""
        if not config.get("EnableCapture", True):
            return
        if random.random() * 100 >= float(config["InitialSamplingPercentage"]):
            return
        modes = {o["CaptureMode"] for o in config.get("CaptureOptions", [])} or {"InputAndOutput"}
        data: dict[str, Any] = {}
        if modes & {"Input", "InputAndOutput"}:
            data["endpointInput"] = _payload(config, "INPUT", *request)
        if modes & {"Output", "InputAndOutput"}:
            data["endpointOutput"] = _payload(config, "OUTPUT", *response)
        now = dt.datetime.now(dt.UTC)
        metadata = {"eventId": str(uuid.uuid4()), "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}
        if inference_id:
            metadata["inferenceId"] = inference_id
        line = json.dumps({"captureData": data, "eventMetadata": metadata, "eventVersion": "0"})
        with self._lock:
            self._pending[(config["DestinationS3Uri"], endpoint, variant)].append((now, line))

    def flush(self) -> int:
        """Write everything buffered; the number of files written."""
        with self._lock:
            pending, self._pending = self._pending, defaultdict(list)
        written = 0
        for (destination, endpoint, variant), lines in pending.items():
            by_hour: dict[str, list[tuple[dt.datetime, str]]] = defaultdict(list)
            for when, line in lines:
                by_hour[when.strftime("%Y/%m/%d/%H")].append((when, line))
            for hour, items in by_hour.items():
                first = items[0][0]
                name = f"{first.strftime('%M-%S-')}{first.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
                uri = join_uri(destination, endpoint, variant, hour, name)
                try:
                    self.artifacts.put_bytes(uri, "".join(line + "\n" for _, line in items).encode())
                    written += 1
                except Exception:  # a broken destination must not take the data plane down
                    log.exception("writing captured data to %s failed", uri)
        return written

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()


def _payload(config: dict[str, Any], mode: str, content_type: str, body: bytes) -> dict[str, Any]:
    headers = config.get("CaptureContentTypeHeader", {})
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in _CSV_TYPES or kind in headers.get("CsvContentTypes", []):
        encoding, data = "CSV", body.decode("utf-8", "replace")
    elif kind in _JSON_TYPES or kind in headers.get("JsonContentTypes", []):
        encoding, data = "JSON", body.decode("utf-8", "replace")
    else:
        encoding, data = "BASE64", base64.b64encode(body).decode("ascii")
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}
