"""Retries: exponential backoff, Retry-After, give-up time, permanent refusals, a stop."""

from __future__ import annotations

import asyncio

import pytest

from alerts.config import GroupingPolicy, RetryPolicy
from alerts.delivery import Stopped, deliver
from alerts.model import Alert, alert_of
from alerts.transports import DELIVERED, SendResult
from tests.unit.alerts.fixtures import risk


class Scripted:
    """A transport answering from a script of outcomes (then delivered)."""

    def __init__(self, *outcomes: SendResult) -> None:
        self.outcomes, self.keys = list(outcomes), []

    async def send(self, alert: Alert, dedup_key: str) -> SendResult:
        self.keys.append(dedup_key)
        return self.outcomes.pop(0) if self.outcomes else DELIVERED

    async def confirm(self) -> None:
        """Nothing."""

    def close(self) -> None:
        """Nothing."""


class Clock:
    def __init__(self) -> None:
        self.now, self.waits = 0.0, []

    def monotonic(self) -> float:
        return self.now

    async def wait(self, stop: asyncio.Event, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return stop.is_set()


DOWN = SendResult(False, "ConnectionRefusedError")
ALERT = alert_of(risk(), GroupingPolicy())
assert ALERT is not None


def _run(transport: Scripted, retry: RetryPolicy, clock: Clock, stop: asyncio.Event | None = None):  # type: ignore[no-untyped-def]
    return asyncio.run(
        deliver(
            transport,
            ALERT,
            "key",
            retry,
            stop=stop or asyncio.Event(),
            monotonic=clock.monotonic,
            jitter=lambda: 1.0,
            wait=clock.wait,
        )
    )


def test_backoff_doubles_up_to_the_maximum_and_every_attempt_has_the_same_key() -> None:
    transport, clock = Scripted(*[DOWN] * 7), Clock()
    result = _run(transport, RetryPolicy(initial_s=1, max_s=10, give_up_after_s=1000), clock)
    assert result.outcome.delivered and result.attempts == 8
    assert clock.waits == [1, 2, 4, 8, 10, 10, 10]
    assert set(transport.keys) == {"key"}


def test_retry_after_is_honoured_within_the_maximum() -> None:
    transport, clock = Scripted(SendResult(False, "HTTP 429", retry_after_s=7)), Clock()
    _run(transport, RetryPolicy(initial_s=1, max_s=30, give_up_after_s=100), clock)
    assert clock.waits == [7]


def test_it_gives_up_after_the_give_up_time() -> None:
    transport, clock = Scripted(*[DOWN] * 100), Clock()
    result = _run(transport, RetryPolicy(initial_s=1, max_s=60, give_up_after_s=100), clock)
    assert not result.outcome.delivered
    assert sum(clock.waits) <= 100 and result.attempts == len(clock.waits) + 1


def test_a_permanent_refusal_is_not_retried() -> None:
    transport, clock = Scripted(SendResult(False, "HTTP 400", permanent=True)), Clock()
    result = _run(transport, RetryPolicy(), clock)
    assert (result.outcome.reason, result.attempts, clock.waits) == ("HTTP 400", 1, [])


def test_a_stop_during_a_wait_decides_nothing() -> None:
    stop = asyncio.Event()
    stop.set()
    with pytest.raises(Stopped):
        _run(Scripted(DOWN), RetryPolicy(), Clock(), stop)
