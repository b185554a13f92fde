"""``sources.delivery.EventDelivery`` on the real broker: it returns once every event is
acknowledged, raises BrokerUnavailable within its timeout when the broker is gone, and a
call answered "unavailable" is not written later behind its caller's back."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from schemas import Event
from sources.delivery import BrokerUnavailable, EventDelivery
from tests.factories import sample_event
from tests.integration.records import consume
from tests.kafka_broker import KafkaBroker
from verifiers.kafka_connection import aiokafka_config


def events(prefix: str, count: int) -> list[Event]:
    return [
        sample_event(subject=f"{prefix}-{n}", correlationid=f"{prefix}-{n}") for n in range(count)
    ]


async def test_deliver_returns_after_the_acknowledgement_and_fails_fast_without_a_broker(
    kafka_broker: KafkaBroker, topic: str
) -> None:
    before, during, after = events("before", 50), events("during", 50), events("after", 50)
    delivery = EventDelivery(aiokafka_config(kafka_broker.bootstrap), topic=topic, timeout_s=3)
    try:
        await delivery.deliver(before)
        assert delivery.delivered == 50
        with kafka_broker.outage():
            for attempt in range(2):  # a producer with the broker gone, then a new one
                started = time.monotonic()
                with pytest.raises(BrokerUnavailable, match="same ids|cannot reach"):
                    await delivery.deliver(during)
                assert time.monotonic() - started < 3 + 2, attempt
        await asyncio.sleep(6)  # longer than the abandoned producer's grace to flush
        await delivery.deliver(after)
    finally:
        await delivery.stop()

    records = consume(kafka_broker.bootstrap, topic, at_least=100)

    found = Counter(record.event().id for record in records)
    assert found == Counter(e.id for e in [*before, *after])  # nothing of "during" landed
    by_key = {record.key for record in records}
    assert by_key == {e.partitionkey.encode() for e in [*before, *after]}
