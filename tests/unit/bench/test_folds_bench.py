"""``bench folds`` must time what the worker runs: every fold, the states it would store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from factorstream.bench.events import synthetic_events
from factorstream.bench.folds import TOTAL, fold_all, live_folds, run
from factorstream.settings import Settings
from factorstream.stream_config import settings_topology
from schemas import Event
from streams.folds import DETECTION_TABLES
from tests.factories import PAYLOADS, sample_event


def _events() -> list[Event]:
    """The benchmark's mix, then every event type for three subjects, a few times over."""
    events = synthetic_events(800, subjects=20)
    start = events[-1].time
    for round_ in range(6):
        for n, type_name in enumerate(sorted(PAYLOADS)):
            at = start + timedelta(minutes=round_, seconds=n)
            for subject in ("u-1", "u-2", "u-3"):
                event = sample_event(type_name, subject=subject, now=at, correlationid=f"c-{n}")
                events.append(event)
    return events


def test_the_benchmark_runs_every_fold_of_the_worker() -> None:
    names = [fold.name for fold in live_folds(Settings())]
    assert names == list(settings_topology(Settings()).fold_names)
    assert set(names) == {"lockout", "ip_block", *(table.name for table in DETECTION_TABLES)}


def test_live_states_are_the_states_stored_ones_give() -> None:
    """Folding live objects gives what folding each event into the stored (JSON) form of
    the state gives, as the worker's tables do."""
    events = _events()
    for fold in live_folds(Settings()):
        live, derived, _ = fold_all(fold, events, slices=3)
        stored: dict[str, dict[str, Any]] = {}
        derived_stored = 0
        for event in events:
            key = fold.key(event)
            if key is None:
                continue
            before = stored.get(key)
            after, found = fold.fold(fold.empty() if before is None else fold.load(before), event)
            stored[key] = fold.dump(after)
            derived_stored += len(found)
        fresh = fold.dump(fold.empty())
        live_dicts = {k: fold.dump(s) for k, s in live.items()}
        assert {k: s for k, s in live_dicts.items() if s != fresh} == {
            k: s for k, s in stored.items() if s != fresh
        }, fold.name
        assert derived == derived_stored, fold.name
        if fold.name in ("lockout", "risk_by_subject"):
            assert derived > 0, fold.name  # the events exercise what the fold derives


def test_quick_run_reports_every_fold_beside_the_goal() -> None:
    result = run(settings=Settings(), quick=True)
    names = [m.name for m in result.contenders]
    assert names == [TOTAL, *(f"fold {fold.name}" for fold in live_folds(Settings()))]
    assert result.baseline.events_per_s == 1e6 / 60
    per_fold = sum(1 / m.events_per_s for m in result.contenders[1:])
    assert abs(1 / result.candidate.events_per_s - per_fold) <= 1e-9 * per_fold + 1e-12
    assert "CPU µs/event" in result.notes
