"""Fast mode: the same model's events without ceremonies — valid, and the same shape."""

from __future__ import annotations

from collections import Counter

from factorstream.simulator.run import SimulationPlan, fast_simulation
from factorstream.simulator.scenarios import EXPECTED, SCENARIOS
from schemas import Event, decode, encode
from tests.unit.simulator.conftest import BENIGN, UNTIL
from tests.unit.simulator.pipeline import derived_labels

CHANCE = {
    "mfa.challenge.delivery_failed",
    "mfa.enrollment.failed",
    "mfa.push.expired",
    "mfa.push.rejected",
    "mfa.recovery.succeeded",
}
"""Rare outcomes: a small run of either kind may or may not draw them."""


def _fast(**plan: object) -> list[bytes]:
    settings: dict[str, object] = {"until": UNTIL, "seed": 3, "users": 8, "days": 1} | plan
    simulation, service = fast_simulation(SimulationPlan(**settings))  # type: ignore[arg-type]
    simulation.backfill()
    return [encode(event) for event in service.take()]


def test_fast_events_decode_and_validate() -> None:
    values = _fast(users=40, days=3, scenarios=tuple(SCENARIOS))
    events = [decode(value) for value in values]  # raises on any invalid event
    assert len(events) > 500
    assert [e.time for e in events] == sorted(e.time for e in events)


def test_fast_mode_records_the_event_types_the_verifiers_do(benign_events: list[Event]) -> None:
    real_types = Counter(e.type for e in benign_events)
    fast_types = Counter(decode(v).type for v in _fast(**BENIGN))
    assert set(fast_types) ^ set(real_types) <= CHANCE, set(fast_types) ^ set(real_types)
    assert len(set(fast_types) & set(real_types)) >= 10


def test_fast_scenarios_set_off_their_detections_too() -> None:
    found = derived_labels(decode(v) for v in _fast(scenarios=tuple(SCENARIOS)))
    expected = set().union(*EXPECTED.values())
    assert expected <= set(found)
