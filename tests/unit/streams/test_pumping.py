"""SMS pumping (``streams.folds.pumping``): learning judged by what lies the lateness back,
whole-minute windows, once per period and rule, the tenant's detection whatever completed
the count, the state's JSON form and bounds.

(Order independence: ``test_partition_order``; golden replays: ``test_detections_golden``.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas import Event
from schemas.fields import Channel, RiskLevel
from streams.folds import slots
from streams.folds.pumping import BURST, SUBJECT, UNUSUAL, SmsPumpingState, fold_sms_pumping
from streams.folds.thresholds import DetectionThresholds
from tests.factories import T0
from tests.unit.streams import DAY, HOUR, MINUTE, SECOND, Log, detections, replay, risk_of

SMS = DetectionThresholds(sms_learning_sends=3, sms_burst_count=10, sms_unusual_count=3)
LATE = slots.LATENESS


def run(
    events: list[Event], rules: DetectionThresholds = SMS, state: SmsPumpingState | None = None
) -> tuple[SmsPumpingState, list[Event]]:
    return replay(fold_sms_pumping, state or SmsPumpingState(), events, rules)


def rules_of(derived: list[Event]) -> list[Any]:
    return [risk_of(e).evidence["rule"] for e in derived]


def test_only_configured_channels_are_watched_and_a_null_country_is_not_unusual() -> None:
    log = Log()
    events = [log.sms(T0 + i * MINUTE, "DE") for i in range(3)]
    after = T0 + 2 * HOUR  # learning is over: 3 sends more than an hour old
    events += [log.sms(after + i * SECOND, "NG", channel=Channel.VOICE) for i in range(5)]
    events += [log.sms(after + i * SECOND, None) for i in range(5)]
    assert run(events)[1] == []
    with_voice = DetectionThresholds(
        sms_learning_sends=3,
        sms_unusual_count=3,
        sms_channels=frozenset({"sms", "voice"}),  # type: ignore[arg-type]
    )
    assert detections(run(events, with_voice)[1]) == ["sms_pumping"]


def test_learning_lasts_until_the_sends_a_lateness_back_are_enough() -> None:
    """3 sends to DE; NG within the hour after them is still learnt (usual), FR an hour
    after them is unusual."""
    log = Log()
    events = [log.sms(T0 + i * MINUTE, "DE") for i in range(3)]
    events += [log.sms(T0 + 30 * MINUTE + i * SECOND, "NG") for i in range(3)]
    events += [log.sms(T0 + 2 * HOUR + i * SECOND, "NG") for i in range(3)]
    assert run(events)[1] == []
    events += [log.sms(T0 + 2 * HOUR + i * MINUTE, "FR") for i in range(3)]
    assert rules_of(run(events)[1]) == [UNUSUAL]


def test_a_country_is_usual_only_for_sends_a_lateness_after_its_first() -> None:
    log = Log()
    learnt = [log.sms(T0 + i * MINUTE, "DE") for i in range(3)]
    start = T0 + DAY
    # NG first seen after learning: unusual until the adoption period (7 days) is over
    burst = [log.sms(start + i * MINUTE, "NG") for i in range(3)]
    assert rules_of(run(learnt + burst)[1]) == [UNUSUAL]
    adopted = [log.sms(start + 7 * DAY + i * MINUTE, "NG") for i in range(3)]
    assert run(learnt + [burst[0]] + adopted)[1] == []
    # a learnt country seen first less than a lateness before is not yet usual for the send
    late_learnt = [log.sms(T0 + LATE - MINUTE, "FR")]  # still learning
    soon = [log.sms(T0 + LATE + 30 * MINUTE + i * SECOND, "FR") for i in range(3)]
    assert rules_of(run(learnt + late_learnt + soon)[1]) == [UNUSUAL]
    later = [log.sms(T0 + 3 * HOUR + i * SECOND, "FR") for i in range(3)]
    assert run(learnt + late_learnt + later)[1] == []


def test_sms_burst_counts_whole_minutes_and_the_state_stays_small() -> None:
    log = Log()
    events = [log.sms(T0 + i * 6 * SECOND, "DE") for i in range(9)]  # 9 in minute 0
    events.append(log.sms(T0 + 10 * MINUTE, "DE"))  # minute 10: minute 0 is out
    assert run(events)[1] == []
    # late, minute 9: its window (minutes 0 to 9) holds 10, like that of a send in time
    events.append(log.sms(T0 + 9 * MINUTE + 59 * SECOND, "DE"))
    state, derived = run(events)
    assert rules_of(derived) == [BURST] and len(state.slots) == 3
    burst = [log.sms(T0 + DAY + i * SECOND, "DE") for i in range(10)]
    state, derived = run(burst, state=state)
    assert risk_of(only(derived)).evidence == {
        "rule": BURST,
        "threshold": 10,
        "window_seconds": 600,
        "period_start": (T0 + DAY).replace(minute=0).isoformat(),
        "period_seconds": 3600,
    }
    grid = slots.make_grid(SMS.sms_window, SMS.cooldown)
    assert list(state.slots) == [grid.slot_of(T0 + DAY)]  # the day before is forgotten
    assert SmsPumpingState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_the_detection_is_the_tenants_whatever_completed_the_count() -> None:
    log = Log()
    events = [log.sms(T0 + i * MINUTE, "DE") for i in range(3)]
    events += [log.sms(T0 + DAY + i * MINUTE, "NG", subject=f"v-{i}") for i in range(3)]
    state, derived = run(events)
    (risk,) = derived
    assert (risk.tenant, risk.subject, risk.time) == ("acme", SUBJECT, T0.replace(minute=0) + DAY)
    data = risk_of(risk)
    assert (data.score, data.severity, data.related_event_ids, data.client) == (
        75,
        RiskLevel.HIGH,
        [],
        None,
    )
    assert "NG" not in data.summary and "3 or more codes sent by sms to unusual" in data.summary
    other = [log.sms(T0 + DAY + 20 * MINUTE + i * SECOND, "CU", subject="w") for i in range(3)]
    assert run(events[:3] + other)[1] == derived  # another burst of the same hour: same event


def test_each_rule_fires_once_per_period() -> None:
    log = Log()
    events = [log.sms(T0 + i * MINUTE, "DE") for i in range(3)]
    events += [log.sms(T0 + DAY + i * 20 * SECOND, "NG") for i in range(300)]  # 100 minutes
    _, derived = run(events)
    hour = T0.replace(minute=0) + DAY  # 09:00 the next day: the sends run 09:30 to 11:10
    assert [(e.time, r) for e, r in zip(derived, rules_of(derived), strict=True)] == [
        (hour, UNUSUAL),
        (hour, BURST),
        (hour + HOUR, UNUSUAL),
        (hour + HOUR, BURST),
        (hour + 2 * HOUR, UNUSUAL),
        (hour + 2 * HOUR, BURST),
    ]
    assert len({e.id for e in derived}) == 6


def test_the_state_stays_bounded() -> None:
    log = Log()
    countries = ["DE", "FR", "NG", "GN", "US", "CU"]
    events = [log.sms(T0 + i * 13 * SECOND, countries[i % 6]) for i in range(5000)]
    state, _ = run(events)
    grid = slots.make_grid(SMS.sms_window, SMS.cooldown)
    assert len(state.early) == SMS.sms_learning_sends and len(state.countries) == 6
    assert state.newest is not None
    assert len(state.slots) <= grid.late + grid.span + 1
    assert min(state.slots) >= state.newest - grid.late - grid.span
    assert SmsPumpingState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": 1}, "version: expected 2, found 1"),
        ({"slots": [[1, 2]]}, "slots: expected a list of 3 integers"),
        ({"slots": [[1, 2, 3]]}, r"slots: expected \[slot, sends, unusual <= sends\]"),
        ({"early": ["2026-11-02T09:30:00"]}, "early: expected an RFC 3339 time"),
        ({"countries": {"DE": "yesterday"}}, "countries.DE: expected an RFC 3339 time"),
        ({"fired": {"burst_rate": ["1"]}}, "burst_rate: expected a list of integers"),
    ],
)
def test_malformed_states_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SmsPumpingState.from_dict(SmsPumpingState().to_dict() | changes)


def only(derived: list[Event]) -> Event:
    (event,) = derived
    return event
