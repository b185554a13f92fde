"""Anonymous or malicious IP: sign-in activity from a network on an operator's list.

Rule (per subject): a sign-in event — ``auth.login.attempted``, ``mfa.verification.*``,
``mfa.recovery.succeeded|failed``, ``mfa.push.approved|rejected``,
``mfa.enrollment.started|completed`` — whose ``client.ip`` (IPv4 or IPv6; IPv4-mapped IPv6 is
read as IPv4) lies in ``anonymous_networks`` fires ``anonymous_ip``; in
``malicious_networks`` fires ``malicious_ip`` (both may fire for one event). Scores: anonymous
40 (medium), 55 when the event is a success; malicious 65 (medium), 85 (high) on success.
Cool-down: ``cooldown`` per subject and detection, whatever the IP (rotating Tor exits
do not flood the feed). The matched network's prefix length and the list name are the
evidence; the IP itself is in ``client``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas import Event
from schemas import payloads as p
from schemas.fields import Outcome
from schemas.payloads import Detection, EvidenceValue
from streams.folds import window as w
from streams.folds.signals import client_ip, completed_sign_in, risk_detected
from streams.folds.thresholds import DetectionThresholds, NetworkList

STATE_VERSION = 1
SIGN_IN_ACTIVITY = (
    p.LoginAttempted,
    p.VerificationSucceeded,
    p.VerificationFailed,
    p.RecoverySucceeded,
    p.RecoveryFailed,
    p.PushApproved,
    p.PushRejected,
    p.EnrollmentStarted,
    p.EnrollmentCompleted,
)
READS = SIGN_IN_ACTIVITY
"""The payloads this fold reads; any other event leaves the state as it is (``is``)."""


@dataclass(frozen=True, slots=True)
class ReputationState:
    """When each IP-list detection last fired for one subject."""

    anonymous_fired: datetime | None = None
    malicious_fired: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "anonymous_fired": w.iso(self.anonymous_fired),
            "malicious_fired": w.iso(self.malicious_fired),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReputationState:
        w.check_version(data, STATE_VERSION)
        return cls(
            anonymous_fired=w.optional_time(data, "anonymous_fired"),
            malicious_fired=w.optional_time(data, "malicious_fired"),
        )


def _succeeded(event: Event) -> bool:
    data = event.data
    if isinstance(data, p.LoginAttempted):
        return data.outcome is Outcome.SUCCESS
    return completed_sign_in(event) or isinstance(data, p.EnrollmentCompleted)


def fold_ip_reputation(
    state: ReputationState, event: Event, thresholds: DetectionThresholds
) -> tuple[ReputationState, list[Event]]:
    """Apply one event (see the module docstring for the rule)."""
    anonymous, malicious = thresholds.anonymous_networks, thresholds.malicious_networks
    if not (anonymous.networks or malicious.networks):
        return state, []  # no lists configured
    if not isinstance(event.data, SIGN_IN_ACTIVITY):
        return state, []
    address = client_ip(event)
    if address is None:
        return state, []
    success = _succeeded(event)
    derived: list[Event] = []
    checks: list[tuple[Detection, NetworkList, datetime | None, int]] = [
        (Detection.ANONYMOUS_IP, anonymous, state.anonymous_fired, 55 if success else 40),
        (Detection.MALICIOUS_IP, malicious, state.malicious_fired, 85 if success else 65),
    ]
    for detection, networks, last_fired, score in checks:
        network = networks.match(address) if networks else None
        if network is None or not w.cooled(last_fired, event.time, thresholds.cooldown):
            continue
        outcome = "Successful" if success else "Attempted"
        summary = f"{outcome} {event.type} from an IP listed in {networks.name}"
        evidence: dict[str, EvidenceValue] = {
            "list": networks.name,
            "prefix_length": network.prefixlen,
            "ip_version": address.version,
            "event_type": event.type,
            "succeeded": success,
        }
        derived.append(
            risk_detected(
                event,
                detection,
                score=score,
                summary=summary,
                evidence=evidence,
                related=[event.id],
                max_related=thresholds.max_related_events,
            )
        )
        if detection is Detection.ANONYMOUS_IP:
            state = ReputationState(event.time, state.malicious_fired)
        else:
            state = ReputationState(state.anonymous_fired, event.time)
    return state, derived
