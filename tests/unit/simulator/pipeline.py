"""The worker's pure half, replayed: enrich, then every fold the stream runs, by its key.

What ``streams`` wires as agents — geo enrichment from the IP (geoip2fast and the packaged
centroids, no operator databases), the per-subject detections, password spray per IP, SMS
pumping per tenant, the lockout fold per subject at the event's tier, per-IP blocking — as
plain ``functools.reduce``-style loops over a simulated event stream, at default thresholds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import cache
from typing import Any

from schemas import Event
from schemas import payloads as p
from schemas.fields import PolicyTier
from streams.enrich import Enricher, geoip2fast_countries, load_centroids
from streams.folds import (
    BY_IP,
    BY_TENANT,
    DetectionThresholds,
    SubjectDetections,
    fold_detections,
)
from streams.folds.ipblock import IpBlockPolicy, IpBlockState, fold_ip_block, ip_block_key
from verifiers.lockout import LockoutState, fold_lockout
from verifiers.policy import TIERS, lockout_policy

LOCKOUT_POLICIES = {tier: lockout_policy(policy) for tier, policy in TIERS.items()}


@cache
def enricher() -> Enricher:
    return Enricher(centroids=load_centroids(), countries=geoip2fast_countries())


def derive(events: Iterable[Event]) -> list[Event]:
    """Every event the stream would derive from ``events`` (in order), default settings."""
    thresholds, blocking = DetectionThresholds(), IpBlockPolicy()
    subjects: dict[str, SubjectDetections] = {}
    lockouts: dict[str, LockoutState] = {}
    by_ip: dict[str, Any] = {}
    by_tenant: dict[str, Any] = {}
    blocks: dict[str, IpBlockState] = {}
    derived: list[Event] = []
    for raw in events:
        event = enricher().enrich(raw)
        key = event.partitionkey
        subjects[key], found = fold_detections(
            subjects.get(key, SubjectDetections()), event, thresholds
        )
        derived += found
        for table, states in ((BY_IP, by_ip), (BY_TENANT, by_tenant)):
            table_key = table.key(event)
            if table_key is not None:
                states[table_key], found = table.apply(states.get(table_key), event, thresholds)
                derived += found
        tier = getattr(event.data, "policy_tier", None) or PolicyTier.CUSTOMER
        lockouts[key], found = fold_lockout(
            lockouts.get(key, LockoutState()), event, LOCKOUT_POLICIES[tier]
        )
        derived += found
        ip = ip_block_key(event)
        if ip is not None:
            blocks[ip], found = fold_ip_block(blocks.get(ip, IpBlockState()), event, blocking)
            derived += found
    return derived


def labels(derived: Iterable[Event]) -> Counter[str]:
    """``risk.detected/<detection>`` for risks, the type for everything else, counted."""
    return Counter(
        f"{e.type}/{e.data.detection}" if isinstance(e.data, p.RiskDetected) else e.type
        for e in derived
    )
