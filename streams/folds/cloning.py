"""Possible cloned authenticator: a WebAuthn signature counter that went backwards.

Rule (per subject): an ``mfa.verification.failed`` with reason ``sign_count_regression``
(the verifier refused it) fires with score 70 (high); an ``mfa.verification.succeeded``
whose ``flags`` include ``sign_count_regression``, or whose ``sign_count`` and
``previous_sign_count`` show one (not above the previous, one of them non-zero: WebAuthn
§6.1.1), was let in and fires with score 90 (critical). Cool-down: ``cooldown`` per
credential (``enrollment_id``; events without one share a key), at most
``MAX_CREDENTIALS`` credentials remembered.
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
from streams.folds.signals import risk_detected
from streams.folds.thresholds import DetectionThresholds

STATE_VERSION = 1
REGRESSION = "sign_count_regression"
MAX_CREDENTIALS = 16
UNKNOWN_CREDENTIAL = "-"
READS = (p.VerificationFailed, p.VerificationSucceeded)
"""The payloads this fold reads; any other event leaves the state as it is (``is``)."""


@dataclass(frozen=True, slots=True)
class CloningState:
    """When the detection last fired per credential of one subject."""

    fired: tuple[tuple[str, datetime], ...] = ()
    """(enrollment id, last firing), sorted by enrollment id."""

    def to_dict(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "fired": w.seen_to_json(self.fired)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CloningState:
        w.check_version(data, STATE_VERSION)
        return cls(w.seen_from_json(data, "fired"))


def _regressed(count: int | None, previous: int | None) -> bool:
    if count is None or previous is None:
        return False
    return (count > 0 or previous > 0) and count <= previous


def fold_cloned_authenticator(
    state: CloningState, event: Event, thresholds: DetectionThresholds
) -> tuple[CloningState, list[Event]]:
    """Apply one event (see the module docstring for the rule)."""
    data = event.data
    if isinstance(data, p.VerificationFailed) and data.reason == REGRESSION:
        accepted, score = False, 70
    elif isinstance(data, p.VerificationSucceeded) and (
        REGRESSION in data.flags or _regressed(data.sign_count, data.previous_sign_count)
    ):
        accepted, score = True, 90
    else:
        return state, []
    credential = data.enrollment_id or UNKNOWN_CREDENTIAL
    fired = dict(state.fired)
    if not w.cooled(fired.get(credential), event.time, thresholds.cooldown):
        return state, []
    fired[credential] = event.time
    if len(fired) > MAX_CREDENTIALS:
        del fired[min(fired, key=lambda k: (fired[k], k))]
    authenticator = getattr(data, "authenticator", None)
    evidence: dict[str, EvidenceValue] = {
        "factor": str(data.factor),
        "enrollment_id": data.enrollment_id,
        "sign_count": data.sign_count,
        "previous_sign_count": data.previous_sign_count,
        "accepted": accepted,
        "aaguid": authenticator.aaguid if isinstance(authenticator, p.Authenticator) else None,
    }
    counts = ""
    if data.sign_count is not None and data.previous_sign_count is not None:
        counts = f" ({data.sign_count} after {data.previous_sign_count})"
    outcome = "accepted" if accepted else "refused"
    summary = f"Authenticator signature counter went backwards{counts}; sign-in {outcome}"
    risk = risk_detected(
        event,
        Detection.CLONED_AUTHENTICATOR,
        score=score,
        summary=summary,
        evidence=evidence,
        related=[event.id],
        max_related=thresholds.max_related_events,
    )
    return CloningState(tuple(sorted(fired.items()))), [risk]
