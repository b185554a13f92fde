"""Closing the loop on the real broker: a real ``factorstream worker`` folds what the MFA
service's ceremonies (relayed from its outbox) and another login service emit, and the
service, tailing the worker's topics, refuses and scores from what the worker decided.

* failures from one IP against 20 subjects, all through the API: the worker blocks the IP
  (``ip.block.applied``), and the next verification from it is refused (423 ip_blocked);
* failed passwords of one subject at another login service: the worker locks the subject
  (``lockout.applied``), and the next verification through the API is refused (423);
* a subject's sign-ins at another login service: a familiar device on a familiar network
  is assessed ``low``, a sign-in from Sydney an hour after Berlin ``high``, MFA required.

Staleness (event acknowledged by the broker → the service's answer reflects it) is
measured and printed for each (``-s`` shows it).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from factorstream.localkafka import free_port
from factorstream.settings import TopicSettings
from schemas import Event, new_event
from schemas import payloads as p
from schemas.fields import Client, Device, Factor, Geo, LockoutScope, Outcome, PolicyTier
from tests.integration.test_worker import _produce, _worker_env, running_worker, topics
from tests.kafka_broker import KafkaBroker
from tests.unit.verifiers.service.conftest import (
    Answer,
    Clock,
    Service,
    service_config,
    start_server,
    stop_server,
)
from verifiers.kafka_connection import as_connection
from verifiers.policy import TIERS
from verifiers.publish import OutboxRelay, kafka_producer_factory
from verifiers.risk import RiskThresholds, SubjectProfile
from verifiers.service.api import create_app
from verifiers.service.config import RateLimits, StreamViewConfig
from verifiers.service.server import close_parts, open_parts
from verifiers.service.stream_view import StreamView

__all__ = ["topics"]  # the fixture, re-used from test_worker

SPRAYER = "198.51.100.23"
BERLIN = Geo(country="DE", latitude=52.52, longitude=13.40)
T = TypeVar("T")


def within(seconds: float, probe: Callable[[], T | None]) -> tuple[T, float]:
    """``probe()`` until it returns something, and how long that took (s)."""
    start = time.monotonic()
    while True:
        found = probe()
        if found is not None:
            return found, time.monotonic() - start
        assert time.monotonic() - start < seconds, "the service never saw it"
        time.sleep(0.005)


@pytest.fixture
def looped(
    kafka_broker: KafkaBroker, topics: TopicSettings, tmp_path: Path
) -> Iterator[tuple[Service, OutboxRelay]]:
    """A worker, and a service tailing its topics whose outbox a relay publishes."""
    (tmp_path / "worker").mkdir()
    env = _worker_env(kafka_broker, topics, tmp_path / "worker", free_port())
    # behind real time: enrolling spends 30 s of it per subject, and the worker refuses
    # events more than stream.max_ahead_s (5 min) ahead of the broker's clock
    clock = Clock(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=15))
    config = service_config(
        tmp_path,
        stream=StreamViewConfig(
            kafka=as_connection(kafka_broker.bootstrap),
            events_topic=topics.events,
            lockouts_topic=topics.lockouts,
            anomalies_topic=topics.anomalies,
        ),
        rate_limits=RateLimits(per_ip_per_s=0, per_client_per_s=0),
    )
    parts = open_parts(config, clock=clock)
    assert parts.stream is not None and parts.stream.wait_caught_up(30)
    relay = OutboxRelay(
        parts.store.outbox,
        topic=topics.events,
        producer_factory=kafka_producer_factory(kafka_broker.bootstrap, linger_ms=0),
        poll_interval_s=0.01,
    )
    running = start_server(create_app(parts))
    try:
        with running_worker(env, tmp_path / "worker.log"), relay.in_background():
            yield Service("127.0.0.1", running.port, parts, clock), relay
    finally:
        stop_server(running)
        close_parts(parts)


def other_service(
    payload: p.Payload, at: datetime, subject: str, *, correlationid: str | None = None
) -> Event:
    return new_event(
        payload,
        source="https://login.example.com",
        tenant="acme",
        subject=subject,
        correlationid=correlationid or str(uuid.uuid4()),
        now=at,
    )


def verify(service: Service, token: str, subject: str, code: str, ip: str) -> Answer:
    return service.call(
        "POST", f"/v1/subjects/{subject}/totp/verify", {"code": code, "ip": ip}, token=token
    )


def test_what_the_stream_decides_reaches_the_next_request(
    looped: tuple[Service, OutboxRelay], kafka_broker: KafkaBroker, topics: TopicSettings
) -> None:
    service, relay = looped
    token = service.client("acme")
    staleness: dict[str, float] = {}

    def scored(subject: str, ip: str, factor: str) -> Callable[[], Any]:
        """A probe: the assessment once ``factor`` is among its factors (codes unspent)."""

        def probe() -> Any:
            found = service.call(
                "POST", "/v1/assess", {"subject": subject, "ip": ip}, token=token
            ).json
            return found if factor in {f["factor"] for f in found["factors"]} else None

        return probe

    def lock_elsewhere(subject: str) -> None:
        """A customer's password failing at another login service, until the worker locks."""
        max_failures = TIERS[PolicyTier.CUSTOMER].max_failures
        at = service.clock()
        failures = [
            other_service(
                p.LoginAttempted(
                    outcome=Outcome.FAILURE,
                    method="password",
                    reason="invalid_password",
                    policy_tier=PolicyTier.CUSTOMER,
                    client=Client(ip="192.0.2.44"),
                ),
                at + timedelta(seconds=5 * i),  # after the subject's own events
                subject,
            )
            for i in range(max_failures)
        ]
        _produce(kafka_broker.bootstrap, topics.events, failures)

    # the worker started with the service: staleness is measured once it folds (warm-up)
    lock_elsewhere("warm-up")
    _, startup = within(120, scored("warm-up", "203.0.113.9", "subject_locked"))

    # -- an IP failing against 20 subjects through the API is blocked by the worker -----
    authenticators = {f"s-{i:02d}": service.enrol_totp(token, f"s-{i:02d}") for i in range(21)}
    victim = "s-20"
    wrong = "000000"
    for subject in list(authenticators)[:20]:
        if authenticators[subject].at(service.clock()) == wrong:
            wrong = "111111"
        answer = verify(service, token, subject, wrong, SPRAYER)
        assert answer.status == 403 and answer.json["error"] == "invalid_code", answer.body
    relay.drain(timeout_s=30)
    published = time.monotonic()

    _, waited = within(60, scored(victim, SPRAYER, "ip_blocked"))
    staleness["ip block (20 API failures -> worker -> mfa.lockouts -> view)"] = (
        time.monotonic() - published
    )
    blocked = verify(service, token, victim, authenticators[victim].at(service.clock()), SPRAYER)
    assert blocked.status == 423, blocked.body
    assert blocked.json["error"] == "ip_blocked" and blocked.json["locked_until"]
    code = authenticators[victim].at(service.clock())
    assert verify(service, token, victim, code, "203.0.113.9").status == 200
    assert waited < 60

    # -- a subject another login service saw fail is locked by the worker ------------------
    service.clock.advance(seconds=30)
    locked_subject = "s-00"
    lock_elsewhere(locked_subject)
    produced = time.monotonic()
    service.clock.advance(minutes=1)
    authenticator = authenticators[locked_subject]

    within(60, scored(locked_subject, "203.0.113.9", "subject_locked"))
    staleness["subject lock (another service's failures -> worker -> view)"] = (
        time.monotonic() - produced
    )
    lock_answer = verify(
        service, token, locked_subject, authenticator.at(service.clock()), "203.0.113.9"
    )
    assert lock_answer.status == 423, lock_answer.body
    assert lock_answer.json["error"] == "locked_out" and lock_answer.json["locked_until"]

    # -- familiar and impossible sign-ins, from another service's history -----------------
    now = service.clock()
    laptop = Device(id="laptop-7")
    history = [
        other_service(
            p.VerificationSucceeded(
                factor=Factor.TOTP,
                client=Client(ip="203.0.113.7", device=laptop, geo=BERLIN),
            ),
            now - timedelta(days=days),
            "alice",
        )
        for days in (4, 3, 2, 1)
    ] + [
        other_service(
            p.VerificationSucceeded(
                factor=Factor.TOTP,
                client=Client(ip="203.0.113.7", device=laptop, geo=BERLIN),
            ),
            now - timedelta(hours=1),
            "alice",
        )
    ]
    _produce(kafka_broker.bootstrap, topics.events, history)
    produced = time.monotonic()
    berlin = {"country": "DE", "latitude": 52.5, "longitude": 13.4}

    def familiar() -> Any:
        found = service.call(
            "POST",
            "/v1/assess",
            {"subject": "alice", "ip": "203.0.113.80", "device_id": "laptop-7", "geo": berlin},
            token=token,
        ).json
        return found if not found["mfa"]["required"] else None

    low, _ = within(30, familiar)
    staleness["profile (another service's sign-ins -> view)"] = time.monotonic() - produced
    assert low["level"] == "low" and low["score"] == 0 and low["factors"] == []
    assert low["mfa"]["reasons"] == ["low_risk_context"]

    sydney = {"country": "AU", "latitude": -33.87, "longitude": 151.21}
    high = service.call(
        "POST",
        "/v1/assess",
        {"subject": "alice", "ip": "198.51.100.4", "device_id": "laptop-7", "geo": sydney},
        token=token,
    ).json
    assert high["level"] == "high", high
    assert {f["factor"] for f in high["factors"]} >= {"impossible_travel", "new_country"}
    assert high["mfa"]["required"] and "high_risk" in high["mfa"]["reasons"]
    assert "sms" not in high["mfa"]["required_factors"] + high["mfa"]["allowed_factors"]
    assert high["stream"]["mode"] == "kafka" and high["stream"]["caught_up"]

    lag = high["stream"]
    print(f"\nthe worker's first lock seen {startup:.1f} s after the service started")
    print("staleness (broker acknowledged -> the service's answer reflects it):")
    for what, seconds in staleness.items():
        print(f"  {what}: {seconds * 1000:.0f} ms")
    print(
        f"  view: records applied {lag['events_applied']}, Kafka timestamp -> applied "
        f"p50 {lag['lag_p50_ms']:.1f} ms, max {lag['lag_max_ms']:.1f} ms"
    )
    assert staleness["profile (another service's sign-ins -> view)"] < 5


