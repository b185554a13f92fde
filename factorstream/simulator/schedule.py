"""The discrete-event loop: episodes' steps run in time order, across all people.

Every episode yields the time of its next step; :class:`Scheduler` keeps them in a heap and
always resumes the earliest, so the verifiers see one time-ordered stream of ceremonies
(ties broken by insertion order: deterministic). Planner episodes add more episodes as
simulated time passes: :func:`daily_sign_ins` each midnight, :func:`live_sign_ins` at a
steady rate after the backfill.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from datetime import datetime, timedelta

from factorstream.simulator.behaviour import sign_in_times
from factorstream.simulator.episodes import DAY, Episode, World, sign_in


class Scheduler:
    """A heap of episodes keyed by the time of their next step."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, Episode]] = []
        self._order = itertools.count()
        self.steps = 0

    def add(self, episode: Episode) -> None:
        """Start tracking ``episode`` (runs its code up to its first ``yield``: its start)."""
        try:
            first = next(episode)
        except StopIteration:
            return
        heapq.heappush(self._heap, (first, next(self._order), episode))

    def next_time(self) -> datetime | None:
        return self._heap[0][0] if self._heap else None

    def run_until(
        self, until: datetime, *, on_step: Callable[[datetime], None] | None = None
    ) -> None:
        """Take every step due before ``until``, earliest first."""
        while self._heap and self._heap[0][0] < until:
            now, _, episode = heapq.heappop(self._heap)
            try:
                following = next(episode)
            except StopIteration:
                following = None
            self.steps += 1
            if following is not None:
                if following < now:
                    raise RuntimeError(f"an episode went back in time: {following} < {now}")
                heapq.heappush(self._heap, (following, next(self._order), episode))
            if on_step is not None:
                on_step(now)


def daily_sign_ins(world: World, scheduler: Scheduler) -> Episode:
    """Each simulated midnight, plan that day's sign-ins of every person."""
    organisation = world.organisation
    for day_index in range(organisation.days):
        day = organisation.start + day_index * DAY
        yield day
        for person in organisation.people:
            for moment in sign_in_times(world.rng, person, day):
                scheduler.add(sign_in(world, person, moment))
    return organisation.start + organisation.days * DAY


def live_sign_ins(
    world: World, scheduler: Scheduler, *, start: datetime, sign_ins_per_s: float
) -> Episode:
    """After the backfill: sign-ins of random people at a steady (Poisson) rate, forever."""
    if sign_ins_per_s <= 0:
        raise ValueError(f"sign_ins_per_s: expected > 0, got {sign_ins_per_s}")
    people = world.organisation.people
    t = start
    while True:
        t += timedelta(seconds=world.rng.expovariate(sign_ins_per_s))
        yield t
        scheduler.add(sign_in(world, world.rng.choice(people), t))
