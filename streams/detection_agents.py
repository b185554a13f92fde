"""The risk detections and per-IP throttling, wired into the app (``create_pipeline``).

Every table of :data:`streams.folds.DETECTION_TABLES` and the per-IP throttling fold
(:mod:`streams.folds.ipblock`) gets its own table and agent (concurrency 1), on the topic
keyed by its key; folds not keyed by ``partitionkey`` read a re-keyed topic
(:mod:`streams.rekey`):

=================  ===============================  =====================  ==================
table and agent    source topic                     table key              derived events to
=================  ===============================  =====================  ==================
risk_by_subject    ``<app_id>-events-ingested``     ``tenant/subject``     anomalies topic
risk_by_ip         ``<app_id>-events-by-ip``        client IP              anomalies topic
risk_by_tenant     ``<app_id>-events-by-tenant``    tenant                 anomalies topic
ip_block           ``<app_id>-events-by-ip``        client IP              lockouts topic
=================  ===============================  =====================  ==================

Thresholds come from settings (``FACTORSTREAM_DETECTIONS__*``, ``FACTORSTREAM_IP_BLOCK__*``),
read here once, with the operator's IP lists, into the values the pure folds take.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import faust
from faust.types import AgentT, TableT, TopicT

from factorstream.settings import DetectionSettings, IpBlockSettings
from streams.folds import BY_IP, BY_TENANT, DETECTION_TABLES, subject_key
from streams.folds.ipblock import IpBlockPolicy, ip_block_key, ip_block_step
from streams.folds.thresholds import DetectionThresholds, NetworkList
from streams.lockout_agent import KeyedFold, attach_fold_agent
from streams.positions import JsonState
from streams.rekey import (
    KeyOf,
    Rekeying,
    attach_rekey,
    attach_rekeyed_fold_agent,
    rekeyed_topic_name,
)

IP_BLOCK = "ip_block"
"""The per-IP throttling table and agent (its API: ``GET /lockouts/ip/{ip}``)."""
REKEYED: Mapping[str, str] = {BY_IP.name: "ip", BY_TENANT.name: "tenant", IP_BLOCK: "ip"}
"""The re-keyed topic (kind of key) each fold not keyed by ``partitionkey`` reads."""


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


def detection_folds(
    thresholds: DetectionThresholds, policy: IpBlockPolicy
) -> list[tuple[KeyedFold, KeyOf]]:
    """The risk detections and per-IP throttling as folds, each with its key function."""
    folds: list[tuple[KeyedFold, KeyOf]] = [
        (KeyedFold(table.name, table.step(thresholds), "anomalies"), table.key)
        for table in DETECTION_TABLES
    ]
    folds.append((KeyedFold(IP_BLOCK, ip_block_step(policy), "lockouts"), ip_block_key))
    return folds


@dataclass(frozen=True)
class WiredDetections:
    """What :func:`attach_detections` declared."""

    rekeyed: Mapping[str, TopicT]
    """The re-keyed topics by kind of key (``ip``, ``tenant``)."""
    tables: Mapping[str, TableT[bytes, JsonState]]
    agents: Mapping[str, AgentT[bytes]]


def attach_detections(
    app: faust.App,
    *,
    app_id: str,
    partitions: int,
    ingested: TopicT,
    sinks: Mapping[str, TopicT],
    thresholds: DetectionThresholds,
    policy: IpBlockPolicy,
    taken: Collection[str] = (),
) -> WiredDetections:
    """Declare the detection tables, the re-keyed topics and their agents (see the module
    docstring); ``taken``: table and agent names in use already."""
    folds = detection_folds(thresholds, policy)
    clash = sorted({fold.name for fold, _ in folds} & {*taken, "rekey"})
    if clash:
        raise ValueError(f"fold names must be unique: {clash} are taken by the detections")
    keys: dict[str, list[KeyOf]] = {}
    for fold, key in folds:
        if key is not subject_key:
            if fold.name not in REKEYED:
                raise ValueError(f"{fold.name}: keyed by neither partitionkey nor a re-keyed topic")
            keys.setdefault(REKEYED[fold.name], []).append(key)
    rekeyed: dict[str, TopicT] = {
        name: app.topic(
            rekeyed_topic_name(app_id, name),
            key_type=bytes,
            value_type=bytes,
            partitions=partitions,
            internal=True,
        )
        for name in keys
    }
    routes = [(Rekeying(name, tuple(found)), rekeyed[name]) for name, found in keys.items()]
    agents: dict[str, AgentT[bytes]] = {"rekey": attach_rekey(app, source=ingested, routes=routes)}
    tables: dict[str, TableT[bytes, JsonState]] = {}
    for fold, key in folds:
        table = tables[fold.name] = app.Table(
            fold.name, default=None, key_type=bytes, partitions=partitions
        )
        sink = sinks[fold.output]
        if key is subject_key:
            agents[fold.name] = attach_fold_agent(
                app, fold, source=ingested, table=table, sink=sink
            )
        else:
            agents[fold.name] = attach_rekeyed_fold_agent(
                app, fold, key=key, source=rekeyed[REKEYED[fold.name]], table=table, sink=sink
            )
    return WiredDetections(rekeyed, tables, agents)
