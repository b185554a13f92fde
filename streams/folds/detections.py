"""All risk detections, grouped by the key they partition by — what the stream wires up.

Three tables, one per key (see :data:`DETECTION_TABLES`):

* per subject (``partitionkey``, the Kafka key: no re-keying) — :func:`fold_detections`
  over :class:`SubjectDetections`: impossible travel, new country, new device, anonymous
  and malicious IP, push fatigue, OTP guessing, recovery-code abuse, cloned authenticator,
  factor reset after risk, and the identity provider's own verdicts (stateless:
  :mod:`streams.folds.reported`);
* per client IP — :func:`~streams.folds.spray.fold_password_spray`;
* per tenant — :func:`~streams.folds.pumping.fold_sms_pumping`.

``fold_detections`` feeds the risks it derives straight into the factor-reset fold of the
same subject, so that detection needs no round trip through Kafka; a ``risk.detected``
delivered to it again later (same id) is ignored. ``privacy.subject.erased`` resets the
subject's state; the IP and tenant states hold no personal data of a subject beyond event
ids and (spray) ``tenant/subject`` labels, which leave the window within ``spray_window``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from schemas import Event
from schemas import payloads as p
from streams.folds import cloning, familiarity, fatigue, guessing, reported, reputation, travel
from streams.folds import reset as reset_fold
from streams.folds import window as w
from streams.folds.cloning import CloningState, fold_cloned_authenticator
from streams.folds.familiarity import FamiliarityState
from streams.folds.fatigue import PushFatigueState, fold_push_fatigue
from streams.folds.guessing import (
    OtpGuessingState,
    RecoveryAbuseState,
    fold_otp_guessing,
    fold_recovery_code_abuse,
)
from streams.folds.pumping import SmsPumpingState, fold_sms_pumping
from streams.folds.reputation import ReputationState, fold_ip_reputation
from streams.folds.reset import FactorResetState, fold_factor_reset_after_risk
from streams.folds.signals import (
    SIGN_IN_COMPLETIONS,
    completed_sign_in,
    sms_pumping_key,
    spray_key,
    subject_key,
)
from streams.folds.spray import SprayState, fold_password_spray
from streams.folds.thresholds import DetectionThresholds
from streams.folds.travel import TravelState

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class SubjectDetections:
    """The state of every per-subject detection of one subject."""

    travel: TravelState = field(default_factory=TravelState)
    countries: FamiliarityState = field(default_factory=FamiliarityState)
    devices: FamiliarityState = field(default_factory=FamiliarityState)
    reputation: ReputationState = field(default_factory=ReputationState)
    push: PushFatigueState = field(default_factory=PushFatigueState)
    otp: OtpGuessingState = field(default_factory=OtpGuessingState)
    recovery: RecoveryAbuseState = field(default_factory=RecoveryAbuseState)
    cloning: CloningState = field(default_factory=CloningState)
    reset: FactorResetState = field(default_factory=FactorResetState)

    def to_dict(self) -> dict[str, Any]:
        parts = {name: getattr(self, name).to_dict() for name in _PARTS}
        return {"version": STATE_VERSION, **parts}

    def to_dict_after(
        self, previous: SubjectDetections, dumped: Mapping[str, Any]
    ) -> dict[str, Any]:
        """:meth:`to_dict`, taking each part ``previous`` shares with this state from its
        form ``dumped`` (an event changes one or two parts; the rest are the same objects)."""
        form: dict[str, Any] = {"version": STATE_VERSION}
        for name in _PARTS:
            part = getattr(self, name)
            kept = dumped.get(name) if part is getattr(previous, name) else None
            form[name] = part.to_dict() if kept is None else kept
        return form

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SubjectDetections:
        """The inverse of :meth:`to_dict`; a part missing (a detection added since the state
        was stored) starts fresh; a malformed value raises ``ValueError``."""
        w.check_version(data, STATE_VERSION)
        parts = {
            name: kind.from_dict(w.nested(data, name))
            for name, kind in _PARTS.items()
            if data.get(name) is not None
        }
        return cls(**parts)


_PARTS: dict[str, Any] = {
    "travel": TravelState,
    "countries": FamiliarityState,
    "devices": FamiliarityState,
    "reputation": ReputationState,
    "push": PushFatigueState,
    "otp": OtpGuessingState,
    "recovery": RecoveryAbuseState,
    "cloning": CloningState,
    "reset": FactorResetState,
}


def fold_detections(
    state: SubjectDetections, event: Event, thresholds: DetectionThresholds
) -> tuple[SubjectDetections, list[Event]]:
    """Apply one event of one subject to every per-subject detection.

    ``privacy.subject.erased`` forgets the subject: the state holds personal data
    (coordinates, device ids), and a fresh state is the only one free of it.
    """
    kind = type(event.data)
    completes = completed_sign_in(event)
    plan = _PLANS.get((kind, completes))
    if plan is None:
        plan = _PLANS.setdefault((kind, completes), _plan(kind, completes))
    if plan.erase:
        return SubjectDetections(), []
    if not (plan.folds or plan.reset or plan.reported):
        return state, []  # most events no detection reads: the caller may skip the write
    parts: list[Any] = [
        state.travel,
        state.countries,
        state.devices,
        state.reputation,
        state.push,
        state.otp,
        state.recovery,
        state.cloning,
    ]
    derived: list[Event] = reported.reported_risks(event) if plan.reported else []
    changed = False
    for index, fold in plan.folds:
        before = parts[index]
        after, found = fold(before, event, thresholds)
        if after is not before:
            parts[index], changed = after, True
        if found:
            derived += found
    reset = state.reset
    if plan.reset:
        reset, found = fold_factor_reset_after_risk(reset, event, thresholds)
    else:
        found = []
    for risk in derived:  # this subject's own fresh risks (they never fire a reset)
        reset, _ = fold_factor_reset_after_risk(reset, risk, thresholds)
    derived += found
    if not changed and reset is state.reset:
        return state, derived  # the caller may skip the write
    travel, countries, devices, reputation, push, otp, recovery, cloning = parts
    return SubjectDetections(
        travel, countries, devices, reputation, push, otp, recovery, cloning, reset
    ), derived


Fold = Callable[[Any, Event, DetectionThresholds], tuple[Any, list[Event]]]

_FOLDS: tuple[tuple[Fold, tuple[type[p.Payload], ...]], ...] = (
    (travel.impossible_travel_at_sign_in, SIGN_IN_COMPLETIONS),
    (familiarity.new_country_at_sign_in, SIGN_IN_COMPLETIONS),
    (familiarity.new_device_at_sign_in, SIGN_IN_COMPLETIONS),
    (fold_ip_reputation, reputation.READS),
    (fold_push_fatigue, fatigue.READS),
    (fold_otp_guessing, guessing.OTP_READS),
    (fold_recovery_code_abuse, guessing.RECOVERY_READS),
    (fold_cloned_authenticator, cloning.READS),
)
"""The fold of each part of :class:`SubjectDetections` but the last (``reset``, which also
reads the others' risks), in order, and the payloads it reads (any other event leaves the
part as it is). The first three read completed sign-ins only, and are the variants that
leave checking that to :func:`fold_detections`."""


class _Plan(NamedTuple):
    """What one class of payload concerns (see :func:`_plan`)."""

    folds: tuple[tuple[int, Fold], ...]
    """The index of each part whose fold reads it, with the fold."""
    reset: bool
    """Whether the factor-reset fold reads it."""
    erase: bool = False
    reported: bool = False
    """Whether it is a provider's verdict (:mod:`streams.folds.reported`)."""


