"""A runner that holds its lock on one batch too long is reported, with where it waits."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from streams.engine import Engine, Runner


async def _holds_the_lock_until(runner: Runner, released: asyncio.Event) -> None:
    async with runner.lock:
        await released.wait()


async def test_a_runner_stuck_on_one_batch_is_reported_once_per_wait() -> None:
    engine = Engine(cast(Any, object()))  # the report needs no app
    runner = Runner(cast(Any, object()), name="subjects", source=cast(Any, None))
    engine.runners[runner.name] = runner
    released = asyncio.Event()
    runner.task = asyncio.create_task(_holds_the_lock_until(runner, released))
    await asyncio.sleep(0)  # it takes the lock and waits
    assert engine.stuck(0, after_s=30) == []
    assert engine.stuck(29, after_s=30) == []
    (report,) = engine.stuck(30, after_s=30)
    assert report.startswith("subjects: held by its batch for 30 s or more")
    assert "_holds_the_lock_until" in report  # where it waits
    assert engine.stuck(45, after_s=30) == []  # said once: again after another 30 s
    assert len(engine.stuck(60, after_s=30)) == 1
    runner.batches += 1  # it moved on: the wait starts again
    assert engine.stuck(70, after_s=30) == []
    released.set()
    await runner.task
    assert engine.stuck(200, after_s=30) == []  # idle: nothing held
