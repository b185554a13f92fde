"""A real ``factorstream worker`` on the real broker: risk detections and per-IP throttling.

A scripted scenario — impossible travel and push fatigue for subjects, a sign-in from a
listed Tor exit, SMS pumping for a tenant, a password spray from one IP across 20
subjects of two tenants, and a subject locked by its own failures — must produce exactly
the expected ``risk.detected`` events on the anomalies topic and ``lockout.applied`` /
``ip.block.applied`` on the lockouts topic; the API and ``factorstream lockout show``
answer while the worker runs. A counted failure from the sprayer ``lateness`` after the
end of the bucket its block ends in then releases the block (``ip.block.released``).

Password spray, SMS pumping and IP blocks are decided on UTC-aligned event-time slots and
periods (``streams/folds/slots.py``), not on whichever event arrived last: each event they
derive is checked field by field against the rules of ``streams/folds/spray.py``,
``pumping.py`` and ``ipblock.py``, with its time worked out by hand below, and as a whole
(id included) against what the pure fold derives from *other* events of the same key and
period (their ids are functions of key, period and tenant alone). The worker is stopped in
a ``finally`` (``running_worker``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from uuid import UUID

from factorstream.localkafka import free_port
from factorstream.settings import DetectionSettings, TopicSettings
from factorstream.stream_config import detection_thresholds
from schemas import Event, kafka_key
from schemas import payloads as p
from schemas.fields import Client, Outcome, PolicyTier, RiskLevel
from schemas.payloads import Detection
from streams.folds.ipblock import REASON, IpBlockPolicy, IpBlockState, fold_ip_block
from streams.folds.pumping import SmsPumpingState, fold_sms_pumping
from streams.folds.spray import SprayState, fold_password_spray
from tests.factories import CLIENT, T0, sample_event
from tests.integration.records import Record, consume
from tests.integration.test_worker import (  # the worker harness, shared
    ROOT,
    _api,
    _at,
    _produce,
    _worker_env,
    running_worker,
    topics,
)
from tests.kafka_broker import KafkaBroker
from tests.unit.streams import MINUTE, SECOND, SYDNEY, Log, client
from verifiers.policy import TIERS

__all__ = ["topics"]  # the fixture, re-used from test_worker

SPRAYER = "198.51.100.23"
TOR_EXIT = "185.220.101.5"
BUSINESS = TIERS[PolicyTier.BUSINESS]
POLICY = IpBlockPolicy()
RULES = detection_thresholds(DetectionSettings(sms_premium_countries=["CU"]))
"""The worker's detection thresholds (its environment sets only these and the Tor list)."""

# Worked out by hand from T0 (09:30 UTC) and the rules in docs/detections.md and
# docs/lockout.md (checked in the test):
PERIOD_START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
"""Spray and SMS pumping fire once per UTC-aligned period of the cool-down (1 h), as
events at the period's start: the spray and the sends (09:30-09:31) are in 09:00-10:00."""
BUCKET_START = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
"""Blocks are decided per bucket of min(duration, window) = 15 min: the failure completing
20 subjects (09:31:35) is in 09:30-09:45, the time of ``ip.block.applied``."""
BLOCK_SINCE = datetime(2026, 11, 2, 9, 31, tzinfo=UTC)
"""The first minute (slot) whose window holds 20 subjects: the block's start in the API."""
BLOCKED_UNTIL = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
"""The bucket's end (09:45) plus ``duration`` (15 min)."""
RELEASE_AT = datetime(2026, 11, 2, 11, 15, tzinfo=UTC)
"""``lateness`` (1 h) after the end of the bucket the block ends in (10:00-10:15): the
first counted failure from then on releases the block, at its end (10:00)."""
RELEASED = "expired"
DETECTIONS = "factorstream://detections"
"""``source`` of ``risk.detected``."""
IP_BLOCKS = "factorstream://lockout/ip"
"""``source`` of ``ip.block.*``."""

S = TypeVar("S")
R = TypeVar("R")


def spray_failure(log: Log, at: datetime, subject: str, tenant: str = "acme") -> Event:
    """A failed first-factor sign-in from the sprayer's IP."""
    data = p.LoginAttempted(
        outcome=Outcome.FAILURE,
        method="password",
        reason="invalid_password",
        client=client(ip=SPRAYER),
    )
    return log.event(data, at, subject=subject, tenant=tenant)


