"""``factorstream alerts run`` on the real broker, with real receivers: a webhook receiver
killed mid-burst and started again, one answering 500, one down for good (dead-letter),
a syslog listener; every alert arrives at least once, repeats carry the same key, and
the committed offsets let a restart send nothing twice it had finished."""

from __future__ import annotations

import hashlib
import json
import signal
import sys
import time
from collections import defaultdict
from datetime import timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from factorstream.localkafka import free_port
from factorstream.settings import TopicSettings
from schemas import Event
from schemas.payloads import Detection
from streams.topic_reading import group_lag
from tests.factories import T0
from tests.integration.alerts.receivers import UdpSyslog, webhook_receiver
from tests.integration.records import consume
from tests.integration.test_worker import _produce, _worker_env, running_worker, topics
from tests.kafka_broker import KafkaBroker
from tests.support import wait_for
from tests.unit.alerts.fixtures import ip_block, lockout, risk
from tests.unit.alerts.test_formats import RFC5424, _params

__all__ = ["topics"]  # the fixture, re-used from test_worker

ALERTS = [sys.executable, "-m", "factorstream.cli", "alerts", "run"]


def _key(destination: str, alert_id: str) -> str:
    return hashlib.sha256(f"{destination}|{alert_id}".encode()).hexdigest()[:32]


def _events() -> tuple[list[Event], list[Event], list[Event]]:
    """40 detections of 40 subjects, 20 IP blocks of 20 IPs, and a push-bombing burst of
    30 detections for one subject within a minute (one attack)."""
    singles = [risk(subject=f"u-{i}", at=T0 + timedelta(seconds=i)) for i in range(40)]
    blocks = [ip_block(ip=str(IPv4Address("198.51.100.1") + i), at=T0) for i in range(20)]
    burst = [
        risk(subject="bombed", detection=Detection.PUSH_FATIGUE, at=T0 + timedelta(seconds=2 * i))
        for i in range(30)
    ]
    return singles, blocks, burst


def _env(
    kafka_broker: KafkaBroker, topics: TopicSettings, tmp_path: Path, **alerts: Any
) -> dict[str, str]:
    env = _worker_env(kafka_broker, topics, tmp_path / "data", free_port())
    for name, value in alerts.items():
        env[f"FACTORSTREAM_ALERTS__{name.upper()}"] = (
            value if isinstance(value, str) else json.dumps(value)
        )
    return env


def _lag(env: dict[str, str], topics: TopicSettings, destination: str) -> int | None:
    group = f"{env['FACTORSTREAM_STREAM__APP_ID']}-alerts-{destination}"
    return group_lag(
        env["FACTORSTREAM_KAFKA_BOOTSTRAP"], group, [topics.lockouts, topics.anomalies]
    )


def _covered(lines: list[dict[str, Any]], subject: str) -> tuple[int, int]:
    """For one subject's group: (events covered by what arrived, distinct alerts)."""
    bodies = {
        line["body"]["id"]: line["body"] for line in lines if line["body"]["subject"] == subject
    }
    summaries = {i.removesuffix("/summary") for i in bodies if i.endswith("/summary")}
    covered = sum(b["count"] for b in bodies.values() if b["kind"] == "summary")
    covered += sum(1 for i, b in bodies.items() if b["kind"] == "alert" and i not in summaries)
    return covered, len(bodies)


