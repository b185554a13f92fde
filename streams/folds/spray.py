"""Password spray: one IP failing first-factor sign-ins against many people.

Rule (per client IP, :func:`~streams.folds.signals.spray_key`): each failed
``auth.login.attempted`` marks its subject (``tenant/subject``: subjects of different
tenants are different people); when ``spray_min_subjects`` distinct subjects have a failure
from the IP within ``spray_window`` (inclusive), it fires — score 75 (high). Repeated
failures against one subject count once (that is guessing, the lockout fold's business).
Cool-down: ``cooldown`` per IP. The state keeps the newest failure of at most
``spray_min_subjects`` subjects, exactly what the rule needs.

Envelope: the derived event is the trigger's — its tenant and subject are those of the
failure that completed the count (``partitionkey`` of the trigger), and the IP is in
``client``. ``related_event_ids`` lists only failures of the trigger's tenant (tenants do
not see each other's events); the evidence counts subjects and tenants across all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas import Event
from schemas.payloads import Detection, EvidenceValue
from streams.folds import window as w
from streams.folds.signals import risk_detected, spray_key
from streams.folds.thresholds import DetectionThresholds

STATE_VERSION = 1


@dataclass(frozen=True)
class SprayState:
    """One IP's recent failed logins: the newest per subject (label: ``tenant/subject``)."""

    marks: w.Marks = ()
    last_fired: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "marks": w.marks_to_json(self.marks),
            "last_fired": w.iso(self.last_fired),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SprayState:
        w.check_version(data, STATE_VERSION)
        return cls(w.marks_from_json(data, "marks"), w.optional_time(data, "last_fired"))


def fold_password_spray(
    state: SprayState, event: Event, thresholds: DetectionThresholds
) -> tuple[SprayState, list[Event]]:
    """Apply one event of one IP's stream (see the module docstring for the rule)."""
    ip = spray_key(event)
    if ip is None:
        return state, []
    now, window, needed = event.time, thresholds.spray_window, thresholds.spray_min_subjects
    mark = w.Mark(now, event.id, event.partitionkey)
    marks = w.latest_per_label((*state.marks, mark), now=now, window=window, keep=needed)
    if len(marks) < needed or not w.cooled(state.last_fired, now, thresholds.cooldown):
        return SprayState(marks, state.last_fired), []
    tenants = sorted({m.label.split("/", 1)[0] for m in marks})
    summary = (
        f"Failed sign-ins against {len(marks)} different subjects from one IP within "
        f"{w.duration_text(marks[-1].at - marks[0].at)} (threshold {needed} in "
        f"{w.duration_text(window)})"
    )
    evidence: dict[str, EvidenceValue] = {
        "distinct_subjects": len(marks),
        "tenant_subjects": sum(m.label.startswith(f"{event.tenant}/") for m in marks),
        "tenants": len(tenants),
        "window_seconds": int(window.total_seconds()),
        "threshold": needed,
        "first_at": marks[0].at.isoformat(),
    }
    risk = risk_detected(
        event,
        Detection.PASSWORD_SPRAY,
        score=75,
        summary=summary,
        evidence=evidence,
        related=[m.event_id for m in marks if m.label.startswith(f"{event.tenant}/")],
        max_related=thresholds.max_related_events,
    )
    return SprayState(marks, now), [risk]
