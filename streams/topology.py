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
fold there has a key for it. Everything here takes plain values (thresholds, policies,
lists); the front door reads them from its settings (``factorstream/stream_config.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
        _BoundLockout(policies, default_tier),
        LockoutState,
        LockoutState.from_dict,
        LockoutState.to_dict,
        LOCKOUTS,
    )


@dataclass(frozen=True)
class _BoundLockout:
    policies: Mapping[PolicyTier, LockoutPolicy]
    default_tier: PolicyTier

    def __call__(self, state: LockoutState, event: Event) -> tuple[LockoutState, list[Event]]:
        tier = getattr(event.data, "policy_tier", None) or self.default_tier
        return fold_lockout(state, event, self.policies[tier])


@dataclass(frozen=True)
class _BoundDetection:
    table: DetectionTable[Any]
    thresholds: DetectionThresholds

    def __call__(self, state: Any, event: Event) -> tuple[Any, list[Event]]:
        return self.table.fold(state, event, self.thresholds)


@dataclass(frozen=True)
class _BoundIpBlock:
    policy: IpBlockPolicy

    def __call__(self, state: IpBlockState, event: Event) -> tuple[IpBlockState, list[Event]]:
        return fold_ip_block(state, event, self.policy)


def detection_live_fold(
    table: DetectionTable[Any], thresholds: DetectionThresholds
) -> LiveFold[Any]:
    return LiveFold(
        table.name,
        table.key,
        _BoundDetection(table, thresholds),
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
        _BoundIpBlock(ip_block),
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
