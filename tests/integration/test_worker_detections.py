"""A real ``factorstream worker`` on the real broker: risk detections and per-IP throttling.

A scripted scenario — impossible travel and push fatigue for subjects, a sign-in from a
listed Tor exit, SMS pumping for a tenant, a password spray from one IP across 20
subjects, and a subject locked by its own failures — must produce exactly the expected
``risk.detected`` events on the anomalies topic and ``lockout.applied`` /
``ip.block.applied`` on the lockouts topic; the API and ``factorstream lockout show``
answer while the worker runs. The worker is stopped in a ``finally`` (``running_worker``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from factorstream.localkafka import free_port
from factorstream.settings import TopicSettings
from schemas import Event, kafka_key
from schemas import payloads as p
from schemas.fields import Outcome, PolicyTier
from schemas.payloads import Detection
from streams.folds.ipblock import REASON, IpBlockPolicy
from tests.factories import T0, sample_event
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
    spray = [
        log.event(
            p.LoginAttempted(
                outcome=Outcome.FAILURE,
                method="password",
                reason="invalid_password",
                client=client(ip=SPRAYER),
            ),
            T0 + i * 5 * SECOND,
            subject=f"s-{i:02d}",
        )
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
    bootstrap, port, log = kafka_broker.bootstrap, free_port(), tmp_path / "worker.log"
    tor_list = tmp_path / "tor-exits.txt"
    tor_list.write_text("# test Tor exits\n185.220.100.0/22\n")
    env = _worker_env(kafka_broker, topics, tmp_path, port)
    env["FACTORSTREAM_DETECTIONS__ANONYMOUS_NETWORKS_FILE"] = str(tor_list)
    env["FACTORSTREAM_DETECTIONS__SMS_PREMIUM_COUNTRIES"] = '["CU"]'
    events, parts = scenario(Log())
    lock_at = parts["locked"][-1].time
    block_at = T0 + 2 * MINUTE  # after the whole spray (95 s), before any block can end

    with running_worker(env, log) as process:
        _produce(bootstrap, topics.events, events)
        anomalies = _consume(process, log, bootstrap, topics.anomalies, at_least=5)
        lockouts = _consume(process, log, bootstrap, topics.lockouts, at_least=2)
        path = f"/lockouts/ip/{SPRAYER}?at={_at(block_at)}"
        blocked = _api(port, path, process=process, log=log)
        path = f"/lockouts/ip/{TOR_EXIT}?at={_at(block_at)}"
        innocent = _api(port, path, process=process, log=log)
        shown = _cli(port, "acme", "u-lock", "--ip", SPRAYER, "--at", _at(block_at))
        later = _at(T0 + timedelta(days=2))
        shown_later = _cli(port, "acme", "u-lock", "--ip", SPRAYER, "--at", later)
        assert process.poll() is None, "the worker keeps running"
    refused = _cli(port, "acme", "u-lock")  # the worker is gone

    risks: dict[Detection, Event] = {}
    for record in anomalies:
        event = record.event()
        assert isinstance(event.data, p.RiskDetected)
        assert record.key == kafka_key(event)
        assert event.data.detection not in risks, event  # each fired once
        risks[event.data.detection] = event
    assert len(anomalies) == 5, sorted(risks)
    # keyed by subject: that subject; by IP or tenant: the subject of the trigger
    subjects = {
        Detection.IMPOSSIBLE_TRAVEL: {"u-travel"},
        Detection.PUSH_FATIGUE: {"u-push"},
        Detection.ANONYMOUS_IP: {"u-tor"},
        Detection.SMS_PUMPING: {e.subject for e in parts["sms"]},
        Detection.PASSWORD_SPRAY: {e.subject for e in parts["spray"]},
    }
    assert set(risks) == set(subjects)
    for detection, event in risks.items():
        assert event.subject in subjects[detection], event
        assert event.tenant == ("globex" if detection is Detection.SMS_PUMPING else "acme")
    spray_risk, tor_risk = risks[Detection.PASSWORD_SPRAY].data, risks[Detection.ANONYMOUS_IP].data
    assert isinstance(spray_risk, p.RiskDetected) and isinstance(tor_risk, p.RiskDetected)
    assert spray_risk.evidence["distinct_subjects"] == 10
    assert tor_risk.evidence["list"] == "tor-exits"  # the operator's list file, by name

    by_type = {r.event().type: r.event() for r in lockouts}
    assert len(lockouts) == 2 and set(by_type) == {"lockout.applied", "ip.block.applied"}
    block = by_type["ip.block.applied"]
    assert isinstance(block.data, p.IpBlockApplied)
    assert (block.data.ip, block.data.reason) == (SPRAYER, REASON)
    assert block.data.distinct_subjects == block.data.failures == POLICY.min_subjects
    assert block.subject in subjects[Detection.PASSWORD_SPRAY]  # the trigger's envelope
    trigger = next(e for e in parts["spray"] if e.id == block.data.trigger_event_id)
    assert block.data.blocked_until == trigger.time + POLICY.duration
    assert by_type["lockout.applied"].subject == "u-lock"

    assert blocked == {
        **blocked,
        "ip": SPRAYER,
        "blocked": True,
        "until": block.data.blocked_until.isoformat(),
        "since": trigger.time.isoformat(),
        "failures": POLICY.min_subjects,
    }
    assert innocent["blocked"] is False

    assert shown.returncode == 0, shown.stderr
    until = (lock_at + BUSINESS.lockout_duration).isoformat()
    assert f"acme/u-lock: LOCKED until {until}" in shown.stdout, shown.stdout
    assert f"IP {SPRAYER}: BLOCKED until {block.data.blocked_until.isoformat()}" in shown.stdout
    assert "acme/u-lock: not locked" in shown_later.stdout, shown_later.stdout
    assert f"IP {SPRAYER}: not blocked" in shown_later.stdout
    assert refused.returncode == 1
    assert "no worker answered" in refused.stderr, refused.stderr


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
