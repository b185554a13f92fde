"""A reproducible mix of sign-in events for benchmarks (not the demo simulator)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas import Event, new_event
from schemas import payloads as p
from schemas.envelope import uuid7
from schemas.fields import Channel, Client, Device, Factor, Geo, Outcome, PolicyTier

START = datetime(2026, 11, 1, tzinfo=UTC)
_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
_PLACES = (
    ("DE", "Berlin", 52.52, 13.40),
    ("US", "Austin", 30.27, -97.74),
    ("IN", "Pune", 18.52, 73.86),
    ("BR", "Recife", -8.05, -34.88),
)


def synthetic_events(count: int, *, seed: int = 7, subjects: int = 500) -> list[Event]:
    """``count`` events: logins, challenges, verifications and pushes of many subjects."""
    return list(_events(count, random.Random(seed), subjects))


def _events(count: int, rng: random.Random, subjects: int) -> Iterator[Event]:
    now = START
    for index in range(count):
        now += timedelta(milliseconds=rng.randint(1, 900))
        country, city, lat, lon = rng.choice(_PLACES)
        client = Client(
            ip=f"198.51.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            user_agent=rng.choice(_AGENTS),
            device=Device(id=f"dev-{rng.randint(1, 5000)}", kind="desktop"),
            geo=Geo(country=country, city=city, latitude=lat, longitude=lon, source="client"),
        )
        context: dict[str, Any] = {
            "application": rng.choice(("payroll", "crm", "vpn")),
            "policy_tier": PolicyTier.BUSINESS,
            "client": client,
        }
        factor = rng.choice((Factor.TOTP, Factor.WEBAUTHN, Factor.SMS, Factor.PUSH))
        step = index % 4
        payload: p.Payload
        if step == 0:
            payload = p.LoginAttempted(outcome=Outcome.SUCCESS, method="password", **context)
        elif step == 1:
            payload = p.ChallengeIssued(
                factor=factor,
                challenge_id=f"ch-{index}",
                channel=Channel.AUTHENTICATOR_APP,
                **context,
            )
        elif rng.random() < 0.85:
            payload = p.VerificationSucceeded(
                factor=factor,
                challenge_id=f"ch-{index - 1}",
                elapsed_ms=rng.randint(2000, 40000),
                **context,
            )
        else:
            payload = p.VerificationFailed(
                factor=factor, reason="invalid_code", challenge_id=f"ch-{index - 1}", **context
            )
        yield new_event(
            payload,
            source="https://login.example.com/mfa",
            tenant="acme",
            subject=f"u-{rng.randrange(subjects)}",
            correlationid=f"login-{index // 4}",
            now=now,
            event_id=uuid7(now, random_bits=rng.getrandbits(74)),
        )