_PLANS: dict[tuple[type, bool], _Plan] = {}
"""The plan by payload class and whether the event completes a sign-in (filled as classes
are seen: a handful, the registry's)."""


def _plan(kind: type, completes: bool) -> _Plan:
    if issubclass(kind, p.SubjectErased):
        return _Plan((), False, erase=True)
    folds = tuple(
        (i, fold)
        for i, (fold, reads) in enumerate(_FOLDS)
        if (completes if reads is SIGN_IN_COMPLETIONS else issubclass(kind, reads))
    )
    return _Plan(
        folds, issubclass(kind, reset_fold.READS), reported=issubclass(kind, reported.READS)
    )


class DetectionState(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


S = TypeVar("S", bound=DetectionState)


@dataclass(frozen=True)
class DetectionTable(Generic[S]):
    """One detection table for the stream: how to key an event, fold it, store the state."""

    name: str
    """A name for the table (``risk_by_subject`` …)."""
    key: Callable[[Event], str | None]
    """The table key of an event; ``None``: the fold ignores the event (do not re-key it)."""
    fold: Callable[[S, Event, DetectionThresholds], tuple[S, list[Event]]]
    empty: Callable[[], S]
    """The state of a key never seen."""
    load: Callable[[Mapping[str, Any]], S]
    """The state from its ``to_dict()`` form (what the table stores)."""
    dump_after: Callable[[S, S, Mapping[str, Any]], dict[str, Any]] | None = None
    """``(state, previous, previous's form) -> state's form``, cheaper than ``to_dict()``
    when the state shares parts with ``previous`` (``None``: always ``to_dict()``)."""


BY_SUBJECT: DetectionTable[SubjectDetections] = DetectionTable(
    "risk_by_subject",
    subject_key,
    fold_detections,
    SubjectDetections,
    SubjectDetections.from_dict,
    SubjectDetections.to_dict_after,
)
BY_IP: DetectionTable[SprayState] = DetectionTable(
    "risk_by_ip", spray_key, fold_password_spray, SprayState, SprayState.from_dict
)
BY_TENANT: DetectionTable[SmsPumpingState] = DetectionTable(
    "risk_by_tenant", sms_pumping_key, fold_sms_pumping, SmsPumpingState, SmsPumpingState.from_dict
)
DETECTION_TABLES: tuple[DetectionTable[Any], ...] = (BY_SUBJECT, BY_IP, BY_TENANT)
"""Every detection table; ``risk.detected`` from any of them goes to ``mfa.anomalies``."""
