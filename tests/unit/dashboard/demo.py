"""A small, deterministic demo dataset for the dashboard: every page has something to show.

Two tenants (``acme`` has three times the traffic of ``globex``), two applications, five
days; sign-ins from four cities; push challenges with time to complete; TOTP, SMS and
WebAuthn enrollments; lockouts; an impossible-travel detection whose arc joins two of
the sign-ins; privileged administrators, one without phishing-resistant MFA; priced SMS
sends with delivery receipts, and each day an SMS-pumping burst the country cap stopped;
the account lifecycle: imported seeds, invitations, trusted devices, two-person overrides.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from msgspec.structs import replace

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

SOURCE = "https://login.example.com/mfa"
CITIES = {
    "DE": ("Berlin", 52.52, 13.405),
    "US": ("New York", 40.71, -74.0),
    "JP": ("Tokyo", 35.68, 139.69),
    "BR": ("São Paulo", -23.55, -46.63),
}
DEVICES = (("desktop", "Linux"), ("mobile", "iOS"), ("mobile", "Android"))


def _client(country: str, device: int, ip: str) -> Client:
    city, lat, lon = CITIES[country]
    kind, os_name = DEVICES[device]
    return Client(
        ip=ip,
        user_agent="demo",
        device=Device(id=f"dev-{device}", kind=kind, os=os_name, trusted=True),
        geo=Geo(country=country, city=city, latitude=lat, longitude=lon, source="client"),
    )


SMS_PRICES = {"DE": 75_000, "US": 7_900, "JP": 72_000, "BR": 45_000, "NG": 320_000}
"""Example prices (micros of EUR) of the demo's SMS sends."""
PUMPED = 6
"""Sends of each day's pumping burst that the country cap let through (the rest refused)."""


def _pumping_burst(emit: Callable[..., Event], when: datetime) -> None:
    """An SMS-pumping burst on acme to NG: a detection for its hour, PUMPED paid sends,
    then sends the daily country cap refused (each at the price it would have cost)."""
    hour = when.replace(minute=0, second=0, microsecond=0)
    emit(
        p.RiskDetected(
            detection=p.Detection.SMS_PUMPING,
            severity=RiskLevel.HIGH,
            score=75,
            summary="codes sent to unusual destinations",
            evidence={
                "rule": "unusual_destination",
                "period_start": hour.isoformat(),
                "period_seconds": 3600,
            },
        ),
        "acme",
        "sms-pumping",
        hour,
        f"pump-{hour:%Y%m%d}",
    )
    for i in range(PUMPED + 4):
        tx, subject, at = f"pump-{hour:%Y%m%d}-{i}", f"bot-{i}", when + timedelta(seconds=i)
        if i < PUMPED:
            sent = p.ChallengeSent(
                factor=Factor.SMS,
                challenge_id=f"ch-{tx}",
                channel=Channel.SMS,
                provider="twilio",
                destination_country="NG",
                cost_micros=SMS_PRICES["NG"],
                currency="EUR",
            )
            emit(sent, "acme", subject, at, tx)
        else:
            refused = p.VerificationFailed(
                factor=Factor.SMS,
                reason="country_cap",
                destination_country="NG",
                cost_micros=SMS_PRICES["NG"],
                currency="EUR",
            )
            emit(refused, "acme", subject, at, tx)