def scenario(log: Log) -> tuple[list[Event], dict[str, list[Event]]]:
    """The events to produce, and the named parts the assertions refer to."""
    travel = [
        log.sign_in(T0, subject="u-travel"),  # Berlin
        log.sign_in(T0 + 30 * MINUTE, SYDNEY, subject="u-travel"),
    ]
    rejected = p.PushRejected(challenge_id="ch-push", reason="user_rejected")
    push = [log.event(rejected, T0 + i * MINUTE, subject="u-push") for i in range(5)]
    tor = [log.sign_in(T0, ip=TOR_EXIT, subject="u-tor")]
    sms = [log.sms(T0 + i * SECOND, "CU", tenant="globex", subject=f"g-{i}") for i in range(5)]
    last = POLICY.min_subjects - 1  # the last failure, completing 20 subjects, is globex's
    spray = [
        spray_failure(log, T0 + i * 5 * SECOND, f"s-{i:02d}", "globex" if i == last else "acme")
        for i in range(POLICY.min_subjects)
    ]
    locked = [  # business tier (in the payload), from another IP: a lock of its own
        sample_event("auth.login.attempted", subject="u-lock", now=T0 + 10 * i * SECOND)
        for i in range(BUSINESS.max_failures)
    ]
    parts = {"travel": travel, "push": push, "tor": tor, "sms": sms, "spray": spray}
    parts["locked"] = locked
    return [e for part in parts.values() for e in part], parts


