"""The controls of each framework, answered from ledger events: pure functions, no I/O.

Each control gets the events of the period (and, where the question is about a state,
the events before it) and returns a :class:`ControlResult`: the question, the answer,
a status, and one :class:`EvidenceRow` per event that supports or contradicts it. Every
row names a ledger event, so the pack can prove it; a row may name a second event
(``related_event_id``, e.g. the MFA verification of a sign-in), which is proven too.

What counts as privileged, successful MFA and phishing-resistant is the lake's
definition (:mod:`analytics.columns`), so the dashboard and the packs agree.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from analytics.columns import PHISHING_RESISTANT, PRIVILEGED_ROLES, SUCCESS_TYPES
from schemas.registry import BY_NAME, personal_paths

Status = Literal["met", "not met", "informational"]
Finding = Literal["ok", "refused", "exception", "record"]
"""``ok``: the control holds for this event; ``refused``: a sign-in whose MFA step was
required and not passed (access refused, MFA enforced); ``exception``: the control does
not hold; ``record``: an event the control reports."""
Framework = Literal["soc2", "hipaa", "gdpr"]
FRAMEWORKS: Final[tuple[Framework, ...]] = ("soc2", "hipaa", "gdpr")

MFA_STEP_TYPES: Final = frozenset(
    {
        "mfa.challenge.issued",
        "mfa.challenge.sent",
        "mfa.challenge.delivery_failed",
        "mfa.verification.failed",
        "mfa.push.rejected",
        "mfa.push.expired",
        "mfa.push.reported_fraud",
        "mfa.recovery.failed",
    }
)
"""An MFA step that did not pass: the sign-in was challenged, not let through."""
ERASURE_TYPE: Final = "privacy.subject.erased"
LOGIN_TYPE: Final = "auth.login.attempted"


@dataclass(frozen=True)
class EvidenceRow:
    """One event supporting (``ok``) or contradicting (``exception``) a control."""

    event_id: str
    sequence: int
    time: str
    type: str
    tenant: str
    subject: str
    finding: Finding
    detail: str
    subject_erased: bool = False
    related_event_id: str = ""


@dataclass(frozen=True)
class ControlResult:
    control: str
    framework: Framework
    title: str
    question: str
    answer: str
    status: Status
    rows: list[EvidenceRow] = field(default_factory=list)

    @property
    def exceptions(self) -> list[EvidenceRow]:
        return [row for row in self.rows if row.finding == "exception"]


@dataclass(frozen=True)
class LedgerEvent:
    """What a control reads of a ledger entry: its position and the event (as JSON)."""

    sequence: int
    event: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.event["id"])

    @property
    def type(self) -> str:
        return str(self.event["type"])

    @property
    def owner(self) -> tuple[str, str]:
        return str(self.event.get("tenant", "")), str(self.event.get("subject", ""))

    @property
    def data(self) -> Mapping[str, Any]:
        value = self.event.get("data")
        return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class Evidence:
    """The events the controls read: those of the period, the enrollments before its end,
    and every erasure recorded so far (an erasure after the period still marks a subject)."""

    period: Sequence[LedgerEvent]
    enrollments: Sequence[LedgerEvent]
    erased: frozenset[tuple[str, str]]


def _row(
    item: LedgerEvent,
    evidence: Evidence,
    finding: Finding,
    detail: str,
    related: str = "",
) -> EvidenceRow:
    tenant, subject = item.owner
    return EvidenceRow(
        event_id=item.id,
        sequence=item.sequence,
        time=str(item.event["time"]),
        type=item.type,
        tenant=tenant,
        subject=subject,
        finding=finding,
        detail=detail,
        subject_erased=item.owner in evidence.erased,
        related_event_id=related,
    )


def _privileged(events: Iterable[LedgerEvent]) -> dict[tuple[str, str], LedgerEvent]:
    """Subjects shown privileged in the period, with the first event that shows it (an
    ``mfa.required`` for a privileged role or reason, or any event under the admin tier)."""
    found: dict[tuple[str, str], LedgerEvent] = {}
    for item in events:
        data = item.data
        role = str(data.get("role") or "").lower()
        marked = data.get("policy_tier") == "admin" or (
            item.type == "mfa.required"
            and (role in PRIVILEGED_ROLES or "privileged_role" in (data.get("reasons") or []))
        )
        if marked:
            found.setdefault(item.owner, item)
    return found


def _sign_in_mfa(
    evidence: Evidence, *, only: Callable[[tuple[str, str]], bool]
) -> tuple[list[EvidenceRow], int]:
    """Every successful password step of the subjects ``only`` accepts, with the MFA
    success of the same login transaction (correlation id and subject); else ``refused``
    with the MFA step that did not pass (MFA was enforced), else an exception."""
    successes: dict[tuple[str, str, str], LedgerEvent] = {}
    attempts: dict[tuple[str, str, str], LedgerEvent] = {}
    for item in evidence.period:
        key = (*item.owner, str(item.event.get("correlationid", "")))
        if item.type in SUCCESS_TYPES:
            successes.setdefault(key, item)
        elif item.type in MFA_STEP_TYPES:
            attempts[key] = item  # the last step the transaction reached
    rows: list[EvidenceRow] = []
    for item in evidence.period:
        if item.type != LOGIN_TYPE or item.data.get("outcome") != "success" or not only(item.owner):
            continue
        key = (*item.owner, str(item.event.get("correlationid", "")))
        mfa, step = successes.get(key), attempts.get(key)
        if mfa is None and step is not None:
            detail = f"MFA required and not passed ({step.type}): access refused"
            rows.append(_row(item, evidence, "refused", detail, step.id))
        elif mfa is None:
            rows.append(_row(item, evidence, "exception", "signed in without any MFA step"))
        else:
            factor = mfa.data.get("factor") or mfa.type.split(".")[1]
            rows.append(_row(item, evidence, "ok", f"MFA by {factor} ({mfa.type})", mfa.id))
    return rows, sum(row.finding == "exception" for row in rows)


def _sign_in_answer(rows: list[EvidenceRow], what: str) -> str:
    found = Counter(row.finding for row in rows)
    return (
        f"{len(rows)} {what}: completed MFA {found['ok']}, refused at the MFA step "
        f"{found['refused']}, through without any MFA step {found['exception']}."
    )


def _met(exceptions: int) -> Status:
    return "met" if exceptions == 0 else "not met"


def mfa_for_privileged(evidence: Evidence) -> ControlResult:
    privileged = _privileged(evidence.period)
    rows, bad = _sign_in_mfa(evidence, only=lambda owner: owner in privileged)
    return ControlResult(
        "CC6.1-mfa",
        "soc2",
        "MFA for every privileged sign-in",
        "Did every privileged account's sign-in that passed the password step go through "
        "multi-factor authentication in the same login transaction?",
        _sign_in_answer(rows, "privileged sign-ins"),
        _met(bad),
        rows,
    )


def _held_factors(enrollments: Iterable[LedgerEvent]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per subject, the enrollments completed and not removed: enrollment id → event."""
    held: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    for item in enrollments:
        enrollment = str(item.data.get("enrollment_id") or item.id)
        if item.type == "mfa.enrollment.completed":
            held[item.owner][enrollment] = item
        elif item.type == "mfa.enrollment.removed":
            held[item.owner].pop(enrollment, None)
    return held


