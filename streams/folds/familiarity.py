"""New country and new device: a successful sign-in from something the subject never used.

Rule (per subject, one state per detection): completed sign-ins teach the subject's
countries (``client.geo.country``) and devices (``client.device.id``). While learning — fewer
than ``learning_sign_ins`` earlier sign-ins and less than ``learning_period`` since the
first — nothing fires. Afterwards a sign-in from a value not remembered fires once; the
value is then remembered, so it does not fire again (that is the dedupe rule: once per new
value, no cool-down needed). Sign-ins without the value count towards learning but teach
nothing; a second completion of one login transaction (same ``correlationid``) counts
once. At most ``max_known_countries`` / ``max_known_devices`` values are remembered; the
least recently seen is forgotten first (and would fire again).

Scores: new country 50 (medium), new device 30 (low). The device id is personal data, so
the evidence names only its kind, OS and browser (the id is in ``client``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from schemas import Event
from schemas.payloads import Detection, EvidenceValue
from streams.folds import window as w
from streams.folds.signals import SIGN_IN_COMPLETIONS, client_of, completed_sign_in, risk_detected
from streams.folds.thresholds import DetectionThresholds

STATE_VERSION = 1
READS = SIGN_IN_COMPLETIONS
"""The payloads both folds read; any other event leaves the state as it is (``is``)."""
Seen = tuple[tuple[str, datetime], ...]


@dataclass(frozen=True, slots=True)
class FamiliarityState:
    """What one subject's successful sign-ins taught one detection."""

    sign_ins: int = 0
    """Completed sign-ins seen, counted up to ``learning_sign_ins`` (then it stops)."""
    first_sign_in: datetime | None = None
    last_correlation: str | None = None
    known: Seen = ()
    """(value, last seen), sorted by value."""

    def learning_over(self, now: datetime, thresholds: DetectionThresholds) -> bool:
        if self.sign_ins >= thresholds.learning_sign_ins:
            return True
        first = self.first_sign_in
        return first is not None and now - first >= thresholds.learning_period

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "sign_ins": self.sign_ins,
            "first_sign_in": w.iso(self.first_sign_in),
            "last_correlation": self.last_correlation,
            "known": w.seen_to_json(self.known),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FamiliarityState:
        w.check_version(data, STATE_VERSION)
        return cls(
            sign_ins=w.count(data, "sign_ins"),
            first_sign_in=w.optional_time(data, "first_sign_in"),
            last_correlation=w.optional_str(data, "last_correlation"),
            known=w.seen_from_json(data, "known"),
        )


def _country(event: Event) -> str | None:
    client = client_of(event)
    return client.geo.country if client is not None and client.geo is not None else None


def _device(event: Event) -> str | None:
    client = client_of(event)
    return client.device.id if client is not None and client.device is not None else None


def _learn(
    state: FamiliarityState,
    event: Event,
    thresholds: DetectionThresholds,
    value: str | None,
    limit: int,
) -> tuple[FamiliarityState, bool]:
    """The state after one completed sign-in, and whether ``value`` is new after learning."""
    now = event.time
    learnt = state.learning_over(now, thresholds)
    sign_ins, first, correlation = state.sign_ins, state.first_sign_in, state.last_correlation
    same_login = event.correlationid == correlation
    if not same_login:
        first = now if first is None or now < first else first
        sign_ins = min(sign_ins + 1, thresholds.learning_sign_ins)
        correlation = event.correlationid
    known, new = state.known, False
    if value is not None:
        known, new = _seen(known, value, now, limit)
    if same_login and known is state.known:
        return state, False  # a second completion of one login, nothing newer to learn
    return FamiliarityState(sign_ins, first, correlation, known), new and learnt


_value_of = itemgetter(0)
_last_seen = itemgetter(1)