def _lifecycle(emit: Callable[..., Event], start: datetime) -> None:
    """The account lifecycle, mostly on acme: on the first day, two TOTP seeds imported from
    otpauth URIs and one from a CSV, two subjects invited to WebAuthn (one enrols the next
    day); four devices trusted (one on globex), one revoked by its subject, a stolen token
    refused (its trust revoked); an unlock under the two-person rule (ann's self-approval
    refused, ben approves) and a temporary access granted and used once, then refused as
    used."""
    day1, day2 = start + timedelta(hours=6), start + timedelta(days=1, hours=6)
    for i, source in enumerate(("otpauth", "otpauth", "csv")):
        seed = p.EnrollmentCompleted(
            factor=Factor.TOTP, enrollment_id=f"imp-{i}", imported_from=source
        )
        emit(seed, "acme", f"acme-m{i}", day1 + timedelta(minutes=i), f"import-{i}")
    for subject in ("acme-m3", "acme-m4"):
        invite = p.EnrollmentStarted(
            factor=Factor.WEBAUTHN, enrollment_id=f"inv-{subject}", invited=True
        )
        emit(invite, "acme", subject, day1, f"invite-{subject}")
    emit(
        p.EnrollmentCompleted(factor=Factor.WEBAUTHN, enrollment_id="inv-acme-m3"),
        "acme",
        "acme-m3",
        day2,
        "invite-acme-m3",
    )
    for i, subject in enumerate(("acme-u4", "acme-u5", "acme-u6", "gx-u1")):
        tenant = "globex" if subject.startswith("gx") else "acme"
        trust = p.DeviceTrusted(trust_id=f"trust-{i}", expires_at=start + timedelta(days=30))
        emit(trust, tenant, subject, day1 + timedelta(hours=i), f"trust-{i}")
    emit(
        p.DeviceRevoked(reason="subject_request", trust_id="trust-0", revoked_by="acme-u4"),
        "acme",
        "acme-u4",
        day2,
        "untrust-0",
    )
    emit(
        p.DeviceTrustRefused(reason="wrong_device", trust_id="trust-1"),
        "acme",
        "acme-u5",
        day2,
        "stolen",
    )
    emit(
        p.DeviceRevoked(reason="presented_from_other_device", trust_id="trust-1"),
        "acme",
        "acme-u5",
        day2,
        "stolen",
    )
    deadline = day1 + timedelta(hours=1)
    steps: list[p.Payload] = [
        p.AdminOverrideRequested(
            request_id="ovr-1",
            requested_by="ann",
            action="unlock",
            justification="locked out",
            ticket="SEC-101",
            approve_before=deadline,
        ),
        p.AdminOverrideRefused(
            attempted_by="ann",
            stage="approve",
            reason="self_approval",
            request_id="ovr-1",
            action="unlock",
            requested_by="ann",
            ticket="SEC-101",
        ),
        p.AdminOverrideApproved(
            request_id="ovr-1",
            approved_by="ben",
            action="unlock",
            requested_by="ann",
            ticket="SEC-101",
        ),
        p.AdminOverrideRequested(
            request_id="ovr-2",
            requested_by="ben",
            action="temporary_access",
            justification="lost phone",
            ticket="SEC-102",
            approve_before=deadline,
            single_use=True,
        ),
        p.AdminOverrideApproved(
            request_id="ovr-2",
            approved_by="ann",
            action="temporary_access",
            requested_by="ben",
            ticket="SEC-102",
        ),
        p.TemporaryAccessGranted(
            grant_id="tac-1",
            granted_by="ann",
            expires_at=deadline + timedelta(hours=4),
            justification="lost phone",
            request_id="ovr-2",
            single_use=True,
            requested_by="ben",
            ticket="SEC-102",
        ),
        p.TemporaryAccessUsed(grant_id="tac-1", single_use=True, uses=1, request_id="ovr-2"),
        p.TemporaryAccessRefused(reason="used_code", grant_id="tac-1"),
    ]
    for i, step in enumerate(steps):
        emit(step, "acme", "acme-u7", day1 + timedelta(minutes=5 * i), f"override-{i}")