def test_a_receiver_killed_mid_burst_gets_every_alert_once_back_with_the_same_keys(
    kafka_broker: KafkaBroker, topics: TopicSettings, tmp_path: Path
) -> None:
    singles, blocks, burst = _events()
    secret = tmp_path / "soc.key"
    secret.write_bytes(b"soc-secret\n")
    port = free_port()
    with (
        UdpSyslog() as syslog,
        webhook_receiver(port, tmp_path / "soc.jsonl", secret, "--die-after", "10") as soc,
    ):
        env = _env(
            kafka_broker,
            topics,
            tmp_path,
            destinations=[
                {
                    "name": "soc",
                    "kind": "webhook",
                    "url": soc.url,
                    "secret_file": str(secret),
                    "timeout_s": 2,
                },
                {"name": "siem", "kind": "syslog", "host": "127.0.0.1", "port": syslog.port},
            ],
            min_severity="low",
            window_s="120",
            retry_initial_s="0.2",
            retry_max_s="1",
            give_up_after_s="600",
        )
        _produce(kafka_broker.bootstrap, topics.anomalies, singles + burst)
        _produce(kafka_broker.bootstrap, topics.lockouts, blocks)
        expected = {e.id for e in singles + blocks}
        with running_worker(env, tmp_path / "alerts-1.log", ALERTS) as process:
            wait_for(soc.died, what="the receiver crashing mid-burst", timeout=90)
            taken = len(soc.received())
            assert taken < len(expected), "the crash came too late to test anything"
            time.sleep(4)  # down for a while: the alerts wait, retrying
            assert len(soc.received()) == taken
            soc.start("--delay", "0.01")
            wait_for(
                lambda: expected <= {line["body"]["id"] for line in soc.received()},
                what="every alert at the restarted receiver",
                timeout=120,
            )
            wait_for(
                lambda: _covered(soc.received(), "bombed")[0] == 30,
                what="the burst's summary",
                timeout=60,
            )
            wait_for(
                lambda: _lag(env, topics, "soc") == 0, what="soc's offsets committed", timeout=60
            )
            wait_for(
                lambda: _lag(env, topics, "siem") == 0, what="siem's offsets committed", timeout=60
            )
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
        lines = soc.received()
        by_id: dict[str, set[str]] = defaultdict(set)
        for line in lines:
            by_id[line["body"]["id"]].add(line["key"])
        assert expected <= set(by_id), "none lost"
        for alert_id, keys in by_id.items():
            assert keys == {_key("soc", alert_id)}, "a repeat carries the same key"
        covered, distinct = _covered(lines, "bombed")
        assert covered == 30 and distinct <= 4, "one attack, a handful of alerts with the count"
        assert len(lines) > len(by_id), "the request taken but not answered came again"
        print(f"soc: {len(lines)} requests for {len(by_id)} alerts")

        siem_keys = set()
        for message in syslog.messages:
            parsed = RFC5424.match(message)
            assert parsed is not None
            siem_keys.add(_params(parsed["sd"])["dedup"])
        assert {_key("siem", i) for i in expected} <= siem_keys

        # started again: everything was committed, nothing is sent twice
        before = len(soc.received())
        with running_worker(env, tmp_path / "alerts-2.log", ALERTS) as process:
            time.sleep(8)
            assert len(soc.received()) == before
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 0
    assert "Traceback" not in (tmp_path / "alerts-1.log").read_text()


def test_500s_are_retried_and_what_cannot_be_delivered_is_dead_lettered(
    kafka_broker: KafkaBroker, topics: TopicSettings, tmp_path: Path
) -> None:
    singles, blocks, _ = _events()
    events = singles[:10] + [lockout(subject=f"v-{i}", at=T0, permanent=True) for i in range(1)]
    secret = tmp_path / "k"
    secret.write_bytes(b"k")
    dlq = f"{topics.events}.alerts-dlq"
    with (
        webhook_receiver(
            free_port(), tmp_path / "flaky.jsonl", secret, "--fail-every", "3"
        ) as flaky,
        webhook_receiver(free_port(), tmp_path / "down.jsonl", secret, "--status", "503") as down,
        webhook_receiver(
            free_port(), tmp_path / "refusing.jsonl", secret, "--status", "400"
        ) as refusing,
    ):
        env = _env(
            kafka_broker,
            topics,
            tmp_path,
            destinations=[
                {
                    "name": n,
                    "kind": "webhook",
                    "url": r.url,
                    "secret_file": str(secret),
                    "timeout_s": 2,
                }
                for n, r in (("flaky", flaky), ("down", down), ("refusing", refusing))
            ],
            min_severity="low",
            retry_initial_s="0.1",
            retry_max_s="0.5",
            give_up_after_s="2",
            dead_letter_topic=dlq,
        )
        _produce(kafka_broker.bootstrap, topics.anomalies, events[:10])
        _produce(kafka_broker.bootstrap, topics.lockouts, events[10:])
        ids = {e.id for e in events}
        with running_worker(env, tmp_path / "alerts.log", ALERTS) as process:
            wait_for(
                lambda: ids <= {x["body"]["id"] for x in flaky.received()},
                what="flaky has all",
                timeout=90,
            )
            for name in ("flaky", "down", "refusing"):
                wait_for(
                    lambda n=name: _lag(env, topics, n) == 0, what=f"{name} committed", timeout=120
                )
            process.send_signal(signal.SIGHUP)
            assert process.wait(timeout=30) == 0
        assert down.received() == [] and refusing.received() == []
    dead = consume(kafka_broker.bootstrap, dlq, at_least=2 * len(events), timeout_s=60)
    by_destination: dict[str, set[str]] = defaultdict(set)
    for record in dead:
        headers = {k: v.decode() for k, v in record.headers}
        value = json.loads(record.value)
        assert record.key.decode() == _key(value["destination"], value["alert"]["id"])
        assert headers["factorstream.alerts.destination"] == value["destination"]
        by_destination[value["destination"]].add(value["alert"]["id"])
        if value["destination"] == "refusing":
            assert value["reason"] == "HTTP 400" and value["attempts"] == 1  # not retried
        else:
            assert value["reason"] == "HTTP 503" and value["attempts"] > 1
    assert by_destination == {"down": ids, "refusing": ids}


