"""A sink process stops promptly even when a write hangs (a database that is down): the
batch's write gets a grace period, then it is cancelled and nothing is committed."""

from __future__ import annotations

import asyncio

import pytest

from streams.sink_host import write_unless_stopped


async def test_a_write_finishes_when_no_stop_comes() -> None:
    done: list[int] = []

    async def write() -> None:
        await asyncio.sleep(0.01)
        done.append(1)

    assert await write_unless_stopped(write(), asyncio.Event(), grace_s=0.1)
    assert done == [1]


async def test_a_write_in_hand_at_a_stop_finishes_within_its_grace() -> None:
    stop = asyncio.Event()

    async def write() -> None:
        stop.set()  # the signal comes while the batch is written
        await asyncio.sleep(0.05)

    assert await write_unless_stopped(write(), stop, grace_s=1.0)


async def test_a_hanging_write_is_cancelled_after_the_grace() -> None:
    stop = asyncio.Event()
    cancelled: list[bool] = []

    async def write() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    stop.set()
    started = asyncio.get_running_loop().time()
    assert not await write_unless_stopped(write(), stop, grace_s=0.1)
    assert cancelled == [True]
    assert asyncio.get_running_loop().time() - started < 1


async def test_a_failed_write_raises() -> None:
    async def write() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        await write_unless_stopped(write(), asyncio.Event(), grace_s=0.1)
