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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from schemas import Event
from schemas.payloads import Detection, EvidenceValue
from streams.folds import window as w
from streams.folds.signals import client_of, completed_sign_in, risk_detected
from streams.folds.thresholds import DetectionThresholds

STATE_VERSION = 1


@dataclass(frozen=True)
class FamiliarityState:
    """What one subject's successful sign-ins taught one detection."""

    sign_ins: int = 0
    """Completed sign-ins seen, counted up to ``learning_sign_ins`` (then it stops)."""
    first_sign_in: datetime | None = None
    last_correlation: str | None = None
    known: tuple[tuple[str, datetime], ...] = ()
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
    if event.correlationid != state.last_correlation:
        first = state.first_sign_in if state.first_sign_in is not None else now
        sign_ins = min(state.sign_ins + 1, thresholds.learning_sign_ins)
        state = replace(state, sign_ins=sign_ins, first_sign_in=min(first, now))
        state = replace(state, last_correlation=event.correlationid)
    if value is None:
        return state, False
    known = dict(state.known)
    new = value not in known
    known[value] = max(now, known.get(value, now))
    if len(known) > limit:  # forget the least recently seen
        del known[min(known, key=lambda k: (known[k], k))]
    return replace(state, known=tuple(sorted(known.items()))), new and learnt


def _fold(
    state: FamiliarityState,
    event: Event,
    thresholds: DetectionThresholds,
    *,
    value_of: Callable[[Event], str | None],
    limit: int,
    describe: Callable[
        [Event, str, FamiliarityState], tuple[Detection, int, str, dict[str, EvidenceValue]]
    ],
) -> tuple[FamiliarityState, list[Event]]:
    if not completed_sign_in(event):
        return state, []
    before = state
    value = value_of(event)
    state, fires = _learn(state, event, thresholds, value, limit)
    if not fires or value is None:
        return state, []
    detection, score, summary, evidence = describe(event, value, before)
    evidence |= {"sign_ins_seen": before.sign_ins, "known_values": len(before.known)}
    if before.first_sign_in is not None:
        evidence["first_sign_in_at"] = before.first_sign_in.isoformat()
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
    described = " ".join(part for part in (kind, os_, browser) if part) or "unknown device"
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
    limit = thresholds.max_known_countries
    return _fold(
        state,
        event,
        thresholds,
        value_of=_country,
        limit=limit,
        describe=_describe_country,
    )


def fold_new_device(
    state: FamiliarityState, event: Event, thresholds: DetectionThresholds
) -> tuple[FamiliarityState, list[Event]]:
    """Apply one event to the subject's devices (see the module docstring)."""
    limit = thresholds.max_known_devices
    return _fold(state, event, thresholds, value_of=_device, limit=limit, describe=_describe_device)
