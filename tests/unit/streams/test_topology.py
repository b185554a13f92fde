"""Which folds run in which stage, and their thresholds from settings (streams/topology.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from msgspec.structs import replace

from factorstream.settings import DetectionSettings, IpBlockSettings, Settings, StreamSettings
from factorstream.stream_config import detection_thresholds, ip_block_policy, settings_topology
from schemas import encode, kafka_key
from schemas.codec import structured_headers
from schemas.fields import PolicyTier
from streams.folds import DetectionThresholds
from streams.folds.ipblock import IpBlockPolicy
from streams.stages import ANOMALIES, BY_IP, BY_TENANT, LOCKOUTS, Record, stage_of
from streams.topology import IP_BLOCK, IPS, LOCKOUT, SUBJECTS, TENANTS
from tests.factories import T0, sample_event
from tests.unit.streams import MINUTE
from verifiers.policy import TIERS

# -- settings → thresholds ---------------------------------------------------------------


def test_default_settings_give_the_folds_default_thresholds() -> None:
    assert detection_thresholds(DetectionSettings()) == DetectionThresholds()
    assert ip_block_policy(IpBlockSettings()) == IpBlockPolicy()


def test_settings_from_the_environment_reach_the_thresholds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tor = tmp_path / "tor-exits.txt"
    tor.write_text("# Tor exits\n185.220.100.0/22\n2a0b:f4c0::/32  # v6\n\n")
    offices = tmp_path / "offices.txt"
    offices.write_text("203.0.113.0/24\n")
    env = {
        "DETECTIONS__SPRAY_MIN_SUBJECTS": "12",
        "DETECTIONS__SPRAY_WINDOW_S": "1800",
        "DETECTIONS__LEARNING_PERIOD_DAYS": "7",
        "DETECTIONS__SMS_PREMIUM_COUNTRIES": '["cu", "LV"]',
        "DETECTIONS__ANONYMOUS_NETWORKS_FILE": str(tor),
        "IP_BLOCK__MIN_SUBJECTS": "50",
        "IP_BLOCK__DURATION_S": "3600",
        "IP_BLOCK__EXEMPT_NETWORKS_FILE": str(offices),
    }
    for name, value in env.items():
        monkeypatch.setenv(f"FACTORSTREAM_{name}", value)
    settings = Settings()
    thresholds = detection_thresholds(settings.detections)
    policy = ip_block_policy(settings.ip_block)

    assert (thresholds.spray_min_subjects, thresholds.spray_window) == (12, 30 * MINUTE)
    assert thresholds.learning_period == timedelta(days=7)
    assert thresholds.sms_premium_countries == frozenset({"CU", "LV"})
    assert thresholds.anonymous_networks.name == "tor-exits"
    assert len(thresholds.anonymous_networks) == 2
    assert not thresholds.malicious_networks
    assert (policy.min_subjects, policy.duration) == (50, timedelta(hours=1))
    assert policy.exempt_networks.name == "offices" and len(policy.exempt_networks) == 1


def test_unreadable_or_malformed_lists_name_the_setting(tmp_path: Path) -> None:
    bad = tmp_path / "blocklist.txt"
    bad.write_text("192.0.2.0/24\nnot-an-address\n")
    with pytest.raises(ValueError, match=r"detections.malicious_networks_file: .*line 2"):
        detection_thresholds(DetectionSettings(malicious_networks_file=bad))
    missing = tmp_path / "missing.txt"
    with pytest.raises(ValueError, match=r"ip_block.exempt_networks_file: cannot read"):
        ip_block_policy(IpBlockSettings(exempt_networks_file=missing))


# -- the stages --------------------------------------------------------------------------


def test_each_fold_runs_in_one_stage_under_its_own_name() -> None:
    """Fold names key the states in a stage's stored values and the digests: unique."""
    stages = settings_topology(Settings())
    names = stages.fold_names

    assert len(names) == len(set(names))
    assert {fold.name: stage_of(stages.stages, fold.name).name for fold in stages.subjects.folds
            } == {LOCKOUT: SUBJECTS, "risk_by_subject": SUBJECTS}  # fmt: skip
    assert [stage.name for stage in stages.stages] == [SUBJECTS, IPS, TENANTS]
    assert {f.name for f in stages.ips.folds} == {"risk_by_ip", IP_BLOCK}
    assert {f.name for f in stages.tenants.folds} == {"risk_by_tenant"}
    outputs = {f.name: f.output for stage in stages.stages for f in stage.folds}
    assert outputs == {
        LOCKOUT: LOCKOUTS,
        "risk_by_subject": ANOMALIES,
        "risk_by_ip": ANOMALIES,
        IP_BLOCK: LOCKOUTS,
        "risk_by_tenant": ANOMALIES,
    }
    assert [route.role for route in stages.subjects.routes] == [BY_IP, BY_TENANT]
    assert (stages.subjects.by_record_key, stages.ips.by_record_key) == (False, True)
    assert stages.tenants.by_record_key


def test_stream_settings_reach_the_subjects_stage() -> None:
    stream = StreamSettings(dedupe_window_s=600, default_tier=PolicyTier.ADMIN)
    stages = settings_topology(Settings(stream=stream))
    admin = TIERS[PolicyTier.ADMIN]
    untiered = [
        sample_event("auth.login.attempted", now=T0 + timedelta(seconds=10 * i))
        for i in range(admin.max_failures)
    ]
    untiered = [replace(e, data=replace(e.data, policy_tier=None)) for e in untiered]
    headers: list[tuple[str, bytes | None]] = [*structured_headers()]
    records = [
        Record("ingested", 0, n, 0, kafka_key(e), encode(e), headers)
        for n, e in enumerate(untiered)
    ]

    out = stages.subjects.process(records, stages.subjects.cache(lambda _: None, capacity=100))

    assert [e.type for e in out.derived] == ["lockout.applied"]  # admin's policy: the default
    assert stages.subjects.dedupe_window_s == 600
    assert (stages.ips.dedupe_window_s, stages.tenants.dedupe_window_s) == (None, None)
