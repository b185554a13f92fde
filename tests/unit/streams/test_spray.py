"""Password spray (``streams.folds.spray``): the rule at its boundaries, once per period,
one detection per tenant whatever completed the count, the state's JSON form and bounds.

(Order independence: ``test_partition_order``; golden replays: ``test_detections_golden``.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas import Event
from schemas.fields import Client, RiskLevel
from streams.folds import slots
from streams.folds.spray import SUBJECT, SprayState, fold_password_spray
from streams.folds.thresholds import DetectionThresholds
from tests.factories import T0
from tests.unit.streams import HOUR, MINUTE, SECOND, Log, detections, replay, risk_of

DEFAULT = DetectionThresholds()
IP = "192.0.2.99"
HOUR_OF_T0 = T0.replace(minute=0)  # T0 is 09:30; periods are UTC hours (the cool-down)


def failures(
    log: Log, start: Any, count: int, *, gap: Any = MINUTE, **envelope: Any
) -> list[Event]:
    return [
        log.login(start + i * gap, ip=IP, subject=f"u-{i:04d}", **envelope) for i in range(count)
    ]


def run(
    events: list[Event], rules: DetectionThresholds = DEFAULT
) -> tuple[SprayState, list[Event]]:
    return replay(fold_password_spray, SprayState(), events, rules)


@pytest.mark.parametrize(("subjects", "fires"), [(9, False), (10, True)])
def test_password_spray_needs_ten_distinct_subjects(subjects: int, fires: bool) -> None:
    log = Log()
    events = [log.login(T0 + i * MINUTE, ip=IP, subject=f"u-{i % subjects}") for i in range(30)]
    state, derived = run(events)
    assert detections(derived) == (["password_spray"] if fires else [])
    assert all(
        len(labels) < DEFAULT.spray_min_subjects for labels in state.subjects.labels.values()
    )


@pytest.mark.parametrize(
    ("last_minute", "fires"), [(60, True), (61, False)], ids=["61st-minute", "62nd-minute"]
)
def test_the_window_is_the_whole_minutes_it_overlaps(last_minute: int, fires: bool) -> None:
    """An hour's window ending at 10:30:59 holds every minute from 09:30 on."""
    log = Log()
    events = failures(log, T0, 9)  # 09:30 .. 09:38
    events.append(log.login(T0 + last_minute * MINUTE + 59 * SECOND, ip=IP, subject="u-last"))
    assert detections(run(events)[1]) == (["password_spray"] if fires else [])


def test_one_detection_per_tenant_with_failures_in_the_period_or_the_one_before() -> None:
    log = Log()
    before = failures(log, T0, 2, tenant="globex")  # 09:30, 09:31: the period before
    events = before + failures(log, T0 + 30 * MINUTE, 8)  # 10:00 .. 10:07, acme
    _, derived = run(events)

    assert [e.tenant for e in derived] == ["acme", "globex"]
    for event in derived:
        risk = risk_of(event)
        assert (event.subject, event.partitionkey) == (SUBJECT, f"{event.tenant}/{SUBJECT}")
        assert event.time == T0 + 30 * MINUTE  # 10:00, the period's start
        assert event.correlationid == event.id
        assert (risk.score, risk.severity) == (75, RiskLevel.HIGH)
        assert risk.client == Client(ip=IP)  # the IP only: nothing of one failure
        assert risk.related_event_ids == []
        assert risk.evidence == {
            "threshold": 10,
            "window_seconds": 3600,
            "period_start": "2026-11-02T10:00:00+00:00",
            "period_seconds": 3600,
        }
        assert IP not in risk.summary and "10 or more different subjects" in risk.summary
    assert len({e.id for e in derived}) == 2


