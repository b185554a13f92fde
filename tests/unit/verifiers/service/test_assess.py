"""POST /v1/assess and the stream's locks and blocks, over HTTP, with a stream view fed
the events a worker would have written (the real broker: tests/integration)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from schemas import Event, decode, new_event
from schemas import payloads as p
from schemas.fields import Client, Device, Factor, Geo, LockoutScope
from verifiers.publish import outbox_events
from verifiers.risk import RiskThresholds
from verifiers.service.api import create_app
from verifiers.service.server import open_parts
from verifiers.service.stream_view import StreamView

from .conftest import Clock, Service, service_config, start_server, stop_server
from .test_api import events as outbox


def events(service: Service) -> list[dict[str, Any]]:
    return [dict(e) for e in outbox(service)]


HOME: dict[str, Any] = {"country": "DE", "latitude": 52.52, "longitude": 13.40}
HOME_GEO = Geo(country="DE", latitude=52.52, longitude=13.40)


@pytest.fixture
def view() -> StreamView:
    return StreamView(RiskThresholds(anonymous_networks=("185.220.100.0/22",)))


@pytest.fixture
def streamed(tmp_path: Path, clock: Clock, view: StreamView) -> Iterator[Service]:
    """A service whose stream view the test feeds."""
    config = service_config(tmp_path, risk=view.thresholds)
    parts = replace(open_parts(config, clock=clock), stream=view)
    parts.store.stream_lockouts = view.stream_lockouts(clock)
    running = start_server(create_app(parts))
    try:
        yield Service("127.0.0.1", running.port, parts, clock)
    finally:
        stop_server(running)


def stream_event(
    service: Service, payload: p.Payload, subject: str = "alice", **at: float
) -> Event:
    return new_event(
        payload,
        source="factorstream://test",
        tenant="acme",
        subject=subject,
        correlationid=f"c-{uuid.uuid4()}",
        now=service.clock() + timedelta(**at),
    )


def teach_history(service: Service, view: StreamView, days: int = 5) -> None:
    """alice signed in each of the last ``days`` days from Berlin on her laptop."""
    for day in range(days, 0, -1):
        client = Client(
            ip="203.0.113.7",
            device=Device(id="laptop-1"),
            geo=HOME_GEO,
        )
        view.apply(
            [
                stream_event(
                    service, p.VerificationSucceeded(factor=Factor.TOTP, client=client), days=-day
                )
            ]
        )


def assess(service: Service, token: str, **context: Any) -> Any:
    answer = service.call("POST", "/v1/assess", {"subject": "alice", **context}, token=token)
    assert answer.status == 200, answer.body
    return answer.json


def test_a_familiar_device_on_a_familiar_network_is_low_and_mfa_may_be_skipped(
    streamed: Service, view: StreamView
) -> None:
    token = streamed.client("acme")
    teach_history(streamed, view)

    found = assess(
        streamed,
        token,
        ip="203.0.113.50",
        device_id="laptop-1",
        geo=HOME,
        correlationid="login-1",
    )

    assert found["level"] == "low" and found["score"] == 0 and found["factors"] == []
    assert found["mfa"] == {
        "required": False,
        "reasons": ["low_risk_context"],
        "required_factors": [],
        "allowed_factors": [],
    }
    assert found["stream"]["mode"] == "kafka"
    recorded = [e for e in events(streamed) if e["correlationid"] == "login-1"]
    assert [e["type"] for e in recorded] == ["auth.login.attempted", "mfa.required"]
    assert recorded[0]["data"]["mfa_required"] is False
    assert recorded[1]["data"]["reasons"] == ["low_risk_context"]


def test_impossible_travel_is_high_and_requires_mfa_without_telephony(
    streamed: Service, view: StreamView
) -> None:
    token = streamed.client("acme")
    teach_history(streamed, view)
    view.apply(
        [
            stream_event(
                streamed,
                p.VerificationSucceeded(
                    factor=Factor.TOTP,
                    client=Client(ip="203.0.113.7", device=Device(id="laptop-1"), geo=HOME_GEO),
                ),
                minutes=-30,
            )
        ]
    )

    found = assess(
        streamed,
        token,
        ip="198.51.100.9",
        device_id="laptop-1",
        geo={"country": "AU", "latitude": -33.87, "longitude": 151.21},
        tier="business",
    )

    points = {f["factor"]: f["points"] for f in found["factors"]}
    assert points == {"impossible_travel": 60, "new_country": 25}
    assert found["level"] == "high" and found["score"] == 85
    assert found["mfa"]["required"] and "high_risk" in found["mfa"]["reasons"]
    allowed = found["mfa"]["required_factors"] + found["mfa"]["allowed_factors"]
    assert "sms" not in allowed and "totp" in allowed
    mfa_required = [e for e in events(streamed) if e["type"] == "mfa.required"][-1]
    assert mfa_required["data"]["risk_level"] == "high"


def test_without_a_stream_view_the_answer_says_so_and_scores_the_request_alone(
    service: Service,
) -> None:
    token = service.client("acme")
    found = assess(service, token, ip="203.0.113.50", device_id="laptop-1", geo=HOME)
    assert found["stream"] == {
        "mode": "none",
        "caught_up": False,
        "events_applied": 0,
        "lag_p50_ms": None,
        "lag_max_ms": None,
    }
    assert found["level"] == "low" and found["mfa"]["required"]
    assert "unknown_location" in found["mfa"]["reasons"]


def test_the_admin_tier_asks_for_a_phishing_resistant_factor(
    streamed: Service, view: StreamView
) -> None:
    token = streamed.client("acme")
    teach_history(streamed, view)
    found = assess(streamed, token, ip="203.0.113.50", device_id="laptop-1", geo=HOME, tier="admin")
    assert found["mfa"]["required"] and found["mfa"]["required_factors"] == ["webauthn"]
    assert not {"sms", "email", "voice"} & set(found["mfa"]["allowed_factors"])


def test_a_subject_of_another_tenant_is_scored_as_a_stranger(
    streamed: Service, view: StreamView
) -> None:
    teach_history(streamed, view)  # acme/alice
    other = streamed.client("globex")
    found = assess(streamed, other, ip="203.0.113.50", device_id="laptop-1", geo=HOME)
    assert found["mfa"]["required"] and "untrusted_device" in found["mfa"]["reasons"]


def test_bad_assess_requests_are_4xx_with_a_reason(streamed: Service) -> None:
    token = streamed.client("acme")
    naive = streamed.call(
        "POST", "/v1/assess", {"subject": "alice", "time": "2026-12-01T09:00:00"}, token=token
    )
    country = streamed.call(
        "POST", "/v1/assess", {"subject": "alice", "geo": {"country": "de"}}, token=token
    )
    backdated = streamed.call(
        "POST",
        "/v1/assess",
        {"subject": "alice", "time": (streamed.clock() - timedelta(hours=3)).isoformat()},
        token=token,
    )
    anonymous = streamed.call("POST", "/v1/assess", {"subject": "alice"})
    assert naive.status == 422 and naive.json["error"] == "invalid_request"
    assert country.status == 422
    assert backdated.status == 422 and backdated.json["error"] == "time_out_of_range"
    assert anonymous.status == 401


# -- enforcement ---------------------------------------------------------------------------


def lock(service: Service, scope: LockoutScope, factor: Factor | None = None) -> p.LockoutApplied:
    return p.LockoutApplied(
        scope=scope,
        reason="stream_lock",
        failures=10,
        factor=factor,
        locked_until=service.clock() + timedelta(minutes=15),
    )


def test_a_subject_the_stream_locked_is_refused_until_the_lock_ends(
    streamed: Service, view: StreamView
) -> None:
    token = streamed.client("acme")
    authenticator = streamed.enrol_totp(token, "alice")
    view.apply([stream_event(streamed, lock(streamed, LockoutScope.SUBJECT))])

    refused = streamed.call(
        "POST",
        "/v1/subjects/alice/totp/verify",
        {"code": authenticator.at(streamed.clock())},
        token=token,
    )
    recovery = streamed.call(
        "POST", "/v1/subjects/alice/recovery-codes/verify", {"code": "abcd-efgh"}, token=token
    )
    scored = assess(streamed, token)
    streamed.clock.advance(minutes=16)
    after = streamed.call(
        "POST",
        "/v1/subjects/alice/totp/verify",
        {"code": authenticator.at(streamed.clock())},
        token=token,
    )

    assert refused.status == 423 and refused.json["error"] == "locked_out"
    assert refused.json["locked_until"]
    assert recovery.status == 423
    assert scored["level"] == "high" and scored["factors"][0]["factor"] == "subject_locked"
    assert after.status == 200, after.body


def test_a_factor_the_stream_locked_is_refused_by_the_gate_and_recorded(
    streamed: Service, view: StreamView
) -> None:
    token = streamed.client("acme")
    authenticator = streamed.enrol_totp(token, "alice")
    view.apply([stream_event(streamed, lock(streamed, LockoutScope.FACTOR, Factor.TOTP))])

    refused = streamed.call(
        "POST",
        "/v1/subjects/alice/totp/verify",
        {"code": authenticator.at(streamed.clock())},
        token=token,
    )

    assert refused.status == 423 and refused.json["error"] == "locked_out"
    failed = [e for e in events(streamed) if e["type"] == "mfa.verification.failed"]
    assert failed and failed[-1]["data"]["reason"] == "locked_out"


def ip_block(service: Service, ip: str) -> Event:
    """The stream's ``ip.block.applied`` of ``ip`` for 30 minutes from now."""
    return new_event(
        p.IpBlockApplied(
            ip=ip,
            reason="many_subjects",
            failures=20,
            distinct_subjects=20,
            blocked_until=service.clock() + timedelta(minutes=30),
        ),
        source="factorstream://lockout",
        tenant="_platform",
        subject="_ip",
        correlationid="block",
        now=service.clock(),
    )


