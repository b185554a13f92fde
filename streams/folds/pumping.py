"""SMS pumping (toll fraud): bursts of codes sent to destinations a tenant does not serve.

Rules (per tenant, :func:`~streams.folds.signals.sms_pumping_key`), over
``mfa.challenge.sent`` on a channel in ``sms_channels``:

* **Usual countries** are learnt from the tenant's first sends (fewer than
  ``sms_learning_sends`` earlier sends and less than ``sms_learning_period`` since the
  first): every ``destination_country`` seen then is usual. Afterwards a new country is
  unusual until ``sms_adoption_period`` after its first send, when it becomes usual.
  Countries in ``sms_premium_countries`` are always unusual.
* **Unusual destinations**: ``sms_unusual_count`` sends to unusual countries within
  ``sms_window`` (inclusive) fire — score 75 (high).
* **Burst rate**: ``sms_burst_count`` sends of any destination within ``sms_window`` fire —
  score 60 (medium). Counted per whole UTC minute: the event's minute and the minutes
  before it, ``ceil(sms_window / 1 min)`` minutes in all, so the state holds at most that
  many counters however many codes a tenant sends.

Cool-down: ``cooldown`` per tenant and rule. Envelope: the derived event is the trigger's
(the tenant, and the subject whose send completed the burst).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from schemas import Event
from schemas import payloads as p
from schemas.payloads import Detection, EvidenceValue
from streams.folds import window as w
from streams.folds.signals import risk_detected
from streams.folds.thresholds import DetectionThresholds

STATE_VERSION = 1
MAX_PENDING = 250
"""Unusual countries awaiting adoption that are remembered (there are ~250 countries)."""


@dataclass(frozen=True)
class SmsPumpingState:
    """One tenant's SMS destinations and recent sends."""

    sends: int = 0
    """Sends seen, counted up to ``sms_learning_sends`` (then it stops)."""
    first_send: datetime | None = None
    usual: tuple[str, ...] = ()
    """Usual destination countries, sorted."""
    pending: tuple[tuple[str, datetime], ...] = ()
    """Unusual countries and their first send after learning, sorted by country."""
    unusual: w.BurstCounter = w.BurstCounter()
    """Recent sends to unusual countries (label: the country)."""
    minutes: tuple[tuple[int, int], ...] = ()
    """(Unix minute, sends) of the burst window, oldest first."""
    burst_fired: datetime | None = None

    def learning(self, now: datetime, thresholds: DetectionThresholds) -> bool:
        if self.sends >= thresholds.sms_learning_sends:
            return False
        first = self.first_send
        return first is None or now - first < thresholds.sms_learning_period

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "sends": self.sends,
            "first_send": w.iso(self.first_send),
            "usual": list(self.usual),
            "pending": w.seen_to_json(self.pending),
            "unusual": self.unusual.to_dict(),
            "minutes": [[minute, n] for minute, n in self.minutes],
            "burst_fired": w.iso(self.burst_fired),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SmsPumpingState:
        w.check_version(data, STATE_VERSION)
        minutes = data.get("minutes", [])
        if not isinstance(minutes, list) or not all(
            isinstance(item, list)
            and len(item) == 2
            and all(type(v) is int and v >= 0 for v in item)
            for item in minutes
        ):
            raise ValueError(f"minutes: expected [[minute, count], ...], found {minutes!r}")
        return cls(
            sends=w.count(data, "sends"),
            first_send=w.optional_time(data, "first_send"),
            usual=tuple(sorted(w.string_list(data, "usual"))),
            pending=w.seen_from_json(data, "pending"),
            unusual=w.BurstCounter.from_dict(w.nested(data, "unusual")),
            minutes=tuple(sorted((m, n) for m, n in minutes)),
            burst_fired=w.optional_time(data, "burst_fired"),
        )


