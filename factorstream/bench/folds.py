"""``bench folds``: CPU time per event of the pure folds, their states held as live objects.

What the worker spends per event once Kafka and JSON are taken away: the lockout fold,
every detection (per subject, per client IP, per tenant) and per-IP blocking, each over the
same synthetic events (40 per subject, as issue 16 measures), states kept in a dict of live
frozen dataclasses, an untouched state not written back (the ``is`` convention of the folds).

The folds are the worker's own (``streams.topology``). Each runs in a pass of its own over
the events, as each stage runs over a batch, timed with ``time.process_time`` (CPU, not
wall clock: the machine is shared) slice by slice (:data:`SLICES`); a fold's figure is the
sum of its slices' best rounds, the total the sum of the folds'. The events, built
beforehand and held for the whole run (a worker lets each batch go), are kept out of the
garbage collector's passes (``gc.freeze``); the states are not.

Goal (issue 16): at most 60 µs CPU per event in total. As a rate, for
:class:`~factorstream.bench.BenchResult`: events per CPU second, the goal 1e6 / 60.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from typing import Any

from factorstream.bench import BenchResult, Measurement
from factorstream.bench.events import synthetic_events
from factorstream.settings import Settings
from factorstream.stream_config import settings_topology
from schemas import Event
from streams.stages import LiveFold

GOAL_US = 60.0
"""CPU µs per event of every pure fold together (issue 16; 175 µs when it was opened)."""
EVENTS_PER_SUBJECT = 40
SLICES = 10
"""Each pass is timed in slices of the events, and each slice's best round is kept: on a
shared machine a slowdown lasting seconds then spoils one slice of a round, not the round."""
TOTAL = "all pure folds (sum of the folds below)"


def live_folds(settings: Settings) -> list[LiveFold[Any]]:
    """Every fold of the worker over live states, stage by stage (``streams.topology``)."""
    return [fold for stage in settings_topology(settings).stages for fold in stage.folds]


def fold_all(
    fold: LiveFold[Any], events: Sequence[Event], *, slices: int = 1
) -> tuple[dict[str, Any], int, list[float]]:
    """``events`` through ``fold`` into fresh live states: the states by key, how many events
    were derived, and the CPU seconds of each of ``slices`` consecutive slices of the events
    (the states carry over from one slice to the next)."""
    states: dict[str, Any] = {}
    key_of, step, empty, get = fold.key, fold.fold, fold.empty, states.get
    derived, seconds = 0, []
    size = -(-len(events) // slices)
    for first in range(0, len(events), size):
        started = time.process_time()
        for event in events[first : first + size]:
            key = key_of(event)
            if key is None:
                continue
            state = get(key)
            if state is None:
                state = empty()
            new, found = step(state, event)
            if new is not state:
                states[key] = new
            derived += len(found)
        seconds.append(time.process_time() - started)
    return states, derived, seconds


def run(*, settings: Settings, quick: bool) -> BenchResult:
    count, rounds = (4_000, 1) if quick else (200_000, 5)
    subjects = count // EVENTS_PER_SUBJECT
    events = synthetic_events(count, subjects=subjects)
    folds = live_folds(settings)
    slices: dict[str, list[float]] = {fold.name: [] for fold in folds}
    # A worker lets each batch of events go once folded; kept for the whole run, these
    # would be scanned by every full pass of the garbage collector over the states.
    gc.collect()
    gc.freeze()
    try:
        for _ in range(rounds):
            for fold in folds:
                _, _, seconds = fold_all(fold, events, slices=SLICES)
                done = slices[fold.name] or seconds
                slices[fold.name] = [min(a, b) for a, b in zip(done, seconds, strict=True)]
    finally:
        gc.unfreeze()
    best = {name: sum(seconds) for name, seconds in slices.items()}
    total = sum(best.values())

    def measured(name: str, seconds: float) -> Measurement:
        return Measurement(name, count / seconds if seconds > 0 else float("inf"), rounds, count)

    def micros(seconds: float) -> str:
        return f"{seconds / count * 1e6:.1f}"

    per_fold = ", ".join(f"{name} {micros(seconds)}" for name, seconds in best.items())
    return BenchResult(
        bench="folds",
        baseline=Measurement(
            f"goal: ≤ {GOAL_US:.0f} µs/event",
            1e6 / GOAL_US,
            1,
            0,
        ),
        contenders=[
            measured(TOTAL, total),
            *(measured(f"fold {name}", seconds) for name, seconds in best.items()),
        ],
        goal_ratio=1.0,
        goal_text=f"all pure folds ≤ {GOAL_US:.0f} µs CPU per event",
        unit="events per CPU second",
        notes={
            "events": f"{count:,} synthetic sign-in events, {subjects:,} subjects "
            f"({EVENTS_PER_SUBJECT} events each), states as live objects (no JSON)",
            "CPU µs/event": f"all {micros(total)} (goal ≤ {GOAL_US:.0f}): {per_fold}",
            "how": f"each fold in its own pass over the events, in {SLICES} slices, each"
            f" slice's best of {rounds} round(s) (time.process_time), the events frozen out of"
            " the garbage collector",
        },
    )
