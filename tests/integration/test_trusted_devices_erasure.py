"""An erasure reaches the MFA service through the real broker: ``privacy.subject.erased``
on the events topic (as ``factorstream audit erase`` publishes it, signed by the control
key) and the service tailing that topic ends the subject's trusted devices at once (that a
trust made after the erasure survives a replay is tested on the view alone, in
tests/unit/verifiers/service/test_trusted_device_routes.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from factorstream.settings import TopicSettings
from schemas import new_event
from schemas import payloads as p
from schemas.signing import sign_event
from tests.factories import CONTROL_KEY
from tests.integration.test_worker import _produce, topics
from tests.kafka_broker import KafkaBroker
from tests.unit.verifiers.service.conftest import (
    Clock,
    Service,
    service_config,
    start_server,
    stop_server,
)
from tests.unit.verifiers.service.test_trusted_device_routes import LAPTOP, assess, trusted_token
from verifiers.kafka_connection import as_connection
from verifiers.service.api import create_app
from verifiers.service.config import StreamViewConfig
from verifiers.service.server import close_parts, open_parts

__all__ = ["topics"]  # the fixture, re-used from test_worker


@pytest.fixture
def tailing(kafka_broker: KafkaBroker, topics: TopicSettings, tmp_path: Path) -> Iterator[Service]:
    """A service whose stream view tails fresh topics of the real broker."""
    config = service_config(
        tmp_path,
        stream=StreamViewConfig(
            kafka=as_connection(kafka_broker.bootstrap),
            events_topic=topics.events,
            lockouts_topic=topics.lockouts,
            anomalies_topic=topics.anomalies,
        ),
    )
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    parts = open_parts(config, clock=clock)
    assert parts.stream is not None and parts.stream.wait_caught_up(30)
    running = start_server(create_app(parts))
    try:
        yield Service("127.0.0.1", running.port, parts, clock)
    finally:
        stop_server(running)
        close_parts(parts)


def test_an_erasure_on_the_topic_ends_the_subjects_trusted_devices_at_once(
    tailing: Service, kafka_broker: KafkaBroker, topics: TopicSettings
) -> None:
    token = tailing.client("acme")
    device_token = trusted_token(tailing, token)
    assert assess(tailing, token, device_id=LAPTOP, device_token=device_token)["trusted_device"][
        "trusted"
    ]
    erasure = sign_event(
        new_event(
            p.SubjectErased(requested_by="dpo-1", reason="gdpr_art17"),
            source="factorstream://audit",
            tenant="acme",
            subject="alice",
            correlationid="erase-1",
            now=tailing.clock() + timedelta(seconds=1),
        ),
        CONTROL_KEY,
    )

    _produce(kafka_broker.bootstrap, topics.events, [erasure])
    start, reason = time.monotonic(), None
    while reason != "unknown_token":
        assert time.monotonic() - start < 20, "the erasure never reached the trusted devices"
        time.sleep(0.02)
        found = assess(tailing, token, device_id=LAPTOP, device_token=device_token)
        reason = found["trusted_device"]["reason"]
    print(f"erasure acknowledged -> token refused in {time.monotonic() - start:.3f} s")

    assert found["mfa"]["required"]
    listed = tailing.call("GET", "/v1/subjects/alice/trusted-devices", token=token).json
    assert listed == {"devices": []}
