"""The discrete-event loop runs every episode's steps in time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from factorstream.simulator.episodes import Episode
from factorstream.simulator.schedule import Scheduler

T0 = datetime(2026, 11, 1, tzinfo=UTC)
S = timedelta(seconds=1)


def _episode(name: str, offsets: list[int], log: list[tuple[datetime, str]]) -> Episode:
    for offset in offsets:
        t = T0 + offset * S
        yield t
        log.append((t, name))
    return T0


def test_steps_of_all_episodes_interleave_in_time_order() -> None:
    log: list[tuple[datetime, str]] = []
    scheduler = Scheduler()
    scheduler.add(_episode("a", [0, 10, 20], log))
    scheduler.add(_episode("b", [5, 6, 30], log))
    scheduler.add(_episode("c", [10, 11], log))
    scheduler.run_until(T0 + 25 * S)
    assert log == [
        (T0, "a"),
        (T0 + 5 * S, "b"),
        (T0 + 6 * S, "b"),
        (T0 + 10 * S, "c"),  # a tie goes to the step scheduled first (c's, when added)
        (T0 + 10 * S, "a"),
        (T0 + 11 * S, "c"),
        (T0 + 20 * S, "a"),
    ]
    assert scheduler.next_time() == T0 + 30 * S
    scheduler.run_until(T0 + 60 * S)
    assert log[-1] == (T0 + 30 * S, "b") and scheduler.next_time() is None


def test_an_episode_going_back_in_time_is_a_bug() -> None:
    scheduler = Scheduler()
    scheduler.add(_episode("late", [10, 5], []))
    with pytest.raises(RuntimeError, match="back in time"):
        scheduler.run_until(T0 + 60 * S)