def test_a_tenant_that_fails_later_in_a_fired_period_gets_its_own_detection_once() -> None:
    log = Log()
    events = failures(log, T0, 10)  # 09:30 .. 09:39: fires in the 09:00 period
    events += [log.login(T0 + 20 * MINUTE, ip=IP, tenant="globex", subject="g-1")]
    events += [log.login(T0 + 21 * MINUTE, ip=IP, tenant="globex", subject="g-2")]
    events += [log.login(T0 + 75 * MINUTE, ip=IP, tenant="initech", subject="i-1")]  # 10:45
    _, derived = run(events)

    # initech's failure is in the next period, and its window (from 09:45) holds 3 subjects
    assert [(e.tenant, e.time) for e in derived] == [
        ("acme", HOUR_OF_T0),
        ("globex", HOUR_OF_T0),
    ]


def test_the_next_period_fires_again_while_a_window_of_its_own_meets_the_rule() -> None:
    """The cool-down is the period: a failure at 10:10 whose window (from 09:10) holds the
    09:30s' ten subjects fires the 10:00 period, 31 minutes after the 09:00 one fired."""
    log = Log()
    events = [*failures(log, T0, 10), log.login(T0 + 40 * MINUTE, ip=IP, subject="u-late")]
    _, derived = run(events)
    assert [e.time for e in derived] == [HOUR_OF_T0, HOUR_OF_T0 + HOUR]


def test_a_spray_fires_once_per_period_at_its_start() -> None:
    log = Log()
    events = failures(log, T0, 200, gap=MINUTE)  # 09:30 .. 12:49, a new subject a minute
    _, derived = run(events)
    hours = [HOUR_OF_T0 + i * HOUR for i in range(4)]
    assert [e.time for e in derived] == hours
    assert [risk_of(e).evidence["period_start"] for e in derived] == [h.isoformat() for h in hours]


def test_what_it_derives_is_a_function_of_ip_period_and_tenant() -> None:
    """Whichever failures meet the rule in a period, the same event comes out."""
    one = run(failures(Log(), T0, 10))[1]
    other = run(failures(Log("acme", "x"), T0 + 15 * MINUTE, 12, gap=SECOND))[1]
    assert one == other and len(one) == 1


def test_state_round_trips_and_stays_bounded() -> None:
    log = Log()
    events = [
        log.login(T0 + i * 7 * SECOND, ip=IP, subject=f"u-{i % 37}", tenant=f"t{i % 3}")
        for i in range(3000)
    ]
    state, derived = run(events)
    grid = slots.make_grid(DEFAULT.spray_window, DEFAULT.cooldown)
    assert detections(derived) == ["password_spray"] * 3 * 7  # 3 tenants, 09:00 to 15:00
    held = [*state.subjects.labels, *state.subjects.full]
    assert state.newest is not None
    assert min(held) >= state.newest - grid.late - grid.span
    assert len(held) <= grid.late + grid.span + 1
    assert set(state.tenants) <= {grid.period_of(state.newest) + d for d in (-2, -1, 0)}
    assert SprayState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_another_cooldown_starts_afresh() -> None:
    """Slots and periods are numbered by the window and the cool-down: another numbering
    cannot read the stored one."""
    log = Log()
    state, _ = run(failures(log, T0, 9))
    longer = DetectionThresholds(cooldown=2 * HOUR)
    after, derived = fold_password_spray(state, log.login(T0 + 9 * MINUTE, ip=IP), longer)
    assert derived == [] and after.grid == (60, 7200) and len(after.subjects.labels) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": 1}, "version: expected 2, found 1"),
        ({"slots": [[1, []]]}, r"slots: expected \[\[slot"),
        ({"slots": [["1", ["acme/u"]]]}, r"slots: expected \[\[slot"),
        ({"full": ["1"]}, "full: expected a list of slots"),
        ({"slots": [[1, ["acme/u"]]], "full": [1]}, "slots: expected each slot once"),
        ({"tenants": [[1, "acme"]]}, r"tenants: expected \[\[period"),
        ({"fired": [1.5]}, "fired: expected a list of integers"),
        ({"newest": "1"}, "newest: expected an integer"),
        ({"grid": [60]}, "grid: expected"),
    ],
)
def test_malformed_states_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SprayState.from_dict(SprayState().to_dict() | changes)