def phishing_resistant_enrolled(evidence: Evidence) -> ControlResult:
    privileged = _privileged(evidence.period)
    held = _held_factors(evidence.enrollments)
    rows = []
    for owner, marker in sorted(privileged.items()):
        strong = [
            item
            for item in held.get(owner, {}).values()
            if item.data.get("factor") in PHISHING_RESISTANT
        ]
        if strong:
            rows.append(_row(strong[0], evidence, "ok", f"enrolled {strong[0].data['factor']}"))
        else:
            factors = sorted({str(i.data.get("factor")) for i in held.get(owner, {}).values()})
            rows.append(
                _row(
                    marker,
                    evidence,
                    "exception",
                    "privileged, no phishing-resistant factor held at the period's end "
                    f"(holds: {', '.join(factors) or 'none'})",
                )
            )
    bad = sum(row.finding == "exception" for row in rows)
    return ControlResult(
        "CC6.1-phishing-resistant",
        "soc2",
        "Privileged accounts hold a phishing-resistant factor",
        "Was every account shown privileged in the period enrolled, at the period's end, in "
        f"a phishing-resistant factor ({', '.join(PHISHING_RESISTANT)})?",
        f"{len(rows) - bad} of {len(rows)} privileged accounts hold one; {bad} do not.",
        _met(bad),
        rows,
    )


