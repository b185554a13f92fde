"""Events of one key as the stream delivers them: per source partition ("channel") in order,
the channels interleaved in an order that changes between runs.

Each subject's events live on one channel (as each ``partitionkey`` lives on one Kafka
partition); a channel keeps its events in order. :func:`any_merge` interleaves channels at
random; :func:`lagged_merge` as a backlog does, each event arriving after its event time
but less than ``lateness`` after it, a channel's events in order (the folds' guarantee
covers exactly these). :func:`outcome` is what must not depend on the interleaving: the
final stored state and the derived events, encoded, as a sorted list.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from schemas import Event, encode

Channels = list[list[Event]]


def channels_of(events: Sequence[Event], count: int) -> Channels:
    """``events`` split into ``count`` channels by subject (``partitionkey``), each channel
    in event-time order (ties: as given)."""
    names = sorted({e.partitionkey for e in events})
    channel = {name: index % count for index, name in enumerate(names)}
    split: Channels = [[] for _ in range(count)]
    for event in sorted(events, key=lambda e: e.time):
        split[channel[event.partitionkey]].append(event)
    return [c for c in split if c]


def any_merge(channels: Channels, rng: random.Random) -> list[Event]:
    """One interleaving, chosen at random, that keeps each channel's order."""
    left = [list(reversed(c)) for c in channels]
    merged: list[Event] = []
    while any(left):
        merged.append(rng.choice([c for c in left if c]).pop())
    return merged


def lagged_merge(channels: Channels, rng: random.Random, lateness: timedelta) -> list[Event]:
    """An interleaving in which each channel lags by its own random delay (and each event
    by a little more), always less than ``lateness`` behind event time."""
    limit = lateness.total_seconds() - 1
    arrivals: list[tuple[float, int, int, Event]] = []
    for number, channel in enumerate(channels):
        lag, last = rng.uniform(0, limit), 0.0
        for index, event in enumerate(channel):
            delay = min(limit, lag + rng.uniform(0, limit / 10))
            last = max(last, event.time.timestamp() + delay)  # the channel keeps its order
            arrivals.append((last, number, index, event))
    return [event for *_, event in sorted(arrivals, key=lambda a: a[:3])]


Fold = Callable[[Any, Event, Any], tuple[Any, list[Event]]]


def outcome(
    fold: Fold, empty: Callable[[], Any], events: Sequence[Event], rules: Any
) -> tuple[dict[str, Any], list[bytes]]:
    """The stored state after ``events`` (in this order) and every derived event, encoded
    and sorted. Each step goes through the stored (JSON) form half of the time, as a
    worker restarting from its table would; an unchanged state must come back as itself."""
    state, derived = empty(), []
    for index, event in enumerate(events):
        if index % 2:
            state = type(state).from_dict(state.to_dict())
        after, found = fold(state, event, rules)
        if after == state:
            assert after is state, "an unchanged state comes back as the very same object"
        state, derived = after, derived + found
    return state.to_dict(), sorted(encode(e) for e in derived)
