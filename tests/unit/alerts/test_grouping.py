"""The grouping fold: one attack, one alert (then a summary with the count); bounded."""

from __future__ import annotations

import functools
from datetime import timedelta

from alerts.config import GroupingPolicy
from alerts.grouping import EMPTY, Arrival, GroupingState, fold, holds, tick
from alerts.model import Alert, alert_of
from schemas.fields import RiskLevel
from tests.factories import T0
from tests.unit.alerts.fixtures import ip_block, lockout, risk

POLICY = GroupingPolicy(window_s=300, max_groups=100)


def _alert(event: object, policy: GroupingPolicy = POLICY) -> Alert:
    alert = alert_of(event, policy)  # type: ignore[arg-type]
    assert alert is not None
    return alert


def test_a_push_bombing_burst_gives_one_alert_at_once_and_one_summary_with_the_count() -> None:
    burst = [_alert(risk(at=T0 + timedelta(seconds=i))) for i in range(200)]
    state, sent = fold(EMPTY, [Arrival(a) for a in burst], POLICY)
    assert [a.id for a in sent] == [burst[0].id]  # the first, at once
    state, before = tick(state, T0 + timedelta(seconds=299), POLICY)
    assert before == []  # the window is still open
    state, closed = tick(state, T0 + timedelta(seconds=300), POLICY)
    assert [(a.kind, a.count) for a in closed] == [("summary", 200)]
    assert closed[0].id == f"{burst[0].id}/summary"
    assert closed[0].last_time == burst[-1].time
    assert state.groups == {}


def test_the_next_alert_after_the_window_closes_the_group_and_opens_a_new_one() -> None:
    first = [_alert(risk(at=T0 + timedelta(seconds=i))) for i in range(3)]
    later = _alert(risk(at=T0 + timedelta(seconds=400)))
    state, sent = fold(EMPTY, [Arrival(a) for a in [*first, later]], POLICY)
    assert [(a.kind, a.count) for a in sent] == [("alert", 1), ("summary", 3), ("alert", 1)]
    assert sent[2].id == later.id
    assert len(state.groups) == 1


def test_a_lone_alert_closes_without_a_summary() -> None:
    state, sent = fold(EMPTY, [Arrival(_alert(ip_block()))], POLICY)
    assert len(sent) == 1
    state, closed = tick(state, T0 + timedelta(hours=1), POLICY)
    assert closed == [] and state.groups == {}


def test_groups_are_per_tenant_type_detection_and_key() -> None:
    events = [
        risk(subject="u-1"),
        risk(subject="u-2"),  # another subject
        risk(subject="u-1", tenant="globex"),  # another tenant
        risk(subject="u-1", detection=risk().data.detection.OTP_GUESSING),  # type: ignore[attr-defined]
        ip_block(ip="198.51.100.1"),
        ip_block(ip="198.51.100.2"),
        risk(subject="u-1"),  # the first group again: suppressed
    ]
    state, sent = fold(EMPTY, [Arrival(_alert(e)) for e in events], POLICY)
    assert len(sent) == 6
    assert len(state.groups) == 6


def test_a_spray_locking_many_subjects_of_a_tenant_is_one_group() -> None:
    locks = [_alert(lockout(subject=f"u-{i}", at=T0 + timedelta(seconds=i))) for i in range(50)]
    state, sent = fold(EMPTY, [Arrival(a) for a in locks], POLICY)
    assert len(sent) == 1
    _, closed = tick(state, T0 + timedelta(minutes=10), POLICY)
    assert closed[0].count == 50
    assert closed[0].keys == ("u-0", "u-1", "u-2", "u-3", "u-4")  # samples, bounded
    by_subject = GroupingPolicy(window_s=300, lockouts_by="subject")
    _, sent = fold(
        EMPTY,
        [Arrival(_alert(lockout(subject=f"u-{i}"), by_subject)) for i in range(5)],
        by_subject,
    )
    assert len(sent) == 5