def demo_events(*, start: datetime, days: int = 5, seed: int = 7) -> list[Event]:
    """The dataset, events in time order from ``start`` (timezone-aware)."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    events: list[Event] = []

    def emit(payload: p.Payload, tenant: str, subject: str, when: datetime, tx: str) -> Event:
        event = new_event(
            payload, source=SOURCE, tenant=tenant, subject=subject, correlationid=tx, now=when
        )
        events.append(event)
        return event

    subjects = {"acme": [f"acme-u{i}" for i in range(12)], "globex": [f"gx-u{i}" for i in range(4)]}
    for tenant, people in subjects.items():
        for index, subject in enumerate(people):
            factor = (Factor.TOTP, Factor.SMS, Factor.WEBAUTHN)[index % 3]
            context = {"application": "payroll", "policy_tier": PolicyTier.BUSINESS}
            when = start + timedelta(minutes=index)
            emit(
                p.EnrollmentCompleted(factor=factor, enrollment_id=f"enr-{subject}", **context),
                tenant,
                subject,
                when,
                f"enroll-{subject}",
            )
    for day in range(days):
        for tenant, people in subjects.items():
            rounds = 3 if tenant == "acme" else 1
            for round_ in range(rounds * len(people)):
                subject = people[round_ % len(people)]
                when = start + timedelta(days=day, hours=8 + round_ % 10, minutes=rng.randrange(60))
                tx = f"{tenant}-{day}-{round_}"
                country = ("DE", "US", "JP", "BR")[rng.randrange(4)]
                client = _client(country, rng.randrange(3), f"203.0.113.{rng.randrange(1, 250)}")
                app = ("payroll", "crm")[round_ % 2]
                context = {"application": app, "policy_tier": PolicyTier.BUSINESS, "client": client}
                emit(
                    p.LoginAttempted(
                        outcome=Outcome.SUCCESS, method="password", mfa_required=True, **context
                    ),
                    tenant,
                    subject,
                    when,
                    tx,
                )
                if round_ % 3 == 0:  # push, with a challenge: time to complete
                    emit(
                        p.ChallengeIssued(
                            factor=Factor.PUSH,
                            challenge_id=f"ch-{tx}",
                            channel=Channel.PUSH,
                            expires_at=when + timedelta(minutes=2),
                            **context,
                        ),
                        tenant,
                        subject,
                        when,
                        tx,
                    )
                    later = when + timedelta(seconds=3 + rng.randrange(20))
                    if rng.random() < 0.85:
                        emit(
                            p.PushApproved(challenge_id=f"ch-{tx}", **context),
                            tenant,
                            subject,
                            later,
                            tx,
                        )
                    else:
                        emit(
                            p.PushRejected(challenge_id=f"ch-{tx}", reason="not_me", **context),
                            tenant,
                            subject,
                            later,
                            tx,
                        )
                elif round_ % 3 == 1:  # SMS, sometimes undelivered
                    emit(
                        p.ChallengeIssued(
                            factor=Factor.SMS,
                            challenge_id=f"ch-{tx}",
                            channel=Channel.SMS,
                            expires_at=when + timedelta(minutes=5),
                            **context,
                        ),
                        tenant,
                        subject,
                        when,
                        tx,
                    )
                    if rng.random() < 0.2:
                        emit(
                            p.ChallengeDeliveryFailed(
                                factor=Factor.SMS,
                                challenge_id=f"ch-{tx}",
                                channel=Channel.SMS,
                                provider="twilio",
                                reason="provider_timeout",
                            ),
                            tenant,
                            subject,
                            when + timedelta(seconds=2),
                            tx,
                        )
                    else:
                        emit(
                            p.ChallengeSent(
                                factor=Factor.SMS,
                                challenge_id=f"ch-{tx}",
                                channel=Channel.SMS,
                                provider="twilio",
                                destination_country=country,
                                cost_micros=SMS_PRICES[country],
                                currency="EUR",
                                **context,
                            ),
                            tenant,
                            subject,
                            when + timedelta(seconds=1),
                            tx,
                        )
                        emit(
                            p.ChallengeDeliveryReported(
                                factor=Factor.SMS,
                                challenge_id=f"ch-{tx}",
                                channel=Channel.SMS,
                                provider="twilio",
                                delivery_status=p.ReceiptStatus.UNDELIVERED
                                if round_ % 7 == 1
                                else p.ReceiptStatus.DELIVERED,
                                destination_country=country,
                                **context,
                            ),
                            tenant,
                            subject,
                            when + timedelta(seconds=4),
                            tx,
                        )
                        emit(
                            p.VerificationSucceeded(
                                factor=Factor.SMS, challenge_id=f"ch-{tx}", **context
                            ),
                            tenant,
                            subject,
                            when + timedelta(seconds=25 + rng.randrange(30)),
                            tx,
                        )
                else:  # TOTP, with some wrong codes
                    emit(
                        p.MfaRequired(
                            required=True,
                            reasons=["business_tier"],
                            required_factors=[Factor.TOTP],
                            **context,
                        ),
                        tenant,
                        subject,
                        when,
                        tx,
                    )
                    done = when + timedelta(seconds=6 + rng.randrange(15))
                    if rng.random() < 0.25:
                        emit(
                            p.VerificationFailed(
                                factor=Factor.TOTP, reason="invalid_code", **context
                            ),
                            tenant,
                            subject,
                            done,
                            tx,
                        )
                    else:
                        emit(
                            p.VerificationSucceeded(factor=Factor.TOTP, **context),
                            tenant,
                            subject,
                            done,
                            tx,
                        )
        _pumping_burst(emit, start + timedelta(days=day, hours=3))
        # a lockout of each kind on each day
        when = start + timedelta(days=day, hours=19)
        for tenant in subjects:
            subject = subjects[tenant][day % len(subjects[tenant])]
            emit(
                p.LockoutApplied(
                    scope=LockoutScope.SUBJECT,
                    reason="max_failures",
                    failures=5,
                    locked_until=when + timedelta(minutes=3),
                    lockout_count=1,
                    policy_tier=PolicyTier.BUSINESS,
                ),
                tenant,
                subject,
                when,
                f"lock-{tenant}-{day}",
            )
        emit(
            p.LockoutApplied(
                scope=LockoutScope.FACTOR,
                reason="otp_max_failures",
                failures=3,
                factor=Factor.TOTP,
                locked_until=when + timedelta(minutes=3),
                lockout_count=1,
            ),
            "acme",
            "acme-u3",
            when,
            f"flock-{day}",
        )
    _lifecycle(emit, start)
    # impossible travel: Berlin then Tokyo 40 minutes later
    t1 = start + timedelta(days=1, hours=21)
    first = emit(
        p.VerificationSucceeded(
            factor=Factor.TOTP, application="payroll", client=_client("DE", 0, "198.51.100.10")
        ),
        "acme",
        "acme-u1",
        t1,
        "travel-1",
    )
    second = emit(
        p.VerificationSucceeded(
            factor=Factor.TOTP, application="payroll", client=_client("JP", 1, "198.51.100.99")
        ),
        "acme",
        "acme-u1",
        t1 + timedelta(minutes=40),
        "travel-2",
    )
    emit(
        p.RiskDetected(
            detection=p.Detection.IMPOSSIBLE_TRAVEL,
            severity=RiskLevel.HIGH,
            score=85,
            summary="Berlin to Tokyo in 40 minutes",
            evidence={"speed_kmh": 13350.0, "from_country": "DE", "to_country": "JP"},
            related_event_ids=[first.id, second.id],
            client=second.data.client,
        ),  # type: ignore[attr-defined]
        "acme",
        "acme-u1",
        t1 + timedelta(minutes=40),
        "travel-2",
    )
    emit(
        p.RiskDetected(
            detection=p.Detection.PUSH_FATIGUE,
            severity=RiskLevel.MEDIUM,
            score=60,
            summary="6 rejected pushes in 10 minutes",
        ),
        "globex",
        "gx-u2",
        start + timedelta(days=2, hours=22),
        "fatigue-1",
    )
    # privileged administrators: one with WebAuthn (acme-u2), one without (acme-u0)
    for subject in ("acme-u0", "acme-u2"):
        required = p.MfaRequired(
            required=True,
            reasons=["privileged_role"],
            role="admin",
            required_factors=[Factor.WEBAUTHN],
            application="payroll",
            policy_tier=PolicyTier.ADMIN,
        )
        emit(
            replace(required), "acme", subject, start + timedelta(days=1, hours=7), f"adm-{subject}"
        )
    return sorted(events, key=lambda e: e.time)
