"""SMS pumping (toll fraud): bursts of codes sent to destinations a tenant does not serve.

:func:`fold_sms_pumping` runs per tenant (:func:`~streams.folds.signals.sms_pumping_key`)
over ``mfa.challenge.sent`` on a channel in ``sms_channels``. Two rules, each firing at most
once per UTC-aligned period of ``cooldown``: *unusual destinations* (sends to premium
countries or to countries the tenant does not usually serve, once it has learnt them:
score 75) and *burst rate* (sends of any destination: score 60), as one ``risk.detected``
for the tenant under the pseudonymous subject :data:`SUBJECT`, at the period's start.
The rules are stated on event time alone (the model: :mod:`streams.folds.slots`); ``L`` is
:data:`LATENESS`: a send is judged only by what L before it already holds, and a send
more than L older than the tenant's newest is not counted.
The rules in full: docs/detections.md#sms-pumping.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from schemas import Event
from schemas import payloads as p
from schemas.payloads import Detection, EvidenceValue
from streams.folds import slots as sl
from streams.folds import window as w
from streams.folds.signals import SOURCE, severity_for
from streams.folds.thresholds import DetectionThresholds

STATE_VERSION: Final = 2
SUBJECT: Final = "sms-pumping"
"""The pseudonymous subject of the detections (they belong to a tenant, not to a person)."""
UNUSUAL: Final = "unusual_destination"
BURST: Final = "burst_rate"
SCORES: Final = {UNUSUAL: 75, BURST: 60}
LATENESS: Final = sl.LATENESS

Counts = tuple[int, int]
"""(Sends, unusual sends) of one slot."""


@dataclass(frozen=True)
class SmsPumpingState:
    """One tenant's first sends, destination countries, recent sends by slot, firings."""

    grid: tuple[int, int] = (0, 0)
    """(Seconds per slot, seconds per period) the slots and periods are numbered by."""
    newest: int | None = None
    """The newest slot with a send."""
    early: tuple[datetime, ...] = ()
    """The times of the tenant's earliest sends (at most ``sms_learning_sends``), sorted."""
    countries: Mapping[str, datetime] = field(default_factory=dict)
    """The first send to each destination country."""
    slots: Mapping[int, Counts] = field(default_factory=dict)
    unusual_fired: frozenset[int] = frozenset()
    burst_fired: frozenset[int] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "grid": list(self.grid),
            "newest": self.newest,
            "early": [w.isoformat(at) for at in self.early],
            "countries": w.seen_to_json(sorted(self.countries.items())),
            "slots": [[s, *self.slots[s]] for s in sorted(self.slots)],
            "fired": {UNUSUAL: sorted(self.unusual_fired), BURST: sorted(self.burst_fired)},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SmsPumpingState:
        w.check_version(data, STATE_VERSION)
        (grid,) = sl.int_pairs({"grid": [data.get("grid", [0, 0])]}, "grid", 2)
        early = data.get("early", [])
        if not isinstance(early, list):
            raise ValueError(f"early: expected a list of times, found {early!r}")
        counts = sl.int_pairs(data, "slots", 3)
        if any(n < 0 or unusual < 0 or unusual > n for _, n, unusual in counts):
            raise ValueError(f"slots: expected [slot, sends, unusual <= sends], found {counts!r}")
        fired = w.nested(data, "fired")
        return cls(
            grid=(grid[0], grid[1]),
            newest=sl.optional_int(data, "newest"),
            early=tuple(sorted(w.parse_time(at, "early") for at in early)),
            countries=dict(w.seen_from_json(data, "countries")),
            slots={s: (n, unusual) for s, n, unusual in counts},
            unusual_fired=frozenset(sl.int_list(fired, UNUSUAL)),
            burst_fired=frozenset(sl.int_list(fired, BURST)),
        )


def _learning(early: tuple[datetime, ...], at: datetime, thresholds: DetectionThresholds) -> bool:
    """Is a send at ``at`` a learning send (docs/detections.md#sms-pumping)?"""
    older = bisect_left(early, at - LATENESS)
    if older == 0:
        return True
    return older < thresholds.sms_learning_sends and at - early[0] < thresholds.sms_learning_period


def _unusual(
    state: SmsPumpingState, country: str | None, at: datetime, thresholds: DetectionThresholds
) -> bool:
    """Is a send at ``at`` to ``country`` unusual? Judged by the sends L or more older only."""
    if country is None:
        return False
    if country in thresholds.sms_premium_countries:
        return True
    if _learning(state.early, at, thresholds):
        return False
    first = state.countries.get(country)
    if first is None or first >= at - LATENESS:
        return True  # no send to it L or more earlier
    learnt = _learning(state.early, first, thresholds)
    return not (learnt or at - first >= thresholds.sms_adoption_period)


