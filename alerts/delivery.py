"""One alert to one destination: tried until delivered, refused for good, or out of time
(:class:`~alerts.config.RetryPolicy`), with exponential backoff between attempts."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from alerts.config import RetryPolicy
from alerts.model import Alert
from alerts.transports import SendResult, Transport

log = logging.getLogger(__name__)


class Stopped(Exception):  # noqa: N818 - a signal, not a failure
    """The host was asked to stop while an alert waited for its next attempt."""


@dataclass(frozen=True)
class Result:
    outcome: SendResult
    attempts: int


async def deliver(
    transport: Transport,
    alert: Alert,
    dedup_key: str,
    retry: RetryPolicy,
    *,
    stop: asyncio.Event,
    monotonic: Callable[[], float] = time.monotonic,
    jitter: Callable[[], float] = lambda: random.uniform(0.5, 1.0),  # noqa: S311 - not crypto
    wait: Callable[[asyncio.Event, float], Awaitable[bool]] | None = None,
) -> Result:
    """Send until delivered; a permanent refusal or ``give_up_after_s`` of failures ends
    it undelivered (the caller dead-letters it). :class:`Stopped` when ``stop`` is set
    during a wait: nothing is decided, the alert is read again after a restart."""
    started = monotonic()
    attempt = 0
    sleep = wait or _wait
    while True:
        attempt += 1
        outcome = await transport.send(alert, dedup_key)
        if outcome.delivered or outcome.permanent:
            return Result(outcome, attempt)
        delay = retry.delay(attempt, jitter())
        if outcome.retry_after_s is not None:
            delay = min(max(delay, outcome.retry_after_s), retry.max_s)
        if monotonic() - started + delay > retry.give_up_after_s:
            return Result(outcome, attempt)
        log.warning(
            "alert %s: attempt %d failed (%s); again in %.1f s",
            alert.id,
            attempt,
            outcome.reason,
            delay,
        )
        if await sleep(stop, delay):
            raise Stopped


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``; ``True`` as soon as ``stop`` is set."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
        return True
    except TimeoutError:
        return False