def test_an_ip_the_stream_blocked_is_refused_and_others_are_not(
    streamed: Service, view: StreamView
) -> None:
    token = streamed.client("acme")
    authenticator = streamed.enrol_totp(token, "alice")
    view.apply([ip_block(streamed, "192.0.2.66")])

    blocked = streamed.call(
        "POST",
        "/v1/subjects/alice/totp/verify",
        {"code": authenticator.at(streamed.clock()), "ip": "192.0.2.66"},
        token=token,
    )
    mapped = streamed.call(
        "POST",
        "/v1/subjects/alice/totp/verify",
        {"code": authenticator.at(streamed.clock()), "ip": "::ffff:192.0.2.66"},
        token=token,
    )
    scored = assess(streamed, token, ip="192.0.2.66")
    other = streamed.call(
        "POST",
        "/v1/subjects/alice/totp/verify",
        {"code": authenticator.at(streamed.clock()), "ip": "192.0.2.67"},
        token=token,
    )

    assert blocked.status == 423 and blocked.json["error"] == "ip_blocked"
    assert mapped.status == 423
    assert "ip_blocked" in {f["factor"] for f in scored["factors"]}
    assert other.status == 200, other.body


def test_a_block_another_tenants_provider_reported_does_not_refuse_our_sign_ins(
    streamed: Service, view: StreamView
) -> None:
    """Tenant mallory's adapter reports a block of an address acme's people share: acme's
    sign-ins from it go on; mallory's are refused."""
    acme, mallory = streamed.client("acme"), streamed.client("mallory")
    alice, mark = streamed.enrol_totp(acme, "alice"), streamed.enrol_totp(mallory, "mark")
    view.apply(
        [
            new_event(
                p.IpBlockApplied(
                    ip="192.0.2.66",
                    reason="idp_reported",
                    failures=0,
                    distinct_subjects=0,
                    blocked_until=streamed.clock() + timedelta(hours=2),
                    only_tenant="mallory",
                ),
                source="factorstream://lockout/ip",
                tenant="mallory",
                subject="ip-block",
                correlationid="report",
                now=streamed.clock(),
            )
        ]
    )

    def verify(token: str, subject: str, code: str) -> int:
        body = {"code": code, "ip": "192.0.2.66"}
        return streamed.call(
            "POST", f"/v1/subjects/{subject}/totp/verify", body, token=token
        ).status

    assert verify(acme, "alice", alice.at(streamed.clock())) == 200
    assert "ip_blocked" not in {
        f["factor"] for f in assess(streamed, acme, ip="192.0.2.66")["factors"]
    }
    assert verify(mallory, "mark", mark.at(streamed.clock())) == 423


def relay(service: Service, view: StreamView) -> None:
    """What the relay and the view's consumer do: the outbox's events into the view."""
    with service.parts.store.engine.connect() as connection:
        rows = connection.execute(sa.select(outbox_events.c.value).order_by("seq")).all()
    view.apply([decode(bytes(row.value), []) for row in rows])


def test_a_sign_in_through_the_api_makes_its_device_and_network_familiar(
    streamed: Service, view: StreamView
) -> None:
    token = streamed.client("acme")
    authenticator = streamed.enrol_totp(token, "alice")
    context = {"ip": "203.0.113.50", "device_id": "laptop-1", "geo": HOME}

    first = assess(streamed, token, **context)
    verified = streamed.call(
        "POST",
        "/v1/subjects/alice/totp/verify",
        {
            "code": authenticator.at(streamed.clock()),
            "correlationid": first["correlationid"],
            "ip": "203.0.113.50",
        },
        token=token,
    )
    relay(streamed, view)
    streamed.clock.advance(hours=1)
    again = assess(streamed, token, **context)

    assert first["mfa"]["required"] and "untrusted_device" in first["mfa"]["reasons"]
    assert verified.status == 200, verified.body
    assert again["level"] == "low" and not again["mfa"]["required"]
