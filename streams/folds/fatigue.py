"""Push fatigue: a subject bombarded with push approvals they keep rejecting or ignoring.

Rule (per subject): ``mfa.push.rejected`` and ``mfa.push.expired`` events are marked; when
``push_fatigue_count`` marks lie within ``push_fatigue_window`` (inclusive), it fires —
score 60 (medium). Cool-down: ``cooldown`` per subject. Then, if the person gives in — an
``mfa.push.approved`` within ``push_fatigue_window`` of that firing — it fires once more,
score 95 (critical), as the likely moment an attacker got in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas import Event
from schemas import payloads as p
from schemas.payloads import Detection
from streams.folds import window as w
from streams.folds.signals import risk_detected
from streams.folds.thresholds import DetectionThresholds

STATE_VERSION = 1
READS = (p.PushApproved, p.PushRejected, p.PushExpired)
"""The payloads this fold reads; any other event leaves the state as it is (``is``)."""


@dataclass(frozen=True, slots=True)
class PushFatigueState:
    """One subject's recent unanswered or refused pushes."""

    marks: w.Marks = ()
    """Rejected or expired pushes in the window (label ``rejected`` or ``expired``)."""
    last_fired: datetime | None = None
    approval_reported: bool = False
    """Whether the approval after the last firing was reported already."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "marks": w.marks_to_json(self.marks),
            "last_fired": w.iso(self.last_fired),
            "approval_reported": self.approval_reported,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PushFatigueState:
        w.check_version(data, STATE_VERSION)
        reported = data.get("approval_reported", False)
        if not isinstance(reported, bool):
            raise ValueError(f"approval_reported: expected true or false, found {reported!r}")
        return cls(
            marks=w.marks_from_json(data, "marks"),
            last_fired=w.optional_time(data, "last_fired"),
            approval_reported=reported,
        )


def _evidence(marks: w.Marks, thresholds: DetectionThresholds) -> dict[str, Any]:
    labels = [m.label for m in marks]
    return {
        "rejected": labels.count("rejected"),
        "expired": labels.count("expired"),
        "window_seconds": int(thresholds.push_fatigue_window.total_seconds()),
        "threshold": thresholds.push_fatigue_count,
        "first_at": w.isoformat(marks[0].at) if marks else None,
    }


def fold_push_fatigue(
    state: PushFatigueState, event: Event, thresholds: DetectionThresholds
) -> tuple[PushFatigueState, list[Event]]:
    """Apply one event (see the module docstring for the rule)."""
    data, now = event.data, event.time
    window, needed = thresholds.push_fatigue_window, thresholds.push_fatigue_count
    if isinstance(data, p.PushApproved):
        fired = state.last_fired
        if fired is None or state.approval_reported or not (now - fired <= window):
            return state, []
        marks = w.slide(state.marks, now=now, window=window, keep=needed)
        evidence = _evidence(marks, thresholds)
        evidence["approved_after_seconds"] = int((now - fired).total_seconds())
        risk = risk_detected(
            event,
            Detection.PUSH_FATIGUE,
            score=95,
            summary=(
                f"Push approved {w.duration_text(now - fired)} after push fatigue was "
                f"detected ({len(marks)} rejected or expired pushes still in the window)"
            ),
            evidence=evidence,
            related=[m.event_id for m in marks] + [event.id],
            max_related=thresholds.max_related_events,
            what="approved",
        )
        return PushFatigueState(marks, fired, True), [risk]
    if isinstance(data, p.PushRejected):
        label = "rejected"
    elif isinstance(data, p.PushExpired):
        label = "expired"
    else:
        return state, []
    mark = w.Mark(now, event.id, label)
    marks = w.add(state.marks, mark, now=now, window=window, keep=needed)
    if len(marks) < needed or not w.cooled(state.last_fired, now, thresholds.cooldown):
        return PushFatigueState(marks, state.last_fired, state.approval_reported), []
    evidence = _evidence(marks, thresholds)
    risk = risk_detected(
        event,
        Detection.PUSH_FATIGUE,
        score=60,
        summary=(
            f"{len(marks)} push challenges rejected or expired within "
            f"{w.duration_text(marks[-1].at - marks[0].at)} (threshold {needed} "
            f"in {w.duration_text(window)})"
        ),
        evidence=evidence,
        related=[m.event_id for m in marks],
        max_related=thresholds.max_related_events,
    )
    return PushFatigueState(marks, now, False), [risk]
