"""Factor reset or removal shortly after a risky sign-in: the account-takeover follow-up.

Rule (per subject): a ``risk.detected`` for the subject (``partitionkey``) whose detection
is in ``reset_risk_detections`` and severity at least ``reset_min_severity`` is marked;
an ``mfa.enrollment.removed`` or ``mfa.recovery.regenerated`` within ``reset_window`` after
a marked risk (at or after its time) fires, naming the highest-scored such risk (the
latest among equals). Score: 10 above that risk's, at least 75 (high), at most 100. A
risk already marked (same event id: the stream may deliver the folds' own derived events
back) is ignored. Cool-down: ``cooldown`` per subject. The state keeps the ``MAX_RISKS``
newest risks inside the window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas import Event
from schemas import payloads as p
from schemas.payloads import Detection, EvidenceValue
from streams.folds import window as w
from streams.folds.signals import SEVERITY_RANK, risk_detected
from streams.folds.thresholds import DetectionThresholds

STATE_VERSION = 1
MAX_RISKS = 10
READS = (p.RiskDetected, p.EnrollmentRemoved, p.RecoveryRegenerated)
"""The payloads this fold reads; any other event leaves the state as it is (``is``)."""


@dataclass(frozen=True, slots=True)
class FactorResetState:
    """One subject's recent risks (label ``detection:score``) and last firing."""

    risks: w.Marks = ()
    last_fired: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "risks": w.marks_to_json(self.risks),
            "last_fired": w.iso(self.last_fired),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FactorResetState:
        w.check_version(data, STATE_VERSION)
        risks = w.marks_from_json(data, "risks")
        for mark in risks:
            _parse_label(mark.label)
        return cls(risks, w.optional_time(data, "last_fired"))


def _parse_label(label: str) -> tuple[Detection, int]:
    detection, _, score = label.partition(":")
    if not score.isdigit():
        raise ValueError(f"risks: expected detection:score labels, found {label!r}")
    return Detection(detection), int(score)


def fold_factor_reset_after_risk(
    state: FactorResetState, event: Event, thresholds: DetectionThresholds
) -> tuple[FactorResetState, list[Event]]:
    """Apply one event (see the module docstring for the rule)."""
    data, now, window = event.data, event.time, thresholds.reset_window
    if isinstance(data, p.RiskDetected):
        rank = SEVERITY_RANK[data.severity]
        if (
            data.detection not in thresholds.reset_risk_detections
            or rank < SEVERITY_RANK[thresholds.reset_min_severity]
            or event.id in [m.event_id for m in state.risks]
        ):
            return state, []
        mark = w.Mark(now, event.id, f"{data.detection}:{data.score}")
        risks = w.add(state.risks, mark, now=now, window=window, keep=MAX_RISKS)
        return FactorResetState(risks, state.last_fired), []
    if not isinstance(data, p.EnrollmentRemoved | p.RecoveryRegenerated):
        return state, []
    risks = w.slide(state.risks, now=now, window=window, keep=MAX_RISKS)
    state = FactorResetState(risks, state.last_fired)
    before = [m for m in risks if m.at <= now]
    if not before or not w.cooled(state.last_fired, now, thresholds.cooldown):
        return state, []
    worst = max(before, key=lambda m: (_parse_label(m.label)[1], m.at))
    detection, risk_score = _parse_label(worst.label)
    if isinstance(data, p.EnrollmentRemoved):
        change = f"Removal of a {data.factor} enrollment"
        evidence: dict[str, EvidenceValue] = {
            "change": "enrollment_removed",
            "factor": str(data.factor),
            "enrollment_id": data.enrollment_id,
            "reason": data.reason,
            "removed_by": data.removed_by,
        }
    else:
        change = "Regeneration of recovery codes"
        evidence = {"change": "recovery_regenerated", "code_count": data.code_count}
    evidence |= {
        "risk_detection": str(detection),
        "risk_score": risk_score,
        "risks_in_window": len(before),
        "seconds_since_risk": int((now - worst.at).total_seconds()),
        "window_seconds": int(window.total_seconds()),
    }
    summary = (
        f"{change} {w.duration_text(now - worst.at)} after a risky sign-in "
        f"({detection}, score {risk_score})"
    )
    risk = risk_detected(
        event,
        Detection.FACTOR_RESET_AFTER_RISK,
        score=min(100, max(75, risk_score + 10)),
        summary=summary,
        evidence=evidence,
        related=[m.event_id for m in before] + [event.id],
        max_related=thresholds.max_related_events,
    )
    return FactorResetState(risks, now), [risk]