def _lock_detail(data: Mapping[str, Any], tier: str) -> str:
    until = ", permanent" if data.get("permanent") else f", until {data.get('locked_until')}"
    return (
        f"{data.get('scope')} locked after {data.get('failures')} failures "
        f"({data.get('reason')}), tier {tier}{until}"
    )


def _granted(item: LedgerEvent) -> bool:
    """A step that let the subject further in: a password step or an MFA step passed."""
    return item.type in SUCCESS_TYPES or (
        item.type == LOGIN_TYPE and item.data.get("outcome") == "success"
    )


def _in_force(lock: LedgerEvent, at: str) -> bool:
    """Whether the subject lock ``lock`` still held at time ``at`` (RFC 3339 strings)."""
    until = lock.data.get("locked_until")
    if lock.data.get("permanent") or not until:
        return True
    return datetime.fromisoformat(at) < datetime.fromisoformat(str(until))


def lockout_applied(evidence: Evidence) -> ControlResult:
    """Lockouts applied and cleared (records), and as exceptions every step granted to a
    subject while a subject lock was in force (applied, not yet expired or cleared): the
    verifiers' gate refuses those, so each one is a lock that was not enforced."""
    rows = []
    tiers: Counter[str] = Counter()
    failures = 0
    locks: dict[tuple[str, str], LedgerEvent] = {}
    for item in evidence.period:
        data = item.data
        if item.type == "mfa.verification.failed":
            failures += 1
        subject_lock = data.get("scope") == "subject"
        if item.type == "lockout.applied":
            tier = str(data.get("policy_tier") or "unknown")
            tiers[tier] += 1
            rows.append(_row(item, evidence, "record", _lock_detail(data, tier)))
            if subject_lock:
                locks[item.owner] = item
        elif item.type == "lockout.cleared":
            rows.append(_row(item, evidence, "record", f"{data.get('scope')} lock cleared "
                             f"({data.get('reason')})"))  # fmt: skip
            if subject_lock:
                locks.pop(item.owner, None)
        elif _granted(item) and (lock := locks.get(item.owner)) is not None:
            if _in_force(lock, str(item.event["time"])):
                detail = (
                    f"{item.type} while locked (lock of entry {lock.sequence}, "
                    f"{lock.data.get('locked_until') or 'permanent'})"
                )
                rows.append(_row(item, evidence, "exception", detail))
            else:
                locks.pop(item.owner)
    applied = sum(tiers.values())
    bad = sum(row.finding == "exception" for row in rows)
    by_tier = ", ".join(f"{tier}: {count}" for tier, count in sorted(tiers.items())) or "none"
    return ControlResult(
        "CC6.6-lockout",
        "soc2",
        "Lockout policy in force and applied",
        "Was the lockout policy applied to repeated failed verifications in the period, and "
        "was no locked subject let through while the lock was in force?",
        f"{applied} lockouts applied (by policy tier: {by_tier}) after {failures} failed "
        f"verifications; {len(rows) - applied - bad} lockouts cleared; {bad} steps granted "
        "while locked.",
        _met(bad),
        rows,
    )


