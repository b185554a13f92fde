"""Derived events for the alerts' tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas import Event, new_event
from schemas import payloads as p
from schemas.fields import LockoutScope, RiskLevel
from tests.factories import CLIENT, T0

LATER = T0 + timedelta(minutes=15)


def risk(
    *,
    at: datetime = T0,
    subject: str = "u-1",
    tenant: str = "acme",
    detection: p.Detection = p.Detection.PUSH_FATIGUE,
    severity: RiskLevel = RiskLevel.HIGH,
) -> Event:
    payload = p.RiskDetected(
        detection=detection,
        severity=severity,
        score={"low": 20, "medium": 50, "high": 80, "critical": 95}.get(str(severity), 0),
        summary=f"{detection} for {subject}",
        evidence={"count": 5},
        client=CLIENT,
    )
    return new_event(
        payload,
        source="urn:factorstream:stream",
        tenant=tenant,
        subject=subject,
        correlationid="login-1",
        now=at,
    )


def lockout(
    *, at: datetime = T0, subject: str = "u-1", tenant: str = "acme", permanent: bool = False
) -> Event:
    payload = p.LockoutApplied(
        scope=LockoutScope.SUBJECT,
        reason="max_failures",
        failures=5,
        permanent=permanent,
        locked_until=None if permanent else LATER,
    )
    return new_event(
        payload,
        source="urn:factorstream:stream",
        tenant=tenant,
        subject=subject,
        correlationid="login-1",
        now=at,
    )


def ip_block(*, at: datetime = T0, ip: str = "198.51.100.23", tenant: str = "acme") -> Event:
    payload = p.IpBlockApplied(
        ip=ip, reason="password_spray", blocked_until=LATER, failures=120, distinct_subjects=57
    )
    return new_event(
        payload,
        source="urn:factorstream:stream",
        tenant=tenant,
        subject="ip",
        correlationid="login-1",
        now=at,
    )
