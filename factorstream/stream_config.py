"""The stream worker's and the replay's plain values, read from the settings.

The ``streams`` package takes thresholds, policies, lists and an enricher as values
(``streams.topology.topology``, ``streams.replay.replay``); this module, on the front
door's side, reads them from :class:`~factorstream.settings.Settings` once, with the
operator's IP list files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

from audit.ledger import Ledger, open_ledger
from factorstream.control_keys import trusted_control_keys
from factorstream.retention_config import days
from factorstream.settings import (
    DetectionSettings,
    EnrichSettings,
    IpBlockSettings,
    Settings,
    StreamSettings,
)
from schemas import Event
from streams.app import FoldsRole, LakeRole, LedgerRole, PipelineConfig
from streams.enrich import open_enricher
from streams.folds import DetectionThresholds, NetworkList
from streams.folds.ipblock import IpBlockPolicy
from streams.replay import Replayed, TopicRecord, replay
from streams.topology import Topology, read_network_list, topology


def enricher(settings: EnrichSettings) -> Callable[[Event], Event] | None:
    """The worker's enrichment (``None`` when turned off)."""
    if not settings.enabled:
        return None
    return open_enricher(
        mmdb_path=settings.mmdb_path,
        asn_mmdb_path=settings.asn_mmdb_path,
        cache_size=settings.cache_size,
    ).enrich


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


def replay_settings(
    records: Iterable[TopicRecord],
    settings: Settings,
    *,
    on_record: Callable[[], None] | None = None,
    stage_seconds: dict[str, float] | None = None,
) -> Replayed:
    """:func:`replay` with the stages, window and enrichment ``settings`` configure."""
    return replay(
        records,
        stages=settings_topology(settings),
        enrich=enricher(settings.stream.enrich),
        max_ahead=timedelta(seconds=settings.stream.max_ahead_s),
        control_keys=trusted_control_keys(settings),
        topic=settings.topics.events,
        on_record=on_record,
        stage_seconds=stage_seconds,
    )


def api_token(stream: StreamSettings) -> str | None:
    """The lockout API's bearer token, read from ``stream.api_token_file`` (``None``: no
    file set); ``streams.app.check_api_access`` judges it."""
    if stream.api_token_file is None:
        return None
    try:
        return stream.api_token_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"stream.api_token_file: cannot read it: {error}") from None


def ledger_of(settings: Settings) -> Ledger:
    """The ledger the settings name, with its keys (created on first use)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return open_ledger(
        url=settings.ledger_database_url(),
        signing_key_file=settings.key_file(settings.ledger.signing_key_file, "ledger-signing.pem"),
        master_key_file=settings.key_file(settings.ledger.master_key_file, "ledger-master.key"),
        checkpoint_every=settings.ledger.checkpoint_every,
        checkpoint_interval_s=settings.ledger.checkpoint_interval_s,
    )


def pipeline_config(settings: Settings) -> PipelineConfig:
    """The worker's pipeline for ``settings`` (its roles: ``stream.roles``); a role's
    values are read only when the process runs it (IP lists, the token, the ledger)."""
    stream, topics, roles = settings.stream, settings.topics, set(settings.stream.roles)
    folds = (
        FoldsRole(
            stages=settings_topology(settings),
            enrich=enricher(stream.enrich),
            max_ahead=timedelta(seconds=stream.max_ahead_s),
            control_keys=trusted_control_keys(settings),
            cache_keys=stream.cache_keys,
            api_token=api_token(stream),
        )
        if "folds" in roles
        else None
    )
    ledger = (
        LedgerRole(
            open_ledger=lambda: ledger_of(settings),
            batch_size=settings.ledger.batch_size,
            keep_personal=days(settings.retention.ledger_personal_days),
        )
        if "ledger" in roles
        else None
    )
    lake = (
        LakeRole(
            path=settings.lake_path(),
            batch_rows=settings.lake.batch_rows,
            compact_min_files=settings.lake.compact_min_files,
            keep=days(settings.retention.lake_days),
        )
        if "lake" in roles
        else None
    )
    return PipelineConfig(
        app_id=stream.app_id,
        kafka=settings.kafka(),
        state_dir=settings.data_dir / "streams",
        store=stream.store,
        events=topics.events,
        events_partitions=topics.events_partitions,
        dlq=topics.dlq,
        lockouts=topics.lockouts,
        anomalies=topics.anomalies,
        checkpoints=topics.checkpoints,
        derived_partitions=topics.derived_partitions,
        commit_interval_s=stream.commit_interval_s,
        session_timeout_s=stream.session_timeout_s,
        stall_s=stream.stall_s,
        max_poll_records=stream.max_poll_records,
        fetch_max_wait_ms=stream.fetch_max_wait_ms,
        standby_replicas=stream.standby_replicas,
        web_bind=stream.web_bind,
        web_host=stream.web_host,
        web_port=stream.web_port,
        folds=folds,
        ledger=ledger,
        lake=lake,
        probes_bind=stream.probes_host,
        probes_port=stream.probes_port,
    )
