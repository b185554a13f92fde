"""Which folds run in which stage (``streams/stages.py``), built from plain values.

=========  ==========================  ===================================================
stage      table key                   folds (digest names) → derived events to
=========  ==========================  ===================================================
subjects   ``tenant/subject``          ``lockout`` → lockouts; ``risk_by_subject`` (every
                                       per-subject detection) → anomalies
ips        client IP (canonical text)  ``risk_by_ip`` (password spray) → anomalies;
                                       ``ip_block`` (per-IP throttling) → lockouts
tenants    tenant                      ``risk_by_tenant`` (SMS pumping) → anomalies
=========  ==========================  ===================================================

The subjects stage forwards each event to the ``ip`` and ``tenant`` re-keyed topics when a
fold there has a key for it. Thresholds come from settings (``FACTORSTREAM_DETECTIONS__*``,
``FACTORSTREAM_IP_BLOCK__*``), read here once, with the operator's IP lists, into the values
the pure folds take.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from factorstream.settings import DetectionSettings, IpBlockSettings, Settings
from schemas import Event
from schemas.fields import PolicyTier
from streams.folds import BY_IP as SPRAY
from streams.folds import BY_SUBJECT as DETECTIONS
from streams.folds import BY_TENANT as PUMPING
from streams.folds.detections import DetectionTable
from streams.folds.ipblock import IpBlockPolicy, IpBlockState, fold_ip_block, ip_block_key
from streams.folds.signals import subject_key
from streams.folds.thresholds import DetectionThresholds, NetworkList
from streams.stages import (
    ANOMALIES,
    BY_IP,
    BY_TENANT,
    LOCKOUTS,
    KeyedStage,
    LiveFold,
    Route,
)
from verifiers.lockout import LockoutPolicy, LockoutState, fold_lockout
from verifiers.policy import TIERS, lockout_policy

LOCKOUT = "lockout"
IP_BLOCK = "ip_block"
SUBJECTS, IPS, TENANTS = "subjects", "ips", "tenants"


@dataclass(frozen=True)
class Topology:
    """The keyed stages, in the order events flow through them."""

    subjects: KeyedStage
    ips: KeyedStage
    tenants: KeyedStage

    @property
    def stages(self) -> tuple[KeyedStage, ...]:
        return (self.subjects, self.ips, self.tenants)

    @property
    def fold_names(self) -> tuple[str, ...]:
        return tuple(fold.name for stage in self.stages for fold in stage.folds)


def lockout_live_fold(default_tier: PolicyTier) -> LiveFold[LockoutState]:
    """The lockout fold, with the policy of the event's ``data.policy_tier`` (else the
    default tier)."""
    policies = {tier: lockout_policy(policy) for tier, policy in TIERS.items()}
    return LiveFold(
        LOCKOUT,
        subject_key,
        _LockoutStep(policies, default_tier),
        LockoutState,
        LockoutState.from_dict,
        LockoutState.to_dict,
        LOCKOUTS,
    )


@dataclass(frozen=True)
class _LockoutStep:
    policies: Mapping[PolicyTier, LockoutPolicy]
    default_tier: PolicyTier

    def __call__(self, state: LockoutState, event: Event) -> tuple[LockoutState, list[Event]]:
        tier = getattr(event.data, "policy_tier", None) or self.default_tier
        return fold_lockout(state, event, self.policies[tier])


@dataclass(frozen=True)
class _DetectionStep:
    table: DetectionTable[Any]
    thresholds: DetectionThresholds

    def __call__(self, state: Any, event: Event) -> tuple[Any, list[Event]]:
        return self.table.fold(state, event, self.thresholds)


@dataclass(frozen=True)
class _IpBlockStep:
    policy: IpBlockPolicy

    def __call__(self, state: IpBlockState, event: Event) -> tuple[IpBlockState, list[Event]]:
        return fold_ip_block(state, event, self.policy)


def detection_live_fold(
    table: DetectionTable[Any], thresholds: DetectionThresholds
) -> LiveFold[Any]:
    return LiveFold(
        table.name,
        table.key,
        _DetectionStep(table, thresholds),
        table.empty,
        table.load,
        _dump,
        ANOMALIES,
        table.dump_after,
    )


def _dump(state: Any) -> dict[str, Any]:
    found: dict[str, Any] = state.to_dict()
    return found


def topology(
    *,
    default_tier: PolicyTier,
    thresholds: DetectionThresholds,
    ip_block: IpBlockPolicy,
    dedupe_window_s: float,
) -> Topology:
    """The stages the worker and the replay run."""
    spray = detection_live_fold(SPRAY, thresholds)
    block: LiveFold[IpBlockState] = LiveFold(
        IP_BLOCK,
        ip_block_key,
        _IpBlockStep(ip_block),
        IpBlockState,
        IpBlockState.from_dict,
        IpBlockState.to_dict,
        LOCKOUTS,
    )
    pumping = detection_live_fold(PUMPING, thresholds)
    subjects = KeyedStage(
        SUBJECTS,
        (lockout_live_fold(default_tier), detection_live_fold(DETECTIONS, thresholds)),
        routes=(Route(BY_IP, (spray.key, block.key)), Route(BY_TENANT, (pumping.key,))),
        dedupe_window_s=dedupe_window_s,
    )
    ips = KeyedStage(IPS, (spray, block), by_record_key=True)
    tenants = KeyedStage(TENANTS, (pumping,), by_record_key=True)
    return Topology(subjects, ips, tenants)


def read_network_list(path: Path, *, setting: str) -> NetworkList:
    """An operator's list file (IPs and CIDR networks, one a line, ``#`` comments), named
    after the file (``tor-exits.txt`` → ``tor-exits``); ValueError names the setting."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{setting}: cannot read {path}: {error}") from None
    try:
        return NetworkList.parse(text.splitlines(), name=path.stem)
    except ValueError as error:
        raise ValueError(f"{setting}: {path}: {error}") from None