def person_authentication(evidence: Evidence) -> ControlResult:
    rows, bad = _sign_in_mfa(evidence, only=lambda owner: True)
    return ControlResult(
        "164.312(d)",
        "hipaa",
        "Person or entity authentication",
        "Was every person who passed the password step also verified with a second factor "
        "before access (45 CFR §164.312(d))?",
        _sign_in_answer(rows, "sign-ins past the password step"),
        _met(bad),
        rows,
    )


def erasures(evidence: Evidence) -> ControlResult:
    rows = []
    for item in evidence.period:
        if item.type == ERASURE_TYPE:
            data = item.data
            detail = (
                f"erased at {item.event['time']} on request of {data.get('requested_by')} "
                f"({data.get('reason')}"
                + (f", ticket {data['ticket']})" if data.get("ticket") else ")")
            )
            rows.append(_row(item, evidence, "record", detail))
    return ControlResult(
        "Art.17",
        "gdpr",
        "Right to erasure carried out",
        "Which subjects' personal data was erased in the period, and when?",
        f"{len(rows)} erasures carried out (crypto-shredding: the subject's data key destroyed; "
        "their ledger entries and proofs remain, their personal fields unreadable).",
        "informational",
        rows,
    )


def processing_records(evidence: Evidence) -> ControlResult:
    counts: Counter[str] = Counter(item.type for item in evidence.period)
    first: dict[str, LedgerEvent] = {}
    for item in evidence.period:
        first.setdefault(item.type, item)
    rows = []
    for kind in sorted(counts):
        registered = BY_NAME.get(kind)
        fields = personal_paths(registered) if registered is not None else []
        detail = (
            f"{counts[kind]} events of this type; personal data: "
            f"{', '.join(fields) or 'none'} (sealed per subject, AES-GCM)"
        )
        rows.append(_row(first[kind], evidence, "record", detail))
    return ControlResult(
        "Art.30",
        "gdpr",
        "Records of processing of MFA data",
        "What MFA data was processed in the period, and which of it is personal data? "
        "(one row per event type, proving its first event)",
        f"{sum(counts.values())} events of {len(counts)} types recorded.",
        "informational",
        rows,
    )


def policy_tiers(evidence: Evidence) -> ControlResult:
    rows = []
    tiers: Counter[str] = Counter()
    for item in evidence.period:
        if item.type != "mfa.required":
            continue
        data = item.data
        tier = str(data.get("policy_tier") or "unknown")
        tiers[tier] += 1
        required = ", ".join(data.get("required_factors") or []) or "any"
        detail = (
            f"tier {tier}: MFA {'required' if data.get('required') else 'not required'}, "
            f"factors {required}, risk {data.get('risk_level', 'none')}"
        )
        rows.append(_row(item, evidence, "record", detail))
    by_tier = ", ".join(f"{tier}: {count}" for tier, count in sorted(tiers.items())) or "none"
    return ControlResult(
        "Art.32",
        "gdpr",
        "Security of processing: policy tiers applied",
        "Which authentication policy tier was applied to each sign-in decision?",
        f"{sum(tiers.values())} policy decisions (by tier: {by_tier}).",
        "informational",
        rows,
    )


CONTROLS: Final[Mapping[Framework, tuple[Callable[[Evidence], ControlResult], ...]]] = {
    "soc2": (mfa_for_privileged, phishing_resistant_enrolled, lockout_applied),
    "hipaa": (person_authentication,),
    "gdpr": (erasures, processing_records, policy_tiers),
}


def evaluate(framework: Framework, evidence: Evidence) -> list[ControlResult]:
    if framework not in CONTROLS:
        raise ValueError(f"unknown framework {framework!r} (expected {', '.join(FRAMEWORKS)})")
    return [control(evidence) for control in CONTROLS[framework]]