def _seen(known: Seen, value: str, now: datetime, limit: int) -> tuple[Seen, bool]:
    """``known`` (sorted by value) with ``value`` seen at ``now``, and whether it is new;
    past ``limit`` values the least recently seen (then the smallest) is forgotten."""
    at = bisect_left(known, value, key=_value_of)
    new = at == len(known) or known[at][0] != value
    if new:
        seen = (*known[:at], (value, now), *known[at:])
    elif known[at][1] >= now and len(known) <= limit:
        return known, False  # seen already, as late or later (events out of order)
    else:
        seen = (*known[:at], (value, max(now, known[at][1])), *known[at + 1 :])
    if len(seen) > limit:  # forget the least recently seen, the first in value order
        times = list(map(_last_seen, seen))
        oldest = times.index(min(times))
        seen = (*seen[:oldest], *seen[oldest + 1 :])
    return seen, new


Describe = Callable[
    [Event, str, FamiliarityState], tuple[Detection, int, str, dict[str, EvidenceValue]]
]


def _fold(
    state: FamiliarityState,
    event: Event,
    thresholds: DetectionThresholds,
    value: str | None,
    limit: int,
    describe: Describe,
) -> tuple[FamiliarityState, list[Event]]:
    """One completed sign-in (``value``: what it was from) learnt, and reported if new."""
    before = state
    state, fires = _learn(state, event, thresholds, value, limit)
    if not fires or value is None:
        return state, []
    detection, score, summary, evidence = describe(event, value, before)
    evidence |= {"sign_ins_seen": before.sign_ins, "known_values": len(before.known)}
    if before.first_sign_in is not None:
        evidence["first_sign_in_at"] = w.isoformat(before.first_sign_in)
    risk = risk_detected(
        event,
        detection,
        score=score,
        summary=summary,
        evidence=evidence,
        related=[event.id],
        max_related=thresholds.max_related_events,
    )
    return state, [risk]


def _describe_country(
    event: Event, country: str, before: FamiliarityState
) -> tuple[Detection, int, str, dict[str, EvidenceValue]]:
    known = ",".join(value for value, _ in before.known)
    summary = f"Successful sign-in from {country}, a country not seen before (known: {known})"
    evidence: dict[str, EvidenceValue] = {"country": country, "known_countries": known}
    return Detection.NEW_COUNTRY, 50, summary, evidence


def _describe_device(
    event: Event, _device_id: str, before: FamiliarityState
) -> tuple[Detection, int, str, dict[str, EvidenceValue]]:
    client = client_of(event)
    device = client.device if client is not None else None
    kind = device.kind if device is not None else None
    os_ = device.os if device is not None else None
    browser = device.browser if device is not None else None
    described = " ".join([part for part in (kind, os_, browser) if part]) or "unknown device"
    summary = f"Successful sign-in from a device not seen before ({described})"
    evidence: dict[str, EvidenceValue] = {
        "device_kind": kind,
        "device_os": os_,
        "device_browser": browser,
    }
    return Detection.NEW_DEVICE, 30, summary, evidence


def fold_new_country(
    state: FamiliarityState, event: Event, thresholds: DetectionThresholds
) -> tuple[FamiliarityState, list[Event]]:
    """Apply one event to the subject's countries (see the module docstring)."""
    if not completed_sign_in(event):
        return state, []
    return new_country_at_sign_in(state, event, thresholds)


def new_country_at_sign_in(
    state: FamiliarityState, event: Event, thresholds: DetectionThresholds
) -> tuple[FamiliarityState, list[Event]]:
    """:func:`fold_new_country` of an event known to complete a sign-in."""
    limit = thresholds.max_known_countries
    return _fold(state, event, thresholds, _country(event), limit, _describe_country)


def fold_new_device(
    state: FamiliarityState, event: Event, thresholds: DetectionThresholds
) -> tuple[FamiliarityState, list[Event]]:
    """Apply one event to the subject's devices (see the module docstring)."""
    if not completed_sign_in(event):
        return state, []
    return new_device_at_sign_in(state, event, thresholds)


def new_device_at_sign_in(
    state: FamiliarityState, event: Event, thresholds: DetectionThresholds
) -> tuple[FamiliarityState, list[Event]]:
    """:func:`fold_new_device` of an event known to complete a sign-in."""
    limit = thresholds.max_known_devices
    return _fold(state, event, thresholds, _device(event), limit, _describe_device)