def test_worker_detects_risks_blocks_the_sprayer_and_shows_locks(
    kafka_broker: KafkaBroker, topics: TopicSettings, tmp_path: Path
) -> None:
    # the premises of the times worked out above
    assert T0 == datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    assert (RULES.cooldown, RULES.spray_min_subjects, RULES.sms_unusual_count) == (
        timedelta(hours=1),
        10,
        5,
    )
    assert (POLICY.min_subjects, POLICY.window, POLICY.duration, POLICY.lateness) == (
        20,
        15 * MINUTE,
        15 * MINUTE,
        timedelta(hours=1),
    )
    bootstrap, port, log = kafka_broker.bootstrap, free_port(), tmp_path / "worker.log"
    tor_list = tmp_path / "tor-exits.txt"
    tor_list.write_text("# test Tor exits\n185.220.100.0/22\n")
    env = _worker_env(kafka_broker, topics, tmp_path, port)
    env["FACTORSTREAM_DETECTIONS__ANONYMOUS_NETWORKS_FILE"] = str(tor_list)
    env["FACTORSTREAM_DETECTIONS__SMS_PREMIUM_COUNTRIES"] = '["CU"]'
    events_log = Log()
    events, parts = scenario(events_log)
    assert parts["spray"][-1].time == BLOCK_SINCE + 35 * SECOND  # the 20th subject
    late = spray_failure(events_log, RELEASE_AT, "s-late")  # produced once the block is seen
    lock_at = parts["locked"][-1].time
    block_at = T0 + 2 * MINUTE  # after the whole spray (95 s), before any block can end
    probes = {  # is the sprayer blocked at …? (the block: since <= at < until)
        BLOCK_SINCE - SECOND: False,
        BLOCK_SINCE: True,
        block_at: True,
        BLOCKED_UNTIL - SECOND: True,
        BLOCKED_UNTIL: False,
    }

    with running_worker(env, log) as process:
        _produce(bootstrap, topics.events, events)
        anomalies = _consume(process, log, bootstrap, topics.anomalies, at_least=6)
        lockouts = _consume(process, log, bootstrap, topics.lockouts, at_least=2)
        answers = {
            at: _api(port, f"/lockouts/ip/{SPRAYER}?at={_at(at)}", process=process, log=log)
            for at in probes
        }
        path = f"/lockouts/ip/{TOR_EXIT}?at={_at(block_at)}"
        innocent = _api(port, path, process=process, log=log)
        path = f"/lockouts/ip/{CLIENT.ip}?at={_at(block_at)}"  # u-lock's failures: 1 subject
        one_subject = _api(port, path, process=process, log=log)
        shown = _cli(port, "acme", "u-lock", "--ip", SPRAYER, "--at", _at(block_at))
        later = _at(T0 + timedelta(days=2))
        shown_later = _cli(port, "acme", "u-lock", "--ip", SPRAYER, "--at", later)

        _produce(bootstrap, topics.events, [late])
        after_late = _consume(process, log, bootstrap, topics.lockouts, at_least=3)
        anomalies_after_late = _consume(process, log, bootstrap, topics.anomalies, at_least=6)
        path = f"/lockouts/ip/{SPRAYER}?at={_at(RELEASE_AT)}"
        at_release = _api(port, path, process=process, log=log)
        assert process.poll() is None, "the worker keeps running"
    refused = _cli(port, "acme", "u-lock")  # the worker is gone

    # -- risk.detected: what fired, for whom ----------------------------------------------
    risks: dict[tuple[Detection, str], Event] = {}
    for record in anomalies:
        event = record.event()
        assert isinstance(event.data, p.RiskDetected)
        assert record.key == kafka_key(event)
        key = (event.data.detection, event.tenant)
        assert key not in risks, event  # each fired once (per tenant)
        risks[key] = event
    assert len(anomalies) == 6, sorted(risks)
    assert set(risks) == {
        (Detection.IMPOSSIBLE_TRAVEL, "acme"),
        (Detection.PUSH_FATIGUE, "acme"),
        (Detection.ANONYMOUS_IP, "acme"),
        (Detection.SMS_PUMPING, "globex"),
        # each tenant whose people the IP failed against in the period learns of it
        (Detection.PASSWORD_SPRAY, "acme"),
        (Detection.PASSWORD_SPRAY, "globex"),
    }
    # keyed by subject: that subject
    subjects = {
        Detection.IMPOSSIBLE_TRAVEL: "u-travel",
        Detection.PUSH_FATIGUE: "u-push",
        Detection.ANONYMOUS_IP: "u-tor",
    }
    for detection, subject in subjects.items():
        assert risks[(detection, "acme")].subject == subject, risks[(detection, "acme")]
    tor_risk = risks[(Detection.ANONYMOUS_IP, "acme")].data
    assert isinstance(tor_risk, p.RiskDetected)
    assert tor_risk.evidence["list"] == "tor-exits"  # the operator's list file, by name

    # keyed by IP or tenant: a pseudonymous subject, at the period's start, the rule as
    # evidence; no person's subject, no trigger, no related events
    rule = {"period_start": PERIOD_START.isoformat(), "period_seconds": 3600}
    sprays = {t: risks[(Detection.PASSWORD_SPRAY, t)] for t in ("acme", "globex")}
    for tenant, event in sprays.items():
        _assert_derived(event, "risk.detected", DETECTIONS, tenant, "password-spray", PERIOD_START)
        assert isinstance(event.data, p.RiskDetected)
        assert (event.data.severity, event.data.score) == (RiskLevel.HIGH, 75)
        assert event.data.evidence == {"threshold": 10, "window_seconds": 3600, **rule}
        assert event.data.related_event_ids == []
        assert event.data.client == Client(ip=SPRAYER)  # the address, nothing of a person
        assert "10 or more different subjects" in event.data.summary, event.data.summary
        assert "from 2026-11-02 09:00 UTC" in event.data.summary, event.data.summary
    assert sprays["acme"].id != sprays["globex"].id
    pumping = risks[(Detection.SMS_PUMPING, "globex")]
    _assert_derived(pumping, "risk.detected", DETECTIONS, "globex", "sms-pumping", PERIOD_START)
    assert isinstance(pumping.data, p.RiskDetected)
    assert (pumping.data.severity, pumping.data.score) == (RiskLevel.HIGH, 75)
    assert pumping.data.evidence == {
        "rule": "unusual_destination",  # CU is premium: every send is unusual
        "threshold": 5,
        "window_seconds": 600,
        **rule,
    }
    assert pumping.data.related_event_ids == [] and pumping.data.client is None
    assert "from 2026-11-02 09:00 UTC" in pumping.data.summary, pumping.data.summary

    # ids (and every field) are functions of key, period and tenant alone: other people's
    # events at other times of the same IP / tenant and period derive the very same events
    other = Log()
    need = RULES.spray_min_subjects
    other_spray = [  # 09:50, other subjects; one of them globex's
        spray_failure(other, PERIOD_START + 50 * MINUTE + i * SECOND, f"o-{i}", tenant)
        for i, tenant in enumerate(["globex", *["acme"] * (need - 1)])
    ]
    alone = _derive(fold_password_spray, SprayState(), other_spray, RULES)
    assert {e.tenant: e for e in alone} == sprays
    other_sms = [
        other.sms(PERIOD_START + 55 * MINUTE + i * SECOND, "CU", tenant="globex", subject=f"o-{i}")
        for i in range(RULES.sms_unusual_count)
    ]
    assert _derive(fold_sms_pumping, SmsPumpingState(), other_sms, RULES) == [pumping]

    # -- lockouts topic: the subject's lock, the IP's block -------------------------------
    for record in after_late:
        assert record.key == kafka_key(record.event())
    by_type = {r.event().type: r.event() for r in lockouts}
    assert len(lockouts) == 2 and set(by_type) == {"lockout.applied", "ip.block.applied"}
    assert (by_type["lockout.applied"].tenant, by_type["lockout.applied"].subject) == (
        "acme",
        "u-lock",
    )
    block = by_type["ip.block.applied"]
    _assert_derived(block, "ip.block.applied", IP_BLOCKS, "system", "ip-block", BUCKET_START)
    assert block.data == p.IpBlockApplied(
        ip=SPRAYER,
        reason=REASON,
        blocked_until=BLOCKED_UNTIL,
        failures=POLICY.min_subjects,  # the rule met (at least that many), not a count
        distinct_subjects=POLICY.min_subjects,
        trigger_event_id=None,  # which failure completed the count depends on arrival
    )

    # the late failure releases the block, at its end; nothing else comes of it
    assert len(after_late) == 3, [r.event() for r in after_late]
    assert {r.event().id for r in lockouts} < {r.event().id for r in after_late}
    (release,) = [r.event() for r in after_late if r.event().type == "ip.block.released"]
    _assert_derived(release, "ip.block.released", IP_BLOCKS, "system", "ip-block", BLOCKED_UNTIL)
    assert release.data == p.IpBlockReleased(ip=SPRAYER, reason=RELEASED)
    assert sorted(r.event().id for r in anomalies_after_late) == sorted(
        e.id for e in risks.values()
    )

    # ids are functions of the IP, the policy and the bucket (the block's end for the
    # release): other failures in the same bucket (09:44) derive the very same events
    other_block = [
        spray_failure(other, BUCKET_START + 14 * MINUTE + i * SECOND, f"b-{i:02d}")
        for i in range(POLICY.min_subjects)
    ]
    other_block.append(spray_failure(other, RELEASE_AT, "b-late"))
    assert _derive(fold_ip_block, IpBlockState(), other_block, POLICY) == [block, release]

    # -- the lockout API and CLI ----------------------------------------------------------
    n = POLICY.min_subjects
    in_force = {
        "ip": SPRAYER,
        "tenant": None,  # asked for no tenant: the platform's blocks
        "blocked": True,
        "until": BLOCKED_UNTIL.isoformat(),
        "since": BLOCK_SINCE.isoformat(),
        "reason": REASON,
        "failures": n,
        "distinct_subjects": n,
    }
    for at, answer in answers.items():
        assert answer == ({**in_force, "at": at.isoformat()} if probes[at] else _free(SPRAYER, at))
    assert innocent == _free(TOR_EXIT, block_at)
    assert one_subject == _free(str(CLIENT.ip), block_at)
    assert at_release == _free(SPRAYER, RELEASE_AT)

    assert shown.returncode == 0, shown.stderr
    until = (lock_at + BUSINESS.lockout_duration).isoformat()
    assert f"acme/u-lock: LOCKED until {until}" in shown.stdout, shown.stdout
    line = (
        f"IP {SPRAYER}: BLOCKED until {BLOCKED_UNTIL.isoformat()} (since "
        f"{BLOCK_SINCE.isoformat()}, reason {REASON}: {n} failures against {n} subjects)"
    )
    assert line in shown.stdout, shown.stdout
    assert "acme/u-lock: not locked" in shown_later.stdout, shown_later.stdout
    assert f"IP {SPRAYER}: not blocked" in shown_later.stdout
    assert refused.returncode == 1
    assert "no worker answered" in refused.stderr, refused.stderr


