"""``bench folds``: CPU time per event of the pure folds, their states held as live objects.

What the worker spends per event once Kafka and JSON are taken away: the lockout fold,
every detection (per subject, per client IP, per tenant) and per-IP blocking, each over the
same synthetic events (40 per subject, as issue 16 measures), states kept in a dict of live
frozen dataclasses, an untouched state not written back (the ``is`` convention of the folds).

Each fold runs in a pass of its own over the events, timed with ``time.process_time`` (CPU,
not wall clock: the machine is shared); a fold's figure is its best round, the total is the
sum of the folds'. Goal (issue 16): at most 60 µs CPU per event in total. As a rate, for
:class:`~factorstream.bench.BenchResult`: events per CPU second, the goal 1e6 / 60.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from factorstream.bench import BenchResult, Measurement
from factorstream.bench.events import synthetic_events
from factorstream.settings import Settings
from schemas import Event
from streams.folds import DETECTION_TABLES, DetectionThresholds, subject_key
from streams.folds.ipblock import IpBlockPolicy, IpBlockState, fold_ip_block, ip_block_key
from verifiers.lockout import LockoutState, fold_lockout
from verifiers.policy import TIERS, lockout_policy

GOAL_US = 60.0
"""CPU µs per event of every pure fold together (issue 16; 175 µs when it was opened)."""
EVENTS_PER_SUBJECT = 40
TOTAL = "all pure folds (sum of the folds below)"


@dataclass(frozen=True)
class LiveFold:
    """One fold the worker runs, on live states: its table, key, step and fresh state."""

    name: str
    """The worker's table name (``lockout``, ``risk_by_subject`` …)."""
    key: Callable[[Event], str | None]
    """The table key of an event; ``None``: the fold ignores the event."""
    step: Callable[[Any, Event], tuple[Any, list[Event]]]
    """``(state, event) -> (state, derived)``, settings bound; an untouched state comes back
    as the very same object."""
    empty: Callable[[], Any]


def live_folds(settings: Settings) -> list[LiveFold]:
    """Every fold of the worker, in the worker's order, over live states.

    The worker's own list (``streams.replay.pipeline_folds``) steps JSON states; until the
    stream engine has a registry of folds over live objects (being written), this list is
    built here from the same fold functions and the same settings: keep the two alike (a
    unit test holds these steps to the worker's JSON form, state by state).
    """
    composition = _stream_composition()
    thresholds: DetectionThresholds = composition.detection_thresholds(settings.detections)
    policy: IpBlockPolicy = composition.ip_block_policy(settings.ip_block)
    policies = {tier: lockout_policy(tier_policy) for tier, tier_policy in TIERS.items()}
    default_tier = settings.stream.default_tier

    def lockout(state: LockoutState, event: Event) -> tuple[LockoutState, list[Event]]:
        tier = getattr(event.data, "policy_tier", None) or default_tier
        return fold_lockout(state, event, policies[tier])

    def detection(table: Any) -> Callable[[Any, Event], tuple[Any, list[Event]]]:
        fold = table.fold
        return lambda state, event: fold(state, event, thresholds)

    def ip_block(state: IpBlockState, event: Event) -> tuple[IpBlockState, list[Event]]:
        return fold_ip_block(state, event, policy)

    return [
        LiveFold("lockout", subject_key, lockout, LockoutState),
        *(LiveFold(t.name, t.key, detection(t), t.empty) for t in DETECTION_TABLES),
        LiveFold("ip_block", ip_block_key, ip_block, IpBlockState),
    ]


def _stream_composition() -> ModuleType:
    """Where the stream turns settings into its folds' values (``detection_thresholds``,
    ``ip_block_policy``): ``streams.topology`` in the stream engine being rewritten,
    ``streams.detection_agents`` before it. (Drop the second once the engine has landed.)"""
    try:
        return importlib.import_module("streams.topology")
    except ImportError:
        return importlib.import_module("streams.detection_agents")


def fold_all(fold: LiveFold, events: Sequence[Event]) -> tuple[dict[str, Any], int]:
    """``events`` through ``fold`` into fresh live states: the states by key, and how many
    events were derived."""
    states: dict[str, Any] = {}
    key_of, step, empty, get = fold.key, fold.step, fold.empty, states.get
    derived = 0
    for event in events:
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
    return states, derived


def cpu_seconds(fold: LiveFold, events: Sequence[Event]) -> float:
    started = time.process_time()
    fold_all(fold, events)
    return time.process_time() - started


def run(*, settings: Settings, quick: bool) -> BenchResult:
    count, rounds = (4_000, 1) if quick else (200_000, 3)
    subjects = count // EVENTS_PER_SUBJECT
    events = synthetic_events(count, subjects=subjects)
    folds = live_folds(settings)
    best = {fold.name: float("inf") for fold in folds}
    for _ in range(rounds):
        for fold in folds:
            best[fold.name] = min(best[fold.name], cpu_seconds(fold, events))
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
            "how": f"each fold in its own pass, time.process_time, best of {rounds} round(s)",
        },
    )