def fold_sms_pumping(
    state: SmsPumpingState, event: Event, thresholds: DetectionThresholds
) -> tuple[SmsPumpingState, list[Event]]:
    """Apply one event of one tenant's stream (the rules: docs/detections.md#sms-pumping)."""
    data = event.data
    if not isinstance(data, p.ChallengeSent) or data.channel not in thresholds.sms_channels:
        return state, []
    grid = sl.make_grid(thresholds.sms_window, thresholds.cooldown, LATENESS)
    key = (grid.slot, grid.period)
    base = state if state.grid == key else SmsPumpingState(grid=key)  # new numbering: afresh
    at, country = event.time, data.destination_country
    slot, newest = grid.slot_of(at), base.newest
    if newest is not None and slot < newest - grid.late:
        return state, []  # too late to count: more than L behind the newest
    unusual = _unusual(base, country, at, thresholds)
    early = base.early
    if len(early) < thresholds.sms_learning_sends or at < early[-1]:
        kept = list(early)
        insort(kept, at)
        early = tuple(kept[: thresholds.sms_learning_sends])
    countries = base.countries
    if country is not None and not (country in countries and countries[country] <= at):
        countries = {**countries, country: at}
    sends, unusual_sends = base.slots.get(slot, (0, 0))
    slots = {**base.slots, slot: (sends + 1, unusual_sends + unusual)}
    unusual_fired, burst_fired = base.unusual_fired, base.burst_fired
    fresh = {
        BURST: _fresh(slots, slot, grid.span - 1, 0, thresholds.sms_burst_count, burst_fired, grid)
    }
    if unusual:
        needed = thresholds.sms_unusual_count
        fresh[UNUSUAL] = _fresh(slots, slot, grid.span, 1, needed, unusual_fired, grid)
        unusual_fired = unusual_fired | frozenset(fresh[UNUSUAL])
    burst_fired = burst_fired | frozenset(fresh[BURST])
    derived = [
        _risk(event.tenant, rule, q, grid, thresholds)
        for rule in (UNUSUAL, BURST)
        for q in fresh.get(rule, ())
    ]
    if newest is None or slot > newest:  # forget what no send still to come can reach
        newest, lowest = slot, slot - grid.late
        first = grid.period_of(lowest)
        if min(slots) < lowest - grid.span:
            slots = {s: counts for s, counts in slots.items() if s >= lowest - grid.span}
        if min(unusual_fired, default=first) < first:
            unusual_fired = frozenset(q for q in unusual_fired if q >= first)
        if min(burst_fired, default=first) < first:
            burst_fired = frozenset(q for q in burst_fired if q >= first)
    state = SmsPumpingState(key, newest, early, countries, slots, unusual_fired, burst_fired)
    return state, derived


def _fresh(
    slots: Mapping[int, Counts],
    fresh: int,
    span: int,
    which: int,
    needed: int,
    fired: frozenset[int],
    grid: sl.Grid,
) -> list[int]:
    """The periods not yet ``fired`` in which a window of ``span + 1`` slots holding slot
    ``fresh`` (where a count grew) now meets ``needed``, counting ``slots[…][which]``."""
    found: list[int] = []
    none = (0, 0)
    for end in range(fresh, fresh + span + 1):
        q = grid.period_of(end)
        if not slots.get(end, none)[which] or q in fired or q in found:
            continue
        if sum(slots.get(s, none)[which] for s in range(end - span, end + 1)) >= needed:
            found.append(q)
    return found


def _risk(
    tenant: str, rule: str, period: int, grid: sl.Grid, thresholds: DetectionThresholds
) -> Event:
    """The detection of ``rule`` in ``period``: a function of its arguments alone."""
    start, window = grid.period_start(period), thresholds.sms_window
    channels = ", ".join(sorted(thresholds.sms_channels))
    if rule == UNUSUAL:
        needed, counted = thresholds.sms_unusual_count, grid.span + 1
        what = f"{needed} or more codes sent by {channels} to unusual or premium destinations"
    else:
        needed, counted = thresholds.sms_burst_count, grid.span
        what = f"{needed} or more codes sent by {channels}"
    summary = (
        f"{what} within {w.duration_text(window)} ({grid.slots_text(counted)}), in the "
        f"{w.duration_text(timedelta(seconds=grid.period))} from {start:%Y-%m-%d %H:%M} UTC"
    )
    evidence: dict[str, EvidenceValue] = {
        "rule": rule,
        "threshold": needed,
        "window_seconds": int(window.total_seconds()),
        "period_start": w.isoformat(start),
        "period_seconds": grid.period,
    }
    payload = p.RiskDetected(
        detection=Detection.SMS_PUMPING,
        severity=severity_for(SCORES[rule]),
        score=SCORES[rule],
        summary=summary,
        evidence=evidence,
    )
    key = f"{Detection.SMS_PUMPING}|{rule}|{tenant}|{grid.slot}|{grid.period}|{period}"
    return sl.derived_event(
        payload, source=SOURCE, tenant=tenant, subject=SUBJECT, at=start, what=key
    )