def test_the_view_reads_on_after_an_outage_and_a_failure_and_folds_nothing_twice(
    kafka_broker: KafkaBroker, topics: TopicSettings
) -> None:
    view = StreamView(RiskThresholds())
    view.start(
        StreamViewConfig(
            kafka=as_connection(kafka_broker.bootstrap),
            events_topic=topics.events,
            lockouts_topic=topics.lockouts,
            anomalies_topic=topics.anomalies,
        )
    )
    try:
        assert view.wait_caught_up(30)
        now = datetime.now(UTC)
        signed_in = [  # two logins: one read again would count (the last would not)
            other_service(
                p.VerificationSucceeded(factor=Factor.TOTP, client=Client(ip="203.0.113.7")),
                now + timedelta(seconds=n),
                "bob",
            )
            for n in range(2)
        ]
        _produce(kafka_broker.bootstrap, topics.events, signed_in)
        within(30, lambda: view.profile("acme", "bob").sign_ins == 2 or None)

        with kafka_broker.outage():  # kill -9, started again on leaving the block
            time.sleep(3)
        failed: list[BaseException] = []
        apply = view.apply

        def fails_once(events: Iterable[Event]) -> None:  # the view's thread fails once
            if not failed:
                failed.append(RuntimeError("injected"))
                raise failed[0]
            apply(events)

        view.apply = fails_once  # type: ignore[method-assign]
        locked = other_service(
            p.LockoutApplied(
                scope=LockoutScope.SUBJECT,
                reason="too_many_failures",
                failures=10,
                locked_until=now + timedelta(minutes=15),
            ),
            now,
            "bob",
        )
        _produce(kafka_broker.bootstrap, topics.lockouts, [locked])

        def lock_seen() -> SubjectProfile | None:
            profile = view.profile("acme", "bob")
            return profile if profile.subject_lock is not None else None

        profile, _ = within(90, lock_seen)
    finally:
        view.stop()
    assert failed  # the failure happened, was logged, and the view reconnected
    assert profile.sign_ins == 2  # read on from where it was, not from the start again
    assert view.status().events_applied == 3
