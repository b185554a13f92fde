"""One attack, one alert: a pure fold over event time that groups and suppresses.

``fold(state, arrivals, policy) -> (state, to_send)`` and ``tick(state, now, policy) ->
(state, to_send)``; no clock, no I/O. An alert opens a group (tenant, type, detection or
scope, key) and is sent at once; the group's later alerts within ``window_s`` of the
first (by event time) are counted, not sent, unless more severe than any sent so far
(an escalation goes at once). When the window has passed (the group's next alert, or a
tick with a later ``now``) a group that suppressed anything closes with one summary
alert carrying the count. At most ``max_groups`` are open: a new group beyond closes
the one whose window ends first.

Each group remembers, per (topic, partition), the smallest offset of its events
(:attr:`Group.holds`): the host commits no further than :func:`holds` allows, so after a
crash the open groups are rebuilt from the log and nothing they counted is lost (their
first alerts go again, with the same deduplication keys).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from alerts.config import SEVERITIES, GroupingPolicy, severity_rank
from alerts.model import Alert, GroupKey, summary_of

Partition = tuple[str, int]
"""(topic, partition)."""


@dataclass(frozen=True)
class Arrival:
    """An alert and where its event sits in the log (``None``: nowhere, e.g. a test)."""

    alert: Alert
    partition: Partition | None = None
    offset: int = 0


@dataclass(frozen=True)
class Group:
    first: Alert
    end: datetime
    count: int = 1
    last: datetime | None = None
    sent_rank: int = 0
    top_rank: int = 0
    keys: tuple[str, ...] = ()
    event_ids: tuple[str, ...] = ()
    holds: Mapping[Partition, int] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupingState:
    groups: Mapping[GroupKey, Group] = field(default_factory=dict)


EMPTY = GroupingState()


def fold(
    state: GroupingState, arrivals: Iterable[Arrival], policy: GroupingPolicy
) -> tuple[GroupingState, list[Alert]]:
    """Fold ``arrivals`` (in log order) into ``state``: the new state and what to send now,
    in order."""
    groups = dict(state.groups)
    out: list[Alert] = []
    window = timedelta(seconds=policy.window_s)
    for arrival in arrivals:
        alert = arrival.alert
        group = groups.get(alert.group)
        if group is not None and alert.time >= group.end:
            out += _close(groups, alert.group)
            group = None
        if group is None:
            if len(groups) >= policy.max_groups:
                oldest = min(groups, key=lambda key: groups[key].end)
                out += _close(groups, oldest)
            rank = severity_rank(alert.severity)
            groups[alert.group] = Group(
                first=replace(alert, event=None),  # the event itself went with the alert
                end=alert.time + window,
                last=alert.time,
                sent_rank=rank,
                top_rank=rank,
                keys=alert.keys[: policy.samples],
                event_ids=(alert.id,),
                holds=_held({}, arrival),
            )
            out.append(alert)
            continue
        rank = severity_rank(alert.severity)
        if rank > group.sent_rank:  # an escalation is not held back
            out.append(alert)
        groups[alert.group] = replace(
            group,
            count=group.count + 1,
            last=max(group.last or alert.time, alert.time),
            sent_rank=max(group.sent_rank, rank),
            top_rank=max(group.top_rank, rank),
            keys=_sample(group.keys, alert.keys, policy.samples),
            event_ids=_sample(group.event_ids, (alert.id,), policy.samples),
            holds=_held(group.holds, arrival),
        )
    return GroupingState(groups), out


def tick(
    state: GroupingState, now: datetime, policy: GroupingPolicy
) -> tuple[GroupingState, list[Alert]]:
    """Close every group whose window ended by ``now``: the new state and the summaries."""
    due = [key for key, group in state.groups.items() if group.end <= now]
    if not due:
        return state, []
    groups = dict(state.groups)
    out: list[Alert] = []
    for key in sorted(due, key=lambda k: groups[k].end):
        out += _close(groups, key)
    return GroupingState(groups), out


def holds(state: GroupingState) -> dict[Partition, int]:
    """Per (topic, partition), the smallest offset an open group still needs: commit no
    further."""
    held: dict[Partition, int] = {}
    for group in state.groups.values():
        for partition, offset in group.holds.items():
            if offset < held.get(partition, offset + 1):
                held[partition] = offset
    return held


def _close(groups: dict[GroupKey, Group], key: GroupKey) -> list[Alert]:
    group = groups.pop(key)
    if group.count == 1:
        return []
    summary = summary_of(
        group.first,
        count=group.count,
        last=group.last or group.first.time,
        keys=group.keys,
        event_ids=group.event_ids,
    )
    return [replace(summary, severity=SEVERITIES[group.top_rank])]


def _held(holds: Mapping[Partition, int], arrival: Arrival) -> Mapping[Partition, int]:
    if arrival.partition is None:
        return holds
    if arrival.partition in holds and holds[arrival.partition] <= arrival.offset:
        return holds
    return {**holds, arrival.partition: arrival.offset}


def _sample(have: tuple[str, ...], more: tuple[str, ...], limit: int) -> tuple[str, ...]:
    if len(have) >= limit:
        return have
    return tuple(dict.fromkeys(have + more))[:limit]
