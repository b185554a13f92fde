"""All risk detections, grouped by the key they partition by — what the stream wires up.

Three tables, one per key (see :data:`DETECTION_TABLES`):

* per subject (``partitionkey``, the Kafka key: no re-keying) — :func:`fold_detections`
  over :class:`SubjectDetections`: impossible travel, new country, new device, anonymous
  and malicious IP, push fatigue, OTP guessing, recovery-code abuse, cloned authenticator,
  factor reset after risk;
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
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from schemas import Event
from schemas import payloads as p
from streams.folds import window as w
from streams.folds.cloning import CloningState, fold_cloned_authenticator
from streams.folds.familiarity import FamiliarityState, fold_new_country, fold_new_device
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
from streams.folds.signals import sms_pumping_key, spray_key, subject_key
from streams.folds.spray import SprayState, fold_password_spray
from streams.folds.thresholds import DetectionThresholds
from streams.folds.travel import TravelState, fold_impossible_travel

STATE_VERSION = 1


@dataclass(frozen=True)
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
    if isinstance(event.data, p.SubjectErased):
        return SubjectDetections(), []
    derived: list[Event] = []
    travel, found = fold_impossible_travel(state.travel, event, thresholds)
    derived += found
    countries, found = fold_new_country(state.countries, event, thresholds)
    derived += found
    devices, found = fold_new_device(state.devices, event, thresholds)
    derived += found
    reputation, found = fold_ip_reputation(state.reputation, event, thresholds)
    derived += found
    push, found = fold_push_fatigue(state.push, event, thresholds)
    derived += found
    otp, found = fold_otp_guessing(state.otp, event, thresholds)
    derived += found
    recovery, found = fold_recovery_code_abuse(state.recovery, event, thresholds)
    derived += found
    cloning, found = fold_cloned_authenticator(state.cloning, event, thresholds)
    derived += found
    reset, found = fold_factor_reset_after_risk(state.reset, event, thresholds)
    for risk in derived:  # this subject's own fresh risks (they never fire a reset)
        reset, _ = fold_factor_reset_after_risk(reset, risk, thresholds)
    derived += found
    parts = (travel, countries, devices, reputation, push, otp, recovery, cloning, reset)
    if all(a is b for a, b in zip(parts, _parts(state), strict=True)):
        return state, derived  # most events touch nothing: the caller may skip the write
    return SubjectDetections(*parts), derived


def _parts(state: SubjectDetections) -> tuple[Any, ...]:
    return (
        state.travel,
        state.countries,
        state.devices,
        state.reputation,
        state.push,
        state.otp,
        state.recovery,
        state.cloning,
        state.reset,
    )


class DetectionState(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


S = TypeVar("S", bound=DetectionState)
JsonState = dict[str, Any]


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

    def apply(
        self, stored: JsonState | None, event: Event, thresholds: DetectionThresholds
    ) -> tuple[JsonState | None, list[Event]]:
        """Fold ``event`` into a stored state (``None``: none yet): the state to store and
        the derived events. An unchanged state comes back as the very ``stored`` object
        (``None`` for a fresh key the event did not touch), so the caller can skip the write.
        """
        before = self.empty() if stored is None else self.load(stored)
        after, derived = self.fold(before, event, thresholds)
        return (stored if after is before or after == before else after.to_dict()), derived

    def step(
        self, thresholds: DetectionThresholds
    ) -> Callable[[JsonState | None, Event], tuple[JsonState | None, list[Event]]]:
        """:meth:`apply` with the thresholds bound: ``(stored, event) -> (stored, derived)``."""
        return partial(_apply, self, thresholds)


def _apply(
    table: DetectionTable[Any],
    thresholds: DetectionThresholds,
    stored: JsonState | None,
    event: Event,
) -> tuple[JsonState | None, list[Event]]:
    return table.apply(stored, event, thresholds)


BY_SUBJECT: DetectionTable[SubjectDetections] = DetectionTable(
    "risk_by_subject", subject_key, fold_detections, SubjectDetections, SubjectDetections.from_dict
)
BY_IP: DetectionTable[SprayState] = DetectionTable(
    "risk_by_ip", spray_key, fold_password_spray, SprayState, SprayState.from_dict
)
BY_TENANT: DetectionTable[SmsPumpingState] = DetectionTable(
    "risk_by_tenant", sms_pumping_key, fold_sms_pumping, SmsPumpingState, SmsPumpingState.from_dict
)
DETECTION_TABLES: tuple[DetectionTable[Any], ...] = (BY_SUBJECT, BY_IP, BY_TENANT)
"""Every detection table; ``risk.detected`` from any of them goes to ``mfa.anomalies``."""