def _classify(
    state: SmsPumpingState, country: str | None, now: datetime, thresholds: DetectionThresholds
) -> tuple[SmsPumpingState, bool]:
    """The state after learning from ``country``, and whether the send is unusual."""
    learning = state.learning(now, thresholds)
    first = now if state.first_send is None else min(state.first_send, now)
    sends = min(state.sends + 1, thresholds.sms_learning_sends)
    state = replace(state, sends=sends, first_send=first)
    if country is None:
        return state, False
    premium = country in thresholds.sms_premium_countries
    if learning or country in state.usual:
        if country not in state.usual:
            state = replace(state, usual=tuple(sorted({*state.usual, country})))
        return state, premium
    pending = dict(state.pending)
    since = min(pending.get(country, now), now)
    if now - since >= thresholds.sms_adoption_period:
        del pending[country]
        usual = tuple(sorted({*state.usual, country}))
        return replace(state, usual=usual, pending=tuple(sorted(pending.items()))), premium
    pending[country] = since
    if len(pending) > MAX_PENDING:
        del pending[min(pending, key=lambda k: (pending[k], k))]
    return replace(state, pending=tuple(sorted(pending.items()))), True


def _count_minute(
    state: SmsPumpingState, now: datetime, thresholds: DetectionThresholds
) -> tuple[SmsPumpingState, int]:
    """The send counted in its minute; the sends of the burst window."""
    minute = int(now.timestamp() // 60)
    span = math.ceil(thresholds.sms_window.total_seconds() / 60)
    counts = dict(state.minutes)
    counts[minute] = counts.get(minute, 0) + 1
    current = max(counts)
    kept = tuple(sorted((m, n) for m, n in counts.items() if m > current - span))
    total = sum(n for m, n in kept if minute - span < m <= minute)
    return replace(state, minutes=kept), total


def fold_sms_pumping(
    state: SmsPumpingState, event: Event, thresholds: DetectionThresholds
) -> tuple[SmsPumpingState, list[Event]]:
    """Apply one event of one tenant's stream (see the module docstring for the rules)."""
    data = event.data
    if not isinstance(data, p.ChallengeSent) or data.channel not in thresholds.sms_channels:
        return state, []
    now, window, country = event.time, thresholds.sms_window, data.destination_country
    state, unusual = _classify(state, country, now, thresholds)
    state, total = _count_minute(state, now, thresholds)
    derived: list[Event] = []
    if unusual and country is not None:
        needed = thresholds.sms_unusual_count
        counter, fires = state.unusual.count(
            w.Mark(now, event.id, country),
            window=window,
            needed=needed,
            cooldown=thresholds.cooldown,
        )
        state = replace(state, unusual=counter)
        if fires:
            marks = counter.marks
            by_country = Counter(m.label for m in marks)
            listed = ", ".join(f"{c}={n}" for c, n in sorted(by_country.items()))
            evidence: dict[str, EvidenceValue] = {
                "rule": "unusual_destination",
                "sends": len(marks),
                "by_country": listed.replace(" ", ""),
                "premium_countries": sum(c in thresholds.sms_premium_countries for c in by_country),
                "usual_countries": ",".join(state.usual[:20]),
                "window_seconds": int(window.total_seconds()),
                "threshold": needed,
                "first_at": marks[0].at.isoformat(),
            }
            summary = (
                f"{len(marks)} codes sent by {data.channel} to unusual or premium destinations"
                f" ({listed}) within {w.duration_text(marks[-1].at - marks[0].at)}"
            )
            derived.append(_risk(event, thresholds, 75, summary, evidence, marks, "unusual"))
    needed = thresholds.sms_burst_count
    if total >= needed and w.cooled(state.burst_fired, now, thresholds.cooldown):
        state = replace(state, burst_fired=now)
        evidence = {
            "rule": "burst_rate",
            "sends": total,
            "window_seconds": int(window.total_seconds()),
            "threshold": needed,
        }
        summary = (
            f"{total} codes sent by {', '.join(sorted(thresholds.sms_channels))} within "
            f"{w.duration_text(window)} (threshold {needed})"
        )
        derived.append(_risk(event, thresholds, 60, summary, evidence, (), "burst"))
    return state, derived


def _risk(
    event: Event,
    thresholds: DetectionThresholds,
    score: int,
    summary: str,
    evidence: dict[str, EvidenceValue],
    marks: w.Marks,
    what: str,
) -> Event:
    return risk_detected(
        event,
        Detection.SMS_PUMPING,
        score=score,
        summary=summary,
        evidence=evidence,
        related=[m.event_id for m in marks] + [event.id],
        max_related=thresholds.max_related_events,
        what=what,
    )
