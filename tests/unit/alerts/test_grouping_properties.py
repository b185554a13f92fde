"""Properties of the grouping fold over any arrivals: nothing is lost (every alert is sent
or counted in exactly one summary), the state never exceeds ``max_groups``, and chunking
the log differently changes nothing."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.config import GroupingPolicy
from alerts.grouping import EMPTY, Arrival, GroupingState, fold, holds, tick
from alerts.model import Alert, alert_of
from tests.factories import T0
from tests.unit.alerts.fixtures import risk

SUBJECTS = [f"u-{i}" for i in range(6)]
FAR = T0 + timedelta(days=30)


def _alert(subject: str, at: int) -> Alert:
    found = alert_of(risk(subject=subject, at=T0 + timedelta(seconds=at)), GroupingPolicy())
    assert found is not None
    return found


logs = st.lists(
    st.tuples(st.sampled_from(SUBJECTS), st.integers(min_value=0, max_value=120)),
    min_size=1,
    max_size=60,
).map(
    lambda steps: [
        Arrival(_alert(subject, sum(gap for _, gap in steps[: i + 1])), ("t", 0), i)
        for i, (subject, _) in enumerate(steps)
    ]
)


def _covered(sent: list[Alert]) -> int:
    summaries = {a.id.removesuffix("/summary"): a.count for a in sent if a.kind == "summary"}
    lone = sum(1 for a in sent if a.kind == "alert" and a.id not in summaries)
    return sum(summaries.values()) + lone


@settings(max_examples=150, deadline=None)
@given(
    log=logs,
    window=st.integers(min_value=1, max_value=600),
    max_groups=st.integers(min_value=1, max_value=8),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=5),
)
def test_every_alert_is_sent_or_counted_once_and_state_stays_bounded(
    log: list[Arrival], window: int, max_groups: int, cuts: list[int]
) -> None:
    policy = GroupingPolicy(window_s=window, max_groups=max_groups)
    state: GroupingState = EMPTY
    sent: list[Alert] = []
    bounds = sorted({0, *(c for c in cuts if c < len(log)), len(log)})
    for start, end in zip(bounds, bounds[1:], strict=False):
        state, out = fold(state, log[start:end], policy)
        sent += out
        assert len(state.groups) <= max_groups
        assert all(0 <= offset < end for offset in holds(state).values())
    state, out = tick(state, FAR, policy)
    sent += out
    assert state.groups == {}
    assert _covered(sent) == len(log)
    again, whole = fold(EMPTY, log, policy)
    _, rest = tick(again, FAR, policy)
    assert [a.id for a in whole + rest] == [a.id for a in sent]  # chunking changes nothing
