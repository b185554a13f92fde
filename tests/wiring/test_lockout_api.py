"""The lockout API over the stage runners (streams/api.py, streams/engine.py): it answers
from a key's live state, before the commit writes it to the table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application
from faust.exceptions import SameNode
from faust.types import TP

from schemas import Event
from schemas import payloads as p
from schemas.fields import LockoutScope, Outcome, PolicyTier
from streams.app import Pipeline
from streams.topology import LOCKOUT
from tests.factories import T0, sample_event
from tests.unit.streams import SECOND, Log, client
from tests.wiring.fixtures import as_fetched, folds_pipeline, journal_of, produced_as_read
from verifiers.lockout import LockoutState
from verifiers.policy import TIERS

BUSINESS = TIERS[PolicyTier.BUSINESS]
IP = "198.51.100.23"


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    return folds_pipeline(tmp_path)


async def through_subjects(pipeline: Pipeline, events: list[Event], *, first: int = 0) -> None:
    """``events`` through ingest and the subjects stage (no commit: nothing flushed)."""
    journal_of(pipeline).entries.clear()
    await pipeline.engine.keyed("subjects").handle(as_fetched(pipeline, events, first_offset=first))


def login_failures(n: int, *, subject: str, start: datetime = T0) -> list[Event]:
    return [
        sample_event("auth.login.attempted", subject=subject, now=start + timedelta(seconds=10 * i))
        for i in range(n)
    ]


def failures_of(stored: Any) -> int:
    assert isinstance(stored, dict)
    return LockoutState.from_dict(stored["states"][LOCKOUT]).failures


async def test_stored_answers_from_the_live_cache_before_the_table(pipeline: Pipeline) -> None:
    subjects, table = pipeline.engine.keyed("subjects"), pipeline.tables["subjects"]
    first, second = (
        login_failures(2, subject="u-1"),
        login_failures(1, subject="u-1", start=T0 + timedelta(minutes=1)),
    )
    await through_subjects(pipeline, first)
    await pipeline.engine.flush()  # a commit: the table has two failures
    await through_subjects(pipeline, second, first=2)  # a third, not committed yet

    assert failures_of(table.get(b"acme/u-1")) == 2
    assert failures_of(subjects.stored(b"acme/u-1")) == 3  # the live state
    assert subjects.stored(b"acme/never-seen") is None

    subjects.forget()  # a rebalance: the cache is gone, the table is the truth
    assert failures_of(subjects.stored(b"acme/u-1")) == 2


@pytest.fixture
def this_node_owns_every_key(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[str, bytes]]:
    """Table routing answers "this node" for every key; the routed (table, key) pairs."""
    routed: list[tuple[str, bytes]] = []

    async def route_req(table: str, key: bytes, *_: Any) -> Any:
        routed.append((table, key))
        raise SameNode()

    monkeypatch.setattr(pipeline.app.router, "route_req", route_req)
    return routed


async def test_the_lockout_api_answers_from_the_live_state(
    pipeline: Pipeline, this_node_owns_every_key: list[tuple[str, bytes]]
) -> None:
    events = login_failures(BUSINESS.max_failures, subject="u/with/slashes")
    otp = [
        sample_event("mfa.verification.failed", subject="u-7", now=T0 + timedelta(seconds=10 * i))
        for i in range(BUSINESS.otp_max_failures)
    ]
    await through_subjects(pipeline, events + otp)  # not flushed: in the live cache only
    assert pipeline.tables["subjects"].get(b"acme/u-7") is None

    until = events[-1].time + BUSINESS.lockout_duration
    async with TestClient(TestServer(web_app(pipeline))) as http:

        async def get(path: str) -> tuple[int, dict[str, Any]]:
            response = await http.get(path)
            return response.status, await response.json()

        status, body = await get(f"/lockouts/acme/u/with/slashes?at={_q(until - SECOND)}")
        assert status == 200
        assert body == {
            "tenant": "acme",
            "subject": "u/with/slashes",
            "factor": None,
            "at": (until - SECOND).isoformat(),
            "locked": True,
            "until": until.isoformat(),
            "permanent": False,
            "scope": "subject",
            "reason": "max_failures",
        }
        assert ("subjects", b"acme/u/with/slashes") in this_node_owns_every_key
        assert (await get(f"/lockouts/acme/u/with/slashes?at={_q(until)}"))[1]["locked"] is False

        otp_until = otp[-1].time + BUSINESS.otp_lockout
        status, body = await get(f"/lockouts/acme/u-7?factor=totp&at={_q(otp_until - SECOND)}")
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


def failed_login(log: Log, at: datetime, subject: str) -> Event:
    data = p.LoginAttempted(
        outcome=Outcome.FAILURE, method="password", reason="invalid_password", client=client(ip=IP)
    )
    return log.event(data, at, subject=subject)


async def test_a_block_a_tenants_provider_reported_is_answered_for_that_tenant_alone(
    pipeline: Pipeline, this_node_owns_every_key: list[tuple[str, bytes]]
) -> None:
    report = Log(tenant="mallory").event(
        p.IdpLockReported(provider="auth0", scope=LockoutScope.IP, reason="limit_wc", ip=IP),
        T0,
    )
    await through_subjects(pipeline, [report])
    journal, by_ip = journal_of(pipeline), pipeline.rekeyed["ip"].get_topic_name()
    batch = produced_as_read(journal, by_ip)
    journal.entries.clear()
    await pipeline.engine.keyed("ips").handle({TP(by_ip, 0): batch})
    (applied,) = journal.events(pipeline.lockouts.get_topic_name())
    assert isinstance(applied.data, p.IpBlockApplied)
    assert (applied.tenant, applied.data.only_tenant) == ("mallory", "mallory")
    del this_node_owns_every_key[:]

    async with TestClient(TestServer(web_app(pipeline))) as http:

        async def blocked(query: str) -> bool:
            response = await http.get(f"/lockouts/ip/{IP}?at={_q(T0 + SECOND)}{query}")
            assert response.status == 200
            return bool((await response.json())["blocked"])

        assert await blocked("&tenant=mallory")
        assert not await blocked("&tenant=acme")
        assert not await blocked("")


async def test_the_ip_block_api_answers_from_the_ips_stage(
    pipeline: Pipeline, this_node_owns_every_key: list[tuple[str, bytes]]
) -> None:
    log = Log()
    failures = [failed_login(log, T0 + i * SECOND, f"u-{i}") for i in range(20)]
    await through_subjects(pipeline, failures)
    journal, by_ip = journal_of(pipeline), pipeline.rekeyed["ip"].get_topic_name()
    batch = produced_as_read(journal, by_ip)
    assert {m.key for m in batch} == {IP.encode()}
    journal.entries.clear()
    await pipeline.engine.keyed("ips").handle({TP(by_ip, 0): batch})
    (applied,) = journal.events(pipeline.lockouts.get_topic_name())
    assert isinstance(applied.data, p.IpBlockApplied)
    until = applied.data.blocked_until
    del this_node_owns_every_key[:]

    async with TestClient(TestServer(web_app(pipeline))) as http:

        async def get(path: str) -> tuple[int, dict[str, Any]]:
            response = await http.get(path)
            return response.status, await response.json()

        status, body = await get(f"/lockouts/ip/::ffff:{IP}?at={_q(until - SECOND)}")
        assert status == 200
        assert (body["ip"], body["blocked"], body["until"]) == (IP, True, until.isoformat())
        assert (body["reason"], body["distinct_subjects"]) == (
            applied.data.reason,
            applied.data.distinct_subjects,
        )
        assert body["at"] == (until - SECOND).isoformat()
        assert this_node_owns_every_key == [("ips", IP.encode())]  # the canonical key
        assert (await get(f"/lockouts/ip/{IP}?at={_q(until)}"))[1]["blocked"] is False
        status, body = await get("/lockouts/ip/2001:db8::1")
        assert (status, body["blocked"], body["until"]) == (200, False, None)
        assert datetime.fromisoformat(body["at"]).tzinfo is not None

        status, body = await get("/lockouts/ip/999.1.1.1")
        assert status == 400 and body["error"].startswith("ip: expected an IPv4 or IPv6")
        status, body = await get(f"/lockouts/ip/{IP}?at=yesterday")
        assert status == 400 and "RFC 3339" in body["error"]
        status, body = await get(f"/lockouts/ip/{IP}?tenant=a%2Fb")
        assert status == 400 and body["error"].startswith("tenant: expected a tenant id")
        # a tenant named "ip" with a subject that is no address reaches the subject route
        status, body = await get("/lockouts/ip/u-1")
        assert (status, body["tenant"], body["subject"], body["locked"]) == (
            200,
            "ip",
            "u-1",
            False,
        )


def web_app(pipeline: Pipeline) -> Application:
    app: Application = pipeline.app.web.web_app  # type: ignore[attr-defined]
    return app


def _q(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def test_while_no_worker_is_known_to_own_the_key_the_api_says_503(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starting or rebalancing, Faust's router has no partition metadata (it raises a
    TypeError deep in aiokafka's partitioner): the caller is told to retry, not a 500."""

    async def route_req(*_: Any) -> Any:
        raise TypeError("'NoneType' object is not iterable")

    monkeypatch.setattr(pipeline.app.router, "route_req", route_req)
    async with TestClient(TestServer(web_app(pipeline))) as http:
        for path in ("/lockouts/acme/u-1", f"/lockouts/ip/{IP}"):
            response = await http.get(path)
            assert response.status == 503, path
            assert "not known yet" in (await response.json())["error"]


