"""The loop watchdog says where a blocked event loop is stuck, from its own thread."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from streams.watchdog import LoopWatchdog


def a_blocking_call(seconds: float) -> None:
    time.sleep(seconds)  # a synchronous call on the loop: nothing else runs meanwhile


def test_a_blocked_loop_is_reported_with_the_stack_it_is_stuck_at(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> int:
        watchdog = LoopWatchdog.start(after_s=0.3, period_s=0.05)
        try:
            await asyncio.sleep(0.3)  # turning: nothing to say
            assert watchdog.blocks == 0
            a_blocking_call(1.2)
            await asyncio.sleep(0.3)  # turning again
            return watchdog.blocks
        finally:
            watchdog.stop()

    with caplog.at_level(logging.WARNING, logger="streams.watchdog"):
        blocks = asyncio.run(main())
    assert blocks == 1
    reports = [r.getMessage() for r in caplog.records if "has not turned" in r.getMessage()]
    assert reports, caplog.text
    assert 1 <= len(reports) <= 4  # once per after_s while it lasts, not once per period
    assert "a_blocking_call" in reports[0] and "time.sleep(seconds)" in reports[0]
    assert "the event loop turns again" in caplog.text


def test_a_loop_that_keeps_turning_is_never_reported(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> int:
        watchdog = LoopWatchdog.start(after_s=0.3, period_s=0.05)
        try:
            for _ in range(20):
                a_blocking_call(0.05)  # short blocks, under after_s
                await asyncio.sleep(0.01)
            return watchdog.blocks
        finally:
            watchdog.stop()

    with caplog.at_level(logging.WARNING, logger="streams.watchdog"):
        assert asyncio.run(main()) == 0
    assert "has not turned" not in caplog.text
