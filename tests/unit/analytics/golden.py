"""A small fixed dataset for the golden tests of the metric queries.

Two UTC days (D1 = 2026-11-02, D2 = 2026-11-03), tenant ``acme`` (subjects alice, bob,
carol, dave, frank) and ``globex`` (erin). The expected answers in
``test_queries_golden.py`` are worked out by hand from the comments below.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas import Event, new_event
from schemas import payloads as p
from schemas.fields import (
    Channel,
    Client,
    Device,
    Factor,
    Geo,
    LockoutScope,
    Outcome,
    PolicyTier,
    RiskLevel,
)
from tests.factories import CLIENT as BERLIN

D1, D2 = "2026-11-02", "2026-11-03"
SYDNEY = Client(
    ip="198.51.100.9",
    device=Device(kind="mobile", os="iOS", browser="Safari"),
    geo=Geo(country="AU", city="Sydney", latitude=-33.87, longitude=151.21, source="client"),
)
BIZ = PolicyTier.BUSINESS


def at(day: str, clock: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=UTC)


def ev(payload: p.Payload, subject: str, when: datetime, corr: str, tenant: str = "acme") -> Event:
    return new_event(
        payload,
        source="https://login.example.com/mfa",
        tenant=tenant,
        subject=subject,
        correlationid=corr,
        now=when,
    )


def ctx(client: Client | None = None, app: str = "payroll", tier: Any = BIZ) -> dict[str, Any]:
    return {"application": app, "policy_tier": tier, "client": client}


def login(client: Client, app: str = "payroll", tier: Any = BIZ) -> p.LoginAttempted:
    return p.LoginAttempted(outcome=Outcome.SUCCESS, method="password", **ctx(client, app, tier))


def enrolled(factor: Factor, enrollment_id: str) -> p.EnrollmentCompleted:
    return p.EnrollmentCompleted(factor=factor, enrollment_id=enrollment_id, **ctx())


def required(app: str = "payroll", tier: Any = BIZ, role: str | None = None) -> p.MfaRequired:
    reasons = ["privileged_role"] if role else []
    return p.MfaRequired(required=True, role=role, reasons=reasons, **ctx(None, app, tier))


def issued(challenge: str) -> p.ChallengeIssued:
    return p.ChallengeIssued(factor=Factor.PUSH, challenge_id=challenge, **ctx())


def golden_events() -> list[Event]:
    """The dataset, in time order per subject (numbers refer to the comments in tests)."""
    alice_d1 = ev(
        p.VerificationSucceeded(factor=Factor.TOTP, **ctx(BERLIN)),
        "alice",
        at(D1, "10:00:21"),
        "k4",
    )
    alice_d2 = ev(
        p.PushApproved(challenge_id="ch-k3", **ctx(SYDNEY)), "alice", at(D2, "09:00:06"), "k3"
    )
    admin = PolicyTier.ADMIN
    return [
        # -- enrollments: dave webauthn D1, bob totp D1 (removed D2), alice totp D1,
        #    carol push D2, frank totp D1
        ev(enrolled(Factor.WEBAUTHN, "d1"), "dave", at(D1, "07:00:00"), "e-d1"),
        ev(enrolled(Factor.TOTP, "b1"), "bob", at(D1, "08:00:00"), "e-b1"),
        ev(enrolled(Factor.TOTP, "a1"), "alice", at(D1, "09:00:00"), "e-a1"),
        ev(enrolled(Factor.TOTP, "f1"), "frank", at(D1, "06:00:00"), "e-f1"),
        ev(enrolled(Factor.PUSH, "c1"), "carol", at(D2, "10:00:00"), "e-c1"),
        ev(
            p.EnrollmentRemoved(factor=Factor.TOTP, enrollment_id="b1", reason="user_request"),
            "bob",
            at(D2, "12:00:00"),
            "e-b1x",
        ),
        # -- D1: alice totp (prompt 10:00:01, fails, succeeds 10:00:21: 20 000 ms)
        ev(login(BERLIN), "alice", at(D1, "10:00:00"), "k4"),
        ev(required(), "alice", at(D1, "10:00:01"), "k4"),
        ev(
            p.VerificationFailed(factor=Factor.TOTP, reason="invalid_code", **ctx(BERLIN)),
            "alice",
            at(D1, "10:00:06"),
            "k4",
        ),
        alice_d1,
        # -- D1: bob totp in crm (prompt 11:00:00, succeeds 11:00:08: 8 000 ms)
        ev(login(BERLIN, "crm"), "bob", at(D1, "11:00:00"), "k5"),
        ev(required("crm"), "bob", at(D1, "11:00:00"), "k5"),
        ev(
            p.VerificationSucceeded(factor=Factor.TOTP, **ctx(BERLIN, "crm")),
            "bob",
            at(D1, "11:00:08"),
            "k5",
        ),
        # -- D1: carol push (issued 12:00:01, approved 12:00:05: 4 000 ms)
        ev(login(SYDNEY), "carol", at(D1, "12:00:00"), "k1"),
        ev(issued("ch-k1"), "carol", at(D1, "12:00:01"), "k1"),
        ev(p.PushApproved(challenge_id="ch-k1", **ctx(SYDNEY)), "carol", at(D1, "12:00:05"), "k1"),
        # -- D1: carol locked and unlocked (subject scope)
        ev(
            p.LockoutApplied(scope=LockoutScope.SUBJECT, reason="max_failures", failures=5),
            "carol",
            at(D1, "13:00:00"),
            "l1",
        ),
        ev(
            p.LockoutCleared(scope=LockoutScope.SUBJECT, reason="expired"),
            "carol",
            at(D1, "13:05:00"),
            "l1",
        ),
        # -- D2: bob signs in only with a password
        ev(login(BERLIN), "bob", at(D2, "08:00:00"), "k6"),
        # -- D2: alice push from Sydney (issued 09:00:00, approved 09:00:06: 6 000 ms)
        ev(login(SYDNEY), "alice", at(D2, "09:00:00"), "k3"),
        ev(issued("ch-k3"), "alice", at(D2, "09:00:00"), "k3"),
        alice_d2,
        ev(
            p.RiskDetected(
                detection=p.Detection.IMPOSSIBLE_TRAVEL,
                severity=RiskLevel.HIGH,
                score=70,
                summary="Berlin to Sydney",
                evidence={"speed_kmh": 700.0, "from_country": "DE", "to_country": "AU"},
                related_event_ids=[alice_d1.id, alice_d2.id],
                client=SYDNEY,
            ),
            "alice",
            at(D2, "09:00:06"),
            "k3",
        ),
        # -- D2: carol push (issued 10:30:00, rejected 10:30:02, approved 10:30:10: 10 000 ms)
        ev(login(SYDNEY), "carol", at(D2, "10:30:00"), "k2"),
        ev(issued("ch-k2"), "carol", at(D2, "10:30:00"), "k2"),
        ev(
            p.PushRejected(challenge_id="ch-k2", reason="user_rejected", **ctx(SYDNEY)),
            "carol",
            at(D2, "10:30:02"),
            "k2",
        ),
        ev(p.PushApproved(challenge_id="ch-k2", **ctx(SYDNEY)), "carol", at(D2, "10:30:10"), "k2"),
        ev(
            p.RiskDetected(
                detection=p.Detection.PUSH_FATIGUE,
                severity=RiskLevel.MEDIUM,
                score=60,
                summary="3 pushes rejected",
                evidence={"rejected": 3, "expired": 0},
            ),
            "carol",
            at(D2, "10:31:00"),
            "k2",
        ),
        # -- D2: dave, admin tier and role, webauthn (prompt 11:00:01, ok 11:00:03: 2 000 ms)
        ev(login(BERLIN, tier=admin), "dave", at(D2, "11:00:00"), "k7"),
        ev(required(tier=admin, role="admin"), "dave", at(D2, "11:00:01"), "k7"),
        ev(
            p.VerificationSucceeded(factor=Factor.WEBAUTHN, **ctx(BERLIN, tier=admin)),
            "dave",
            at(D2, "11:00:03"),
            "k7",
        ),
        # -- D2: erin (globex), totp code expired, no client
        ev(
            p.VerificationFailed(factor=Factor.TOTP, reason="expired", **ctx(tier=None)),
            "erin",
            at(D2, "13:00:00"),
            "g1",
            tenant="globex",
        ),
        # -- D2: frank is an Administrator (role) without webauthn
        ev(required(role="Administrator"), "frank", at(D2, "14:00:00"), "k8"),
        # -- D2: alice's sms lockout; sms deliveries: ch-s1 sent then failed, ch-s2 sent
        ev(
            p.LockoutApplied(
                scope=LockoutScope.FACTOR, factor=Factor.SMS, reason="max_failures", failures=3
            ),
            "alice",
            at(D2, "15:00:00"),
            "l2",
        ),
        ev(
            p.ChallengeSent(
                factor=Factor.SMS,
                challenge_id="ch-s1",
                channel=Channel.SMS,
                provider="twilio",
                **ctx(),
            ),
            "alice",
            at(D2, "16:00:00"),
            "k9",
        ),
        ev(
            p.ChallengeDeliveryFailed(
                factor=Factor.SMS,
                challenge_id="ch-s1",
                channel=Channel.SMS,
                provider="twilio",
                reason="provider_timeout",
            ),
            "alice",
            at(D2, "16:00:01"),
            "k9",
        ),
        ev(
            p.ChallengeSent(
                factor=Factor.SMS,
                challenge_id="ch-s2",
                channel=Channel.SMS,
                provider="twilio",
                **ctx(),
            ),
            "alice",
            at(D2, "16:05:00"),
            "k10",
        ),
    ]
