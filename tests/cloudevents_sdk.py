"""Events made by the official CloudEvents SDK (``cloudevents`` on PyPI), not by our code:
what a service in the wild sends. Attributes come from one of our sample events (so the
contract's required ones are right), plus extension attributes of the sender's own."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas import Event, encode

pytest.importorskip("cloudevents", reason="the ingest extra: pip install 'factorstream[ingest]'")

from cloudevents.core.bindings import http as ce_http  # noqa: E402
from cloudevents.core.bindings import kafka as ce_kafka  # noqa: E402
from cloudevents.core.formats.json import JSONFormat  # noqa: E402
from cloudevents.core.v1.event import CloudEvent  # noqa: E402

FORMAT = JSONFormat()
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"


def sdk_event(event: Event, **extensions: Any) -> CloudEvent:
    """``event`` rebuilt by the SDK, with ``extensions`` added."""
    document = json.loads(encode(event))
    data = document.pop("data")
    document["time"] = event.time  # the SDK takes a datetime
    return CloudEvent(attributes={**document, **extensions}, data=data)


def structured(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    message = ce_http.to_structured(event, FORMAT)
    return dict(message.headers), message.body


def binary(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    message = ce_http.to_binary(event, FORMAT)
    return dict(message.headers), message.body


def batch(events: list[CloudEvent]) -> tuple[dict[str, str], bytes]:
    """The batch mode of the HTTP binding: a JSON array of structured events (the SDK
    writes each; it has no batch writer of its own)."""
    body = b"[" + b",".join(FORMAT.write(event) for event in events) + b"]"
    return {"content-type": BATCH_CONTENT_TYPE}, body


def kafka_binary(event: CloudEvent) -> tuple[list[tuple[str, bytes]], bytes]:
    message = ce_kafka.to_binary(event, FORMAT)
    return list(message.headers.items()), message.value


def kafka_structured(event: CloudEvent) -> tuple[list[tuple[str, bytes]], bytes]:
    message = ce_kafka.to_structured(event, FORMAT)
    return list(message.headers.items()), message.value