TOKEN = "t0ken-for-the-lockout-api-0123456789"


async def test_with_a_token_set_every_request_needs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "api.token"
    token_file.write_text(TOKEN + "\n")
    pipeline = folds_pipeline(tmp_path / "worker", api_token_file=token_file)

    async def route_req(*_: Any) -> Any:
        raise SameNode()

    monkeypatch.setattr(pipeline.app.router, "route_req", route_req)
    async with TestClient(TestServer(web_app(pipeline))) as http:
        for path in ("/lockouts/acme/u-1", f"/lockouts/ip/{IP}", "/lockouts/_owners"):
            for headers in (
                {},
                {"Authorization": "Bearer"},
                {"Authorization": "Bearer " + TOKEN[:-1]},
                {"Authorization": "Bearer " + TOKEN + "x"},
                {"Authorization": "Basic " + TOKEN},
                {"Authorization": TOKEN},
            ):
                response = await http.get(path, headers=headers)
                assert response.status == 401, (path, headers)
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
            response = await http.get(path, headers={"Authorization": "Bearer " + TOKEN})
            assert response.status == 200, path


def test_without_a_token_the_api_listens_on_loopback_only(tmp_path: Path) -> None:
    for bind in ("0.0.0.0", "::", "192.0.2.10", "worker"):  # noqa: S104 - refused here
        with pytest.raises(ValueError, match="not a loopback address"):
            folds_pipeline(tmp_path / bind.replace(":", "_"), web_bind=bind)
    for bind in ("127.0.0.1", "::1", "localhost"):
        folds_pipeline(tmp_path / bind.replace(":", "_"), web_bind=bind)
    short = tmp_path / "short.token"
    short.write_text("guessable")
    with pytest.raises(ValueError, match="at least 24 characters"):
        folds_pipeline(tmp_path / "short", api_token_file=short)


async def test_far_times_are_a_400_and_fausts_layout_pages_are_not_served(
    pipeline: Pipeline, this_node_owns_every_key: list[tuple[str, bytes]]
) -> None:
    async with TestClient(TestServer(web_app(pipeline))) as http:
        for at in ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00"):
            for path in ("/lockouts/acme/u-1", f"/lockouts/ip/{IP}"):
                response = await http.get(path, params={"at": at})
                assert response.status == 400, (path, at)
                assert "years from now" in (await response.json())["error"]
        response = await http.get("/lockouts/acme/u-1", params={"at": _q(T0)})
        assert response.status == 200
        for page in ("/router/", "/table/", "/stats/", "/graph/", "/assignment/"):
            response = await http.get(page)
            assert response.status == 404, page
