"""OTP guessing and recovery-code abuse: too many wrong codes, too many codes used.

OTP guessing (per subject): ``mfa.verification.failed`` on a code factor (TOTP, SMS, voice,
e-mail) with a reason in ``otp_guess_reasons`` is marked; ``otp_guess_count`` marks within
``otp_guess_window`` fire — score 65 (medium). It complements the lockout fold rather than
repeating it: it spans factors, a success does not reset it, refusals of a locked subject
(``locked_out``) are not guesses, and it reports where the lockout only slows the guesser
(with the default 5 per factor and 15 min, a patient guesser still gets ~20 codes an hour).

Recovery-code abuse (per subject), two rules with separate cool-downs:
``recovery_failure_count`` failed recovery codes (any reason but ``locked_out``) within
``recovery_failure_window`` — score 70 (high); ``recovery_success_count`` recovery codes
used within ``recovery_success_window`` — score 50 (medium): codes are for emergencies,
and burning through them is how an attacker holding a printed list gets in repeatedly.

Cool-down: ``cooldown`` per subject and rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas import Event
from schemas import payloads as p
from schemas.payloads import Detection, EvidenceValue
from streams.folds import window as w
from streams.folds.signals import OTP_CODE_FACTORS, risk_detected
from streams.folds.thresholds import DetectionThresholds

STATE_VERSION = 1
NOT_GUESSES = p.NOT_EVALUATED_REASONS
"""Failure reasons of attempts refused before any code was checked."""
OTP_READS = (p.VerificationFailed,)
"""The payloads OTP guessing reads; any other event leaves its state as it is (``is``)."""
RECOVERY_READS = (p.RecoveryFailed, p.RecoverySucceeded)
"""The payloads recovery-code abuse reads, likewise."""


@dataclass(frozen=True, slots=True)
class OtpGuessingState:
    """One subject's recent wrong codes (label: the factor)."""

    wrong_codes: w.BurstCounter = w.BurstCounter()

    def to_dict(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "wrong_codes": self.wrong_codes.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OtpGuessingState:
        w.check_version(data, STATE_VERSION)
        return cls(w.BurstCounter.from_dict(w.nested(data, "wrong_codes")))


@dataclass(frozen=True, slots=True)
class RecoveryAbuseState:
    """One subject's recent failed and used recovery codes (label: the reason)."""

    failures: w.BurstCounter = w.BurstCounter()
    successes: w.BurstCounter = w.BurstCounter()

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "failures": self.failures.to_dict(),
            "successes": self.successes.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecoveryAbuseState:
        w.check_version(data, STATE_VERSION)
        return cls(
            failures=w.BurstCounter.from_dict(w.nested(data, "failures")),
            successes=w.BurstCounter.from_dict(w.nested(data, "successes")),
        )


def _labels(marks: w.Marks) -> str:
    """``sms=3,totp=7``: how many marks carry each label."""
    counts = Counter(m.label for m in marks)
    return ",".join(f"{label}={n}" for label, n in sorted(counts.items()))


def fold_otp_guessing(
    state: OtpGuessingState, event: Event, thresholds: DetectionThresholds
) -> tuple[OtpGuessingState, list[Event]]:
    """Apply one event (see the module docstring for the rule)."""
    data = event.data
    if not (
        isinstance(data, p.VerificationFailed)
        and data.factor in OTP_CODE_FACTORS
        and data.reason in thresholds.otp_guess_reasons
        and data.reason not in NOT_GUESSES
    ):
        return state, []
    window = thresholds.otp_guess_window
    counter, fires = state.wrong_codes.count(
        w.Mark(event.time, event.id, str(data.factor)),
        window=window,
        needed=thresholds.otp_guess_count,
        cooldown=thresholds.cooldown,
    )
    state = OtpGuessingState(counter)
    if not fires:
        return state, []
    marks = counter.marks
    summary = (
        f"{len(marks)} wrong one-time codes within {w.duration_text(marks[-1].at - marks[0].at)}"
        f" (threshold {thresholds.otp_guess_count} in {w.duration_text(window)})"
    )
    evidence: dict[str, EvidenceValue] = {
        "wrong_codes": len(marks),
        "by_factor": _labels(marks),
        "window_seconds": int(window.total_seconds()),
        "threshold": thresholds.otp_guess_count,
        "first_at": w.isoformat(marks[0].at),
    }
    risk = risk_detected(
        event,
        Detection.OTP_GUESSING,
        score=65,
        summary=summary,
        evidence=evidence,
        related=[m.event_id for m in marks],
        max_related=thresholds.max_related_events,
    )
    return state, [risk]


def fold_recovery_code_abuse(
    state: RecoveryAbuseState, event: Event, thresholds: DetectionThresholds
) -> tuple[RecoveryAbuseState, list[Event]]:
    """Apply one event (see the module docstring for the rules)."""
    data = event.data
    if isinstance(data, p.RecoveryFailed) and data.reason not in NOT_GUESSES:
        window, needed = thresholds.recovery_failure_window, thresholds.recovery_failure_count
        counter, fires = state.failures.count(
            w.Mark(event.time, event.id, data.reason),
            window=window,
            needed=needed,
            cooldown=thresholds.cooldown,
        )
        state = RecoveryAbuseState(counter, state.successes)
        what, score, noun = "failures", 70, "failed recovery codes"
    elif isinstance(data, p.RecoverySucceeded):
        window, needed = thresholds.recovery_success_window, thresholds.recovery_success_count
        counter, fires = state.successes.count(
            w.Mark(event.time, event.id, "used"),
            window=window,
            needed=needed,
            cooldown=thresholds.cooldown,
        )
        state = RecoveryAbuseState(state.failures, counter)
        what, score, noun = "successes", 50, "recovery codes used"
    else:
        return state, []
    if not fires:
        return state, []
    marks = counter.marks
    evidence: dict[str, Any] = {
        "pattern": what,
        "count": len(marks),
        "by_reason": _labels(marks),
        "window_seconds": int(window.total_seconds()),
        "threshold": needed,
        "first_at": w.isoformat(marks[0].at),
    }
    if isinstance(data, p.RecoverySucceeded):
        evidence["codes_remaining"] = data.codes_remaining
    summary = (
        f"{len(marks)} {noun} within {w.duration_text(marks[-1].at - marks[0].at)}"
        f" (threshold {needed} in {w.duration_text(window)})"
    )
    risk = risk_detected(
        event,
        Detection.RECOVERY_CODE_ABUSE,
        score=score,
        summary=summary,
        evidence=evidence,
        related=[m.event_id for m in marks],
        max_related=thresholds.max_related_events,
        what=what,
    )
    return state, [risk]