def detection_thresholds(settings: DetectionSettings) -> DetectionThresholds:
    """The detections' thresholds from their settings (reads the configured IP lists)."""
    s = settings
    defaults = DetectionThresholds()
    anonymous, malicious = defaults.anonymous_networks, defaults.malicious_networks
    if s.anonymous_networks_file is not None:
        anonymous = read_network_list(
            s.anonymous_networks_file, setting="detections.anonymous_networks_file"
        )
    if s.malicious_networks_file is not None:
        malicious = read_network_list(
            s.malicious_networks_file, setting="detections.malicious_networks_file"
        )
    return DetectionThresholds(
        cooldown=timedelta(seconds=s.cooldown_s),
        travel_max_speed_kmh=s.travel_max_speed_kmh,
        travel_min_distance_km=s.travel_min_distance_km,
        learning_sign_ins=s.learning_sign_ins,
        learning_period=timedelta(days=s.learning_period_days),
        anonymous_networks=anonymous,
        malicious_networks=malicious,
        push_fatigue_count=s.push_fatigue_count,
        push_fatigue_window=timedelta(seconds=s.push_fatigue_window_s),
        spray_min_subjects=s.spray_min_subjects,
        spray_window=timedelta(seconds=s.spray_window_s),
        otp_guess_count=s.otp_guess_count,
        otp_guess_window=timedelta(seconds=s.otp_guess_window_s),
        recovery_failure_count=s.recovery_failure_count,
        recovery_failure_window=timedelta(seconds=s.recovery_failure_window_s),
        recovery_success_count=s.recovery_success_count,
        recovery_success_window=timedelta(seconds=s.recovery_success_window_s),
        sms_window=timedelta(seconds=s.sms_window_s),
        sms_unusual_count=s.sms_unusual_count,
        sms_burst_count=s.sms_burst_count,
        sms_premium_countries=frozenset(c.upper() for c in s.sms_premium_countries),
        reset_window=timedelta(seconds=s.reset_window_s),
    )


def ip_block_policy(settings: IpBlockSettings) -> IpBlockPolicy:
    """Per-IP throttling's policy from its settings (reads the exempt list, if any)."""
    exempt = NetworkList(name="exempt")
    if settings.exempt_networks_file is not None:
        exempt = read_network_list(
            settings.exempt_networks_file, setting="ip_block.exempt_networks_file"
        )
    return IpBlockPolicy(
        min_subjects=settings.min_subjects,
        window=timedelta(seconds=settings.window_s),
        duration=timedelta(seconds=settings.duration_s),
        exempt_networks=exempt,
    )


def settings_topology(settings: Settings) -> Topology:
    """The stages ``settings`` configure (thresholds, IP lists, tiers, dedupe window)."""
    return topology(
        default_tier=settings.stream.default_tier,
        thresholds=detection_thresholds(settings.detections),
        ip_block=ip_block_policy(settings.ip_block),
        dedupe_window_s=settings.stream.dedupe_window_s,
    )
