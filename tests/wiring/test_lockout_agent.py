"""The lockout agent and the lockout API in Faust's test_context (memory store)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer
from faust.exceptions import SameNode
from faust.types import TopicT

from factorstream.settings import Settings, StreamSettings
from schemas import Event, decode, encode, kafka_key
from schemas import payloads as p
from schemas.codec import structured_headers
from schemas.fields import Factor, LockoutScope, PolicyTier
from streams.api import lockout_answer, parse_query
from streams.app import Pipeline, create_pipeline
from streams.lockout_agent import KeyedFold
from streams.positions import JsonState, fold_state, origin_header
from tests.factories import CONTEXT, T0, sample_event
from tests.support import delivered
from verifiers.lockout import LockoutState, fold_lockout
from verifiers.policy import TIERS, lockout_policy

BUSINESS = TIERS[PolicyTier.BUSINESS]


def _pipeline(tmp_path: Path, **stream: Any) -> Pipeline:
    settings = StreamSettings(store="memory://", app_id=f"wiring-{uuid.uuid4().hex[:8]}", **stream)
    return create_pipeline(Settings(data_dir=tmp_path, stream=settings))


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    return _pipeline(tmp_path)


@pytest.fixture
def sent(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Event]]:
    """Events the agents sent, decoded, by topic name (the producer is never started)."""
    records: dict[str, list[Event]] = defaultdict(list)

    def recorder(topic: TopicT) -> Any:
        async def send(*, key: bytes, value: bytes, headers: Any = None, **_: Any) -> Any:
            event = decode(value, headers)
            assert key == kafka_key(event)
            assert list(headers) == structured_headers()
            records[topic.get_topic_name()].append(event)
            return delivered()

        return send

    for topic in (pipeline.dlq, pipeline.ingested, pipeline.lockouts, pipeline.anomalies):
        monkeypatch.setattr(topic, "send", recorder(topic))
    return records


def login_failures(n: int, *, subject: str = "u-1", start: datetime = T0) -> list[Event]:
    """``n`` password failures 10 s apart (business tier; slower than a quick login)."""
    return [
        sample_event("auth.login.attempted", subject=subject, now=start + timedelta(seconds=10 * i))
        for i in range(n)
    ]


async def _fold(pipeline: Pipeline, name: str, events: list[Event]) -> list[list[Event]]:
    async with pipeline.agents[name].test_context() as agent:
        for event in events:
            await agent.put(encode(event), key=kafka_key(event))
        return [agent.results[i] for i in range(len(events))]


async def test_the_lockout_fold_is_applied_and_its_table_written_back(
    pipeline: Pipeline, sent: dict[str, list[Event]]
) -> None:
    events = login_failures(BUSINESS.max_failures, subject="u-1") + login_failures(2, subject="u-2")
    derived = await _fold(pipeline, "lockout", events)

    # the pure fold over the same events is the reference
    expected, reference = LockoutState(), []
    for event in events[: BUSINESS.max_failures]:
        expected, out = fold_lockout(expected, event, lockout_policy(BUSINESS))
        reference += out
    table = pipeline.tables["lockout"]
    assert fold_state(table[b"acme/u-1"]) == expected.to_dict()
    assert LockoutState.from_dict(fold_state(table[b"acme/u-2"])).failures == 2
    fifth = events[BUSINESS.max_failures - 1]
    assert expected.locked_until == fifth.time + BUSINESS.lockout_duration

    # derived lockout.applied forwarded to the lockouts topic, keyed by partitionkey
    assert [len(d) for d in derived] == [0, 0, 0, 0, 1, 0, 0]
    (applied,) = sent[pipeline.lockouts.get_topic_name()]
    assert applied == reference[0] == derived[4][0]
    assert applied.type == "lockout.applied"
    assert isinstance(applied.data, p.LockoutApplied)
    assert (applied.data.scope, applied.data.reason) == (LockoutScope.SUBJECT, "max_failures")
    assert applied.data.trigger_event_id == fifth.id
    assert not sent[pipeline.anomalies.get_topic_name()]


async def test_the_policy_comes_from_the_event_tier_else_the_default_tier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = TIERS[PolicyTier.ADMIN]
    pipeline = _pipeline(tmp_path, default_tier=PolicyTier.ADMIN)
    monkeypatch.setattr(pipeline.lockouts, "send", _discard)
    untiered = p.LoginAttempted(**{**_login_fields(), "policy_tier": None})
    events = [
        sample_event("auth.login.attempted", subject="u-9", now=T0 + timedelta(seconds=10 * i))
        for i in range(admin.max_failures)
    ]
    # untiered events (→ admin, the default here) around a business-tier one
    events = [e if i % 2 else _with_payload(e, untiered) for i, e in enumerate(events)]
    derived = await _fold(pipeline, "lockout", events)

    # the third failure is judged by admin's policy (3 failures lock; business needs 5)
    assert [len(d) for d in derived] == [0, 0, 1]
    state = LockoutState.from_dict(fold_state(pipeline.tables["lockout"][b"acme/u-9"]))
    assert state.locked_until == events[-1].time + admin.lockout_duration


async def test_events_that_change_no_state_write_nothing(
    pipeline: Pipeline, sent: dict[str, list[Event]]
) -> None:
    challenge = sample_event("mfa.challenge.issued", subject="u-3")
    derived = await _fold(pipeline, "lockout", [challenge])

    assert derived == [[]]
    assert b"acme/u-3" not in pipeline.tables["lockout"]


async def test_detections_plug_in_as_keyed_folds_with_their_own_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook for streams/folds/: a KeyedFold's state is kept per key, its events go to
    the anomalies topic. (A stand-in counting sign-ins; real detections live elsewhere.)"""

    def count(state: JsonState | None, event: Event) -> tuple[JsonState | None, list[Event]]:
        return {"seen": (state or {"seen": 0})["seen"] + 1}, []

    settings = StreamSettings(store="memory://", app_id=f"wiring-{uuid.uuid4().hex[:8]}")
    pipeline = create_pipeline(
        Settings(data_dir=tmp_path, stream=settings),
        detections=[KeyedFold("sign-in-count", count, "anomalies")],
    )
    await _fold(pipeline, "sign-in-count", [sample_event(), sample_event()])

    assert fold_state(pipeline.tables["sign-in-count"][b"acme/u-1001"]) == {"seen": 2}
    assert {"ingest", "lockout", "sign-in-count"} <= set(pipeline.agents)