def test_a_more_severe_alert_is_not_held_back_and_the_summary_has_the_top_severity() -> None:
    alerts = [
        _alert(risk(severity=RiskLevel.MEDIUM)),
        _alert(risk(severity=RiskLevel.MEDIUM, at=T0 + timedelta(seconds=1))),
        _alert(risk(severity=RiskLevel.CRITICAL, at=T0 + timedelta(seconds=2))),
        _alert(risk(severity=RiskLevel.HIGH, at=T0 + timedelta(seconds=3))),
    ]
    state, sent = fold(EMPTY, [Arrival(a) for a in alerts], POLICY)
    assert [a.severity for a in sent] == ["medium", "critical"]
    _, closed = tick(state, T0 + timedelta(hours=1), POLICY)
    assert (closed[0].severity, closed[0].count) == ("critical", 4)


def test_state_is_bounded_the_group_ending_first_is_closed_early() -> None:
    small = GroupingPolicy(window_s=300, max_groups=3)
    arrivals = [
        Arrival(_alert(risk(subject=f"u-{i}", at=T0 + timedelta(seconds=i)), small))
        for i in range(3)
    ]
    arrivals.append(Arrival(_alert(risk(subject="u-0", at=T0 + timedelta(seconds=5)), small)))
    state, _ = fold(EMPTY, arrivals, small)
    state, sent = fold(
        state, [Arrival(_alert(risk(subject="u-9", at=T0 + timedelta(seconds=9)), small))], small
    )
    assert len(state.groups) == 3
    assert [(a.kind, a.subject, a.count) for a in sent] == [
        ("summary", "u-0", 2),
        ("alert", "u-9", 1),
    ]
    for n in range(1000):  # never more than max_groups, however many keys
        state, _ = fold(state, [Arrival(_alert(risk(subject=f"x-{n}"), small))], small)
        assert len(state.groups) <= 3


def test_holds_name_the_first_offset_of_each_open_group_per_partition() -> None:
    alerts = [_alert(risk(subject=s, at=T0 + timedelta(seconds=i))) for i, s in enumerate("aab")]
    arrivals = [
        Arrival(alerts[0], ("mfa.anomalies", 0), 10),
        Arrival(alerts[1], ("mfa.anomalies", 1), 3),
        Arrival(alerts[2], ("mfa.anomalies", 0), 12),
    ]
    state, _ = fold(EMPTY, arrivals, POLICY)
    assert holds(state) == {("mfa.anomalies", 0): 10, ("mfa.anomalies", 1): 3}
    state, _ = tick(state, T0 + timedelta(hours=1), POLICY)
    assert holds(state) == {}


def test_a_replay_after_a_crash_rebuilds_the_same_alerts_with_the_same_ids() -> None:
    """The host commits no further than the holds: reading again from there gives the same
    group, so the summary is the same (and the first alert's id, hence its key, repeats)."""
    burst = [Arrival(_alert(risk(at=T0 + timedelta(seconds=i))), ("t", 0), i) for i in range(20)]
    step = functools.partial(fold, policy=POLICY)
    state, sent_before = step(EMPTY, burst[:12])
    restart_at = holds(state)[("t", 0)]
    assert restart_at == 0  # the open group began there
    replayed, sent_again = step(GroupingState(), burst[restart_at:])  # the process restarted
    _, summary = tick(replayed, T0 + timedelta(hours=1), POLICY)
    assert [a.id for a in sent_again] == [a.id for a in sent_before]  # same id, same key
    assert sent_again[0].dedup_key("soc") == sent_before[0].dedup_key("soc")
    assert summary[0].count == 20  # nothing the crashed process had counted is lost


def test_the_fold_is_pure_the_old_state_is_untouched() -> None:
    state, _ = fold(EMPTY, [Arrival(_alert(risk()))], POLICY)
    before = dict(state.groups)
    fold(state, [Arrival(_alert(risk(at=T0 + timedelta(seconds=1))))], POLICY)
    tick(state, T0 + timedelta(hours=1), POLICY)
    assert dict(state.groups) == before
