"""EventDelivery without a broker: nothing to send needs none; a broker nobody answers for
is BrokerUnavailable within the timeout, for every caller waiting."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from sources.delivery import BrokerUnavailable, EventDelivery
from tests.factories import sample_event


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_nothing_to_deliver_needs_no_broker() -> None:
    async with EventDelivery({"bootstrap_servers": "127.0.0.1:1"}, topic="t") as delivery:
        await delivery.deliver([])
    assert delivery.delivered == 0


async def test_without_a_broker_every_waiting_caller_hears_unavailable_in_time() -> None:
    delivery = EventDelivery(
        {"bootstrap_servers": f"127.0.0.1:{closed_port()}"}, topic="t", timeout_s=2
    )
    started = time.monotonic()
    try:
        outcomes = await asyncio.gather(
            *(delivery.deliver([sample_event(subject=f"u-{n}")]) for n in range(5)),
            return_exceptions=True,
        )
    finally:
        await delivery.stop()
    assert all(isinstance(outcome, BrokerUnavailable) for outcome in outcomes), outcomes
    assert time.monotonic() - started < 2 + 1
    assert delivery.delivered == 0


def test_a_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        EventDelivery({}, topic="t", timeout_s=0)