async def test_the_api_answers_from_the_table(
    pipeline: Pipeline, sent: dict[str, list[Event]], monkeypatch: pytest.MonkeyPatch
) -> None:
    events = login_failures(BUSINESS.max_failures, subject="u/with/slashes")
    otp = [
        sample_event("mfa.verification.failed", subject="u-7", now=T0 + timedelta(seconds=10 * i))
        for i in range(BUSINESS.otp_max_failures)
    ]
    await _fold(pipeline, "lockout", events + otp)

    async def this_node_owns_every_key(*_: Any) -> Any:
        raise SameNode()

    monkeypatch.setattr(pipeline.app.router, "route_req", this_node_owns_every_key)
    until = events[-1].time + BUSINESS.lockout_duration
    async with TestClient(TestServer(pipeline.app.web.web_app)) as client:

        async def get(path: str) -> tuple[int, dict[str, Any]]:
            response = await client.get(path)
            return response.status, await response.json()

        status, body = await get(f"/lockouts/acme/u/with/slashes?at={_q(until - _s(1))}")
        assert status == 200
        assert body == {
            "tenant": "acme",
            "subject": "u/with/slashes",
            "factor": None,
            "at": (until - _s(1)).isoformat(),
            "locked": True,
            "until": until.isoformat(),
            "permanent": False,
            "scope": "subject",
            "reason": "max_failures",
        }
        assert (await get(f"/lockouts/acme/u/with/slashes?at={_q(until)}"))[1]["locked"] is False

        otp_until = otp[-1].time + BUSINESS.otp_lockout
        status, body = await get(f"/lockouts/acme/u-7?factor=totp&at={_q(otp_until - _s(1))}")
        assert (body["locked"], body["scope"], body["factor"]) == (True, "factor", "totp")
        assert (body["reason"], body["until"]) == ("otp_max_failures", otp_until.isoformat())
        assert (await get(f"/lockouts/acme/u-7?factor=sms&at={_q(T0)}"))[1]["locked"] is False
        assert (await get(f"/lockouts/acme/u-7?at={_q(T0)}"))[1]["locked"] is False

        status, body = await get("/lockouts/acme/never-seen")
        assert (status, body["locked"], body["until"]) == (200, False, None)
        assert datetime.fromisoformat(body["at"]).tzinfo is not None  # now, at the edge

        status, body = await get("/lockouts/acme/u-7?factor=carrier-pigeon")
        assert status == 400 and body["error"].startswith("factor: expected one of")
        status, body = await get("/lockouts/acme/u-7?at=yesterday")
        assert status == 400 and "RFC 3339" in body["error"]


def test_lockout_answer_and_query_parsing_are_plain_functions() -> None:
    state = LockoutState(permanent=True, lock_reason="max_temporary_lockouts").to_dict()
    answer = lockout_answer(state, tenant="t", subject="s", at=T0, factor=Factor.SMS)
    assert (answer["locked"], answer["permanent"], answer["until"]) == (True, True, None)
    assert parse_query({"factor": "sms", "at": "2026-11-02T09:30:00Z"}) == (Factor.SMS, T0)
    with pytest.raises(ValueError, match="offset"):
        parse_query({"at": "2026-11-02T09:30:00"})


def _q(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


async def _discard(**_: Any) -> Any:
    return delivered()


def _login_fields() -> dict[str, Any]:
    return {"outcome": "failure", "method": "password", "reason": "invalid_password", **CONTEXT}


def _with_payload(event: Event, payload: p.Payload) -> Event:
    return msgspec.structs.replace(event, data=payload)


async def test_a_replayed_event_is_applied_once(
    pipeline: Pipeline, sent: dict[str, list[Event]]
) -> None:
    """After a crash the worker reads again what came after its last commit: the same
    origin position is skipped, so nothing is counted twice (and no lock is re-derived)."""
    events = login_failures(BUSINESS.max_failures, subject="u-1")
    positions = list(range(100, 100 + len(events)))
    # the first four, then all five again from the start (a replay), then one more
    order = [*range(4), *range(len(events)), len(events) - 1]
    async with pipeline.agents["lockout"].test_context() as agent:
        for i in order:
            event = events[i]
            headers = [*structured_headers(), origin_header(0, positions[i])]
            await agent.put(encode(event), key=kafka_key(event), headers=headers)

    expected = LockoutState()
    for event in events:  # the pure fold over each event once is the reference
        expected, _ = fold_lockout(expected, event, lockout_policy(BUSINESS))
    assert fold_state(pipeline.tables["lockout"][b"acme/u-1"]) == expected.to_dict()
    assert expected.failures == BUSINESS.max_failures  # not 4 + 5 + 1
    assert len(sent[pipeline.lockouts.get_topic_name()]) == 1
    assert pipeline.tables["lockout"][b"acme/u-1"]["applied"] == {"0": positions[-1]}