def _assert_derived(
    event: Event, kind: str, source: str, tenant: str, subject: str, at: datetime
) -> None:
    """``event``'s envelope: an event of a key and period, derived from no one trigger."""
    envelope = (event.type, event.source, event.tenant, event.subject, event.partitionkey)
    assert envelope == (kind, source, tenant, subject, f"{tenant}/{subject}"), event
    assert event.time == at, event
    assert event.correlationid == event.id, event  # its own correlation: no one login
    uuid = UUID(event.id)
    assert uuid.version == 7, event.id
    assert datetime.fromtimestamp((uuid.int >> 80) / 1000, UTC) == at, event.id  # its time


def _free(ip: str, at: datetime) -> dict[str, object]:
    """The API's answer for an IP not blocked at ``at``."""
    return {
        "ip": ip,
        "tenant": None,
        "at": at.isoformat(),
        "blocked": False,
        "until": None,
        "since": None,
        "reason": None,
        "failures": None,
        "distinct_subjects": None,
    }


def _derive(
    fold: Callable[[S, Event, R], tuple[S, list[Event]]],
    start: S,
    events: Iterable[Event],
    rules: R,
) -> list[Event]:
    """Every event ``fold`` derives from ``events``, in this order, in process."""
    state, derived = start, []
    for event in events:
        state, more = fold(state, event, rules)
        derived += more
    return derived


def _consume(
    process: subprocess.Popen[bytes],
    log: Path,
    bootstrap: str,
    topic: str,
    *,
    at_least: int,
    timeout_s: float = 120,
) -> list[Record]:
    """``consume``, giving up at once when the worker died."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert process.poll() is None, f"worker exited:\n{log.read_text()[-4000:]}"
        try:
            return consume(bootstrap, topic, at_least=at_least, timeout_s=5)
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def _cli(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    """``factorstream lockout show ARGS`` against the worker on ``port``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORSTREAM_")}
    env.update({"FACTORSTREAM_STREAM__WEB_PORT": str(port), "COLUMNS": "250", "NO_COLOR": "1"})
    return subprocess.run(
        [sys.executable, "-m", "factorstream.cli", "lockout", "show", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