def test_a_crash_with_a_group_open_loses_none_of_its_count(
    kafka_broker: KafkaBroker, topics: TopicSettings, tmp_path: Path
) -> None:
    """The burst's first alert goes at once; the process is killed (SIGKILL) while the
    group is open; started again, it re-reads from the group's first event (its commit
    was held there): the first alert comes again with its key, and the summary counts all."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    burst = [risk(subject="bombed", at=now + timedelta(milliseconds=100 * i)) for i in range(30)]
    secret = tmp_path / "k"
    secret.write_bytes(b"k")
    with webhook_receiver(free_port(), tmp_path / "soc.jsonl", secret) as soc:
        env = _env(
            kafka_broker,
            topics,
            tmp_path,
            destinations=[
                {"name": "soc", "kind": "webhook", "url": soc.url, "secret_file": str(secret)}
            ],
            min_severity="low",
            window_s="25",
        )
        _produce(kafka_broker.bootstrap, topics.anomalies, burst)
        with running_worker(env, tmp_path / "alerts-1.log", ALERTS) as process:
            wait_for(lambda: soc.received(), what="the first alert", timeout=60)
            time.sleep(2)  # the rest of the burst folded, its offsets past
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        assert [x["body"]["kind"] for x in soc.received()] == ["alert"]
        assert datetime.now(UTC) < now + timedelta(seconds=25), "the window closed too soon"
        with running_worker(env, tmp_path / "alerts-2.log", ALERTS) as process:
            wait_for(
                lambda: any(x["body"]["kind"] == "summary" for x in soc.received()),
                what="the summary",
                timeout=90,
            )
            wait_for(lambda: _lag(env, topics, "soc") == 0, what="committed", timeout=60)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
    got = soc.received()
    first = got[0]["body"]["id"]
    assert [(x["body"]["id"], x["key"]) for x in got[:2]] == [(first, _key("soc", first))] * 2
    summary = got[-1]["body"]
    assert (summary["id"], summary["count"]) == (f"{first}/summary", 30)


def test_the_worker_s_lockouts_reach_the_soc_as_they_happen(
    kafka_broker: KafkaBroker, topics: TopicSettings, tmp_path: Path
) -> None:
    """End to end: failed sign-ins on the events topic, the worker locks the subjects, the
    alerts process delivers each lockout (routed by type and severity) to the webhook."""
    from tests.integration.test_worker import BUSINESS, _failures

    secret = tmp_path / "k"
    secret.write_bytes(b"k")
    subjects = ["u-lock-1", "u-lock-2", "u-lock-3"]
    with webhook_receiver(free_port(), tmp_path / "soc.jsonl", secret) as soc:
        env = _env(
            kafka_broker,
            topics,
            tmp_path,
            destinations=[
                {"name": "soc", "kind": "webhook", "url": soc.url, "secret_file": str(secret)}
            ],
            routes=[
                {"destinations": ["soc"], "types": ["lockout.applied"], "min_severity": "medium"}
            ],
            lockouts_by="subject",
        )
        with (
            running_worker(env, tmp_path / "worker.log"),
            running_worker(env, tmp_path / "alerts.log", ALERTS),
        ):
            failures = [e for s in subjects for e in _failures(s, BUSINESS.max_failures)]
            _produce(kafka_broker.bootstrap, topics.events, failures)
            wait_for(
                lambda: {x["body"]["subject"] for x in soc.received()} >= set(subjects),
                what="a lockout alert for each subject",
                timeout=180,
            )
    got = soc.received()
    assert {x["body"]["type"] for x in got} == {"lockout.applied"}
    for line in got:
        event = line["body"]["event"]
        assert event["type"] == "lockout.applied" and event["subject"] == line["body"]["subject"]
        assert line["key"] == _key("soc", event["id"])


def test_alerts_ride_out_a_broker_outage(
    kafka_broker: KafkaBroker, topics: TopicSettings, tmp_path: Path
) -> None:
    singles, _, _ = _events()
    secret = tmp_path / "k"
    secret.write_bytes(b"k")
    with webhook_receiver(free_port(), tmp_path / "soc.jsonl", secret) as soc:
        env = _env(
            kafka_broker,
            topics,
            tmp_path,
            destinations=[
                {"name": "soc", "kind": "webhook", "url": soc.url, "secret_file": str(secret)}
            ],
            min_severity="low",
        )
        with running_worker(env, tmp_path / "alerts.log", ALERTS) as process:
            _produce(kafka_broker.bootstrap, topics.anomalies, singles[:20])
            wait_for(lambda: len(soc.received()) >= 20, what="the first twenty", timeout=90)
            with kafka_broker.outage():
                time.sleep(5)
                assert process.poll() is None, "the alerts process waits for the broker"
            _produce(kafka_broker.bootstrap, topics.anomalies, singles[20:])
            wait_for(
                lambda: {e.id for e in singles} <= {x["body"]["id"] for x in soc.received()},
                what="every alert after the outage",
                timeout=120,
            )
            wait_for(lambda: _lag(env, topics, "soc") == 0, what="committed", timeout=120)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
