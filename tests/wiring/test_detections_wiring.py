"""The detections and per-IP throttling in Faust's test_context (memory store): thresholds
from settings, re-keying by IP and tenant, the folds' tables and derived events, and the
``GET /lockouts/ip/{ip}`` API."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from faust.exceptions import SameNode
from faust.types import TopicT

from factorstream.settings import DetectionSettings, IpBlockSettings, Settings, StreamSettings
from schemas import Event, decode, encode, kafka_key
from schemas import payloads as p
from schemas.codec import structured_headers
from schemas.fields import Channel, Factor, Outcome
from schemas.payloads import Detection
from streams.app import Pipeline, create_pipeline
from streams.detection_agents import detection_thresholds, ip_block_policy
from streams.folds import BY_IP, BY_SUBJECT, BY_TENANT, DetectionThresholds
from streams.folds.ipblock import REASON, IpBlockPolicy, IpBlockState
from streams.positions import fold_state
from tests.factories import T0
from tests.support import delivered
from tests.unit.streams import MINUTE, SECOND, SYDNEY, Log, client

IP = "198.51.100.23"
Sent = dict[str, list[tuple[bytes, Event]]]


def _pipeline(tmp_path: Path, **groups: Any) -> Pipeline:
    stream = StreamSettings(store="memory://", app_id=f"wiring-{uuid.uuid4().hex[:8]}")
    return create_pipeline(Settings(data_dir=tmp_path, stream=stream, **groups))


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    return _pipeline(tmp_path)


@pytest.fixture
def sent(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Sent:
    """What the agents sent, as (key, decoded event), by topic (``ip``, ``tenant``,
    ``lockouts``, ``anomalies``); the producer is never started."""
    records: Sent = defaultdict(list)

    def recorder(name: str) -> Any:
        async def send(*, key: bytes, value: bytes, headers: Any = None, **_: Any) -> Any:
            assert list(headers)[:1] == structured_headers()
            records[name].append((key, decode(value, headers)))
            return delivered()

        return send

    topics: dict[str, TopicT] = {
        **pipeline.rekeyed,
        "lockouts": pipeline.lockouts,
        "anomalies": pipeline.anomalies,
    }
    for name, topic in topics.items():
        monkeypatch.setattr(topic, "send", recorder(name))
    return records


def failed_login(log: Log, at: datetime, subject: str, ip: str = IP) -> Event:
    data = p.LoginAttempted(
        outcome=Outcome.FAILURE, method="password", reason="invalid_password", client=client(ip=ip)
    )
    return log.event(data, at, subject=subject)


async def _put(
    pipeline: Pipeline, agent_name: str, records: list[tuple[bytes, Event]]
) -> list[Any]:
    async with pipeline.agents[agent_name].test_context() as agent:
        for key, event in records:
            await agent.put(encode(event), key=key)
        return [agent.results[i] for i in range(len(records))]


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


# -- re-keying --------------------------------------------------------------------------


async def test_rekey_forwards_by_ip_and_by_tenant_only_what_their_folds_read(
    pipeline: Pipeline, sent: Sent
) -> None:
    log = Log()
    mapped = failed_login(log, T0, "u-1", ip=f"::ffff:{IP}")
    success = log.event(
        p.LoginAttempted(outcome=Outcome.SUCCESS, method="password", client=client(ip=IP)),
        T0,
        subject="u-2",
    )
    sms = p.ChallengeSent(
        factor=Factor.SMS, challenge_id="c-1", channel=Channel.SMS, provider="twilio"
    )
    sms_event = log.event(sms, T0, subject="u-3", tenant="globex")
    removed = log.removed(T0)  # no IP, not an SMS: read by the subject folds only
    events = [mapped, success, sms_event, removed]
    results = await _put(pipeline, "rekey", [(kafka_key(e), e) for e in events])

    assert results == [{"ip": IP}, {"ip": IP}, {"tenant": "globex"}, {}]
    assert sent["ip"] == [(IP.encode(), mapped), (IP.encode(), success)]
    assert sent["tenant"] == [(b"globex", sms_event)]


# -- the folds --------------------------------------------------------------------------


async def test_subject_detections_run_on_the_ingested_topic(pipeline: Pipeline, sent: Sent) -> None:
    log = Log()
    berlin, sydney = log.sign_in(T0), log.sign_in(T0 + 30 * MINUTE, SYDNEY)
    derived = await _put(pipeline, BY_SUBJECT.name, [(kafka_key(e), e) for e in (berlin, sydney)])

    assert [len(d) for d in derived] == [0, 1]
    ((key, risk),) = sent["anomalies"]
    assert isinstance(risk.data, p.RiskDetected)
    assert (risk.data.detection, key) == (Detection.IMPOSSIBLE_TRAVEL, b"acme/u-1001")
    assert (
        fold_state(pipeline.tables[BY_SUBJECT.name][b"acme/u-1001"])["travel"]["last"] is not None
    )


async def test_password_spray_runs_per_ip_and_skips_what_it_does_not_read(
    pipeline: Pipeline, sent: Sent
) -> None:
    log = Log()
    failures = [failed_login(log, T0 + i * SECOND, f"u-{i}") for i in range(10)]
    success = log.event(
        p.LoginAttempted(outcome=Outcome.SUCCESS, method="password", client=client(ip="192.0.2.8")),
        T0,
    )
    records = [(IP.encode(), e) for e in failures] + [(b"192.0.2.8", success)]
    derived = await _put(pipeline, BY_IP.name, records)

    assert [len(d) for d in derived] == [0] * 9 + [1, 0]
    ((key, risk),) = sent["anomalies"]
    assert isinstance(risk.data, p.RiskDetected)
    assert risk.data.detection is Detection.PASSWORD_SPRAY
    assert key == kafka_key(failures[-1])  # the trigger's partitionkey
    table = pipeline.tables[BY_IP.name]
    assert IP.encode() in table
    assert b"192.0.2.8" not in table  # forwarded for ip_block; spray never read it


async def test_sms_pumping_runs_per_tenant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = _pipeline(tmp_path, detections=DetectionSettings(sms_premium_countries=["CU"]))
    anomalies: list[Event] = []

    async def send(*, key: bytes, value: bytes, **_: Any) -> Any:
        anomalies.append(decode(value))
        return delivered()

    monkeypatch.setattr(pipeline.anomalies, "send", send)
    log = Log()
    sends = [log.sms(T0 + i * SECOND, "CU", subject=f"u-{i}") for i in range(5)]
    await _put(pipeline, BY_TENANT.name, [(b"acme", e) for e in sends])

    (risk,) = anomalies
    assert isinstance(risk.data, p.RiskDetected)
    assert risk.data.detection is Detection.SMS_PUMPING
    assert b"acme" in pipeline.tables[BY_TENANT.name]


async def test_ip_block_applies_to_the_lockouts_topic_and_the_api_answers(
    pipeline: Pipeline, sent: Sent, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = Log()
    failures = [failed_login(log, T0 + i * SECOND, f"u-{i}") for i in range(20)]
    derived = await _put(pipeline, "ip_block", [(IP.encode(), e) for e in failures])

    assert [len(d) for d in derived] == [0] * 19 + [1]
    ((key, applied),) = sent["lockouts"]
    assert applied.type == "ip.block.applied" and key == kafka_key(failures[-1])
    assert isinstance(applied.data, p.IpBlockApplied)
    until = applied.data.blocked_until
    assert until == failures[-1].time + IpBlockPolicy().duration
    assert "anomalies" not in sent
    stored = fold_state(pipeline.tables["ip_block"][IP.encode()])
    assert IpBlockState.from_dict(stored).block is not None

    routed: list[tuple[str, bytes]] = []

    async def this_node_owns_every_key(table: str, key: bytes, *_: Any) -> Any:
        routed.append((table, key))
        raise SameNode()

    monkeypatch.setattr(pipeline.app.router, "route_req", this_node_owns_every_key)
    async with TestClient(TestServer(pipeline.app.web.web_app)) as http:

        async def get(path: str) -> tuple[int, dict[str, Any]]:
            response = await http.get(path)
            return response.status, await response.json()

        status, body = await get(f"/lockouts/ip/::ffff:{IP}?at={_q(until - SECOND)}")
        assert status == 200
        assert body == {
            "ip": IP,
            "at": (until - SECOND).isoformat(),
            "blocked": True,
            "until": until.isoformat(),
            "since": failures[-1].time.isoformat(),
            "reason": REASON,
            "failures": 20,
            "distinct_subjects": 20,
        }
        assert routed == [("ip_block", IP.encode())]  # routed by the canonical key
        assert (await get(f"/lockouts/ip/{IP}?at={_q(until)}"))[1]["blocked"] is False
        status, body = await get("/lockouts/ip/2001:db8::1")
        assert (status, body["blocked"], body["until"]) == (200, False, None)
        assert datetime.fromisoformat(body["at"]).tzinfo is not None

        status, body = await get("/lockouts/ip/999.1.1.1")
        assert status == 400 and body["error"].startswith("ip: expected an IPv4 or IPv6")
        status, body = await get(f"/lockouts/ip/{IP}?at=yesterday")
        assert status == 400 and "RFC 3339" in body["error"]
        # a tenant named "ip" with a subject that is no address reaches the subject route
        status, body = await get("/lockouts/ip/u-1")
        assert (status, body["tenant"], body["subject"], body["locked"]) == (
            200,
            "ip",
            "u-1",
            False,
        )


def _q(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
