"""Valid sample events of every registered type, for tests and fixtures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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
from schemas.registry import BY_NAME, Producer
from schemas.signing import key_id_of, sign_event

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)

CLIENT = Client(
    ip="203.0.113.7",
    user_agent="Mozilla/5.0 (X11; Linux x86_64)",
    device=Device(id="dev-1", kind="desktop", os="Linux", browser="Firefox", trusted=True),
    geo=Geo(
        country="DE", city="Berlin", latitude=52.52, longitude=13.405, asn=3320, source="client"
    ),
)
CONTEXT: dict[str, Any] = {
    "application": "payroll",
    "policy_tier": PolicyTier.BUSINESS,
    "client": CLIENT,
}
LATER = T0 + timedelta(minutes=5)

PAYLOADS: dict[str, p.Payload] = {
    "mfa.enrollment.started": p.EnrollmentStarted(
        factor=Factor.TOTP, enrollment_id="enr-1", channel=Channel.AUTHENTICATOR_APP, **CONTEXT
    ),
    "mfa.enrollment.completed": p.EnrollmentCompleted(
        factor=Factor.WEBAUTHN,
        enrollment_id="enr-2",
        channel=Channel.SECURITY_KEY,
        authenticator=p.Authenticator(
            name="YubiKey 5",
            aaguid="cb69481e-8ff7-4039-93ec-0a2729a154a8",
            attestation="none",
            user_verifying=True,
        ),
        elapsed_ms=14_200,
        **CONTEXT,
    ),
    "mfa.enrollment.failed": p.EnrollmentFailed(
        factor=Factor.SMS, enrollment_id="enr-3", reason="invalid_phone_number", **CONTEXT
    ),
    "mfa.enrollment.removed": p.EnrollmentRemoved(
        factor=Factor.SMS, enrollment_id="enr-3", reason="user_request", removed_by="admin-7"
    ),
    "mfa.challenge.issued": p.ChallengeIssued(
        factor=Factor.PUSH,
        challenge_id="ch-1",
        channel=Channel.PUSH,
        expires_at=LATER,
        number_match=True,
        max_attempts=3,
        **CONTEXT,
    ),
    "mfa.challenge.sent": p.ChallengeSent(
        factor=Factor.SMS,
        challenge_id="ch-2",
        channel=Channel.SMS,
        provider="twilio",
        destination="+4915112345678",
        destination_country="DE",
        **CONTEXT,
    ),
    "mfa.challenge.delivery_reported": p.ChallengeDeliveryReported(
        factor=Factor.SMS,
        challenge_id="ch-2",
        channel=Channel.SMS,
        provider="twilio",
        delivery_status=p.ReceiptStatus.DELIVERED,
        provider_message_id="SM-1",
        provider_status="delivered",
        destination_country="DE",
    ),
    "mfa.challenge.delivery_failed": p.ChallengeDeliveryFailed(
        factor=Factor.SMS,
        challenge_id="ch-2",
        channel=Channel.SMS,
        provider="twilio",
        reason="provider_timeout",
        failover_provider="vonage",
        destination_country="DE",
    ),
    "mfa.verification.succeeded": p.VerificationSucceeded(
        factor=Factor.TOTP, challenge_id="ch-3", enrollment_id="enr-1", elapsed_ms=8_400, **CONTEXT
    ),
    "mfa.verification.failed": p.VerificationFailed(
        factor=Factor.TOTP,
        reason="invalid_code",
        challenge_id="ch-3",
        attempt=2,
        attempts_remaining=3,
        **CONTEXT,
    ),
    "mfa.push.approved": p.PushApproved(
        challenge_id="ch-1", number_matched=True, responded_after_ms=4_100, **CONTEXT
    ),
    "mfa.push.rejected": p.PushRejected(challenge_id="ch-1", reason="not_me", **CONTEXT),
    "mfa.push.expired": p.PushExpired(challenge_id="ch-1", expired_after_ms=60_000),
    "mfa.push.reported_fraud": p.PushReportedFraud(challenge_id="ch-1", **CONTEXT),
    "mfa.recovery.succeeded": p.RecoverySucceeded(codes_remaining=9, **CONTEXT),
    "mfa.recovery.failed": p.RecoveryFailed(reason="unknown_code", attempt=1, **CONTEXT),
    "mfa.recovery.regenerated": p.RecoveryRegenerated(code_count=10, previous_codes_invalidated=9),
    "device.trusted": p.DeviceTrusted(
        trust_id="td-1", expires_at=LATER, device_name="Alice's laptop", **CONTEXT
    ),
    "device.revoked": p.DeviceRevoked(
        trust_id="td-1", reason="admin_request", revoked_by="admin-7", **CONTEXT
    ),
    "device.trust_refused": p.DeviceTrustRefused(trust_id="td-1", reason="wrong_device", **CONTEXT),
    "auth.login.attempted": p.LoginAttempted(
        outcome=Outcome.FAILURE, method="password", reason="invalid_password", **CONTEXT
    ),
    "mfa.required": p.MfaRequired(
        required=True,
        reasons=["privileged_role", "new_country"],
        required_factors=[Factor.WEBAUTHN, Factor.PUSH],
        allowed_factors=[Factor.TOTP],
        risk_level=RiskLevel.MEDIUM,
        role="admin",
        **CONTEXT,
    ),
    "admin.override.requested": p.AdminOverrideRequested(
        request_id="req-1",
        requested_by="admin-7",
        action="unlock",
        justification="Locked out while travelling; identity verified by phone.",
        ticket="SEC-1234",
    ),
    "admin.override.approved": p.AdminOverrideApproved(
        request_id="req-1", approved_by="admin-9", action="unlock", expires_at=LATER
    ),
    "access.temporary.granted": p.TemporaryAccessGranted(
        grant_id="tap-1",
        granted_by="admin-9",
        expires_at=LATER,
        justification="Lost phone; temporary access pass for re-enrollment.",
        scope="enroll",
    ),
    "admin.override.refused": p.AdminOverrideRefused(
        attempted_by="admin-7",
        stage="approve",
        reason="self_approval",
        request_id="req-1",
        action="unlock",
        requested_by="admin-7",
        ticket="SEC-1234",
    ),
    "access.temporary.used": p.TemporaryAccessUsed(
        grant_id="tap-1", single_use=True, uses=1, request_id="req-1", **CONTEXT
    ),
    "access.temporary.refused": p.TemporaryAccessRefused(
        reason="used_code", grant_id="tap-1", **CONTEXT
    ),
    "service.request.refused": p.ServiceRequestRefused(
        status=400,
        error="malformed_json",
        operation="POST /v1/subjects/{subject}/totp/verify",
        service_client="c-7f3a",
        caller_ip="192.0.2.10",
    ),
    "idp.lock.reported": p.IdpLockReported(
        provider="okta",
        scope=LockoutScope.SUBJECT,
        reason="locked_out",
        detail="Max sign in attempts exceeded",
        client=CLIENT,
    ),
    "idp.unlock.reported": p.IdpUnlockReported(
        provider="okta", scope=LockoutScope.IP, ip="198.51.100.23", reason="unlocked", client=CLIENT
    ),
    "idp.risk.reported": p.IdpRiskReported(
        provider="entra",
        level=RiskLevel.HIGH,
        risk_types=["unlikely_travel", "anonymized_ip_address"],
        client=CLIENT,
    ),
    "lockout.applied": p.LockoutApplied(
        scope=LockoutScope.SUBJECT,
        reason="max_failures",
        failures=5,
        locked_until=LATER,
        lockout_count=1,
        policy_tier=PolicyTier.BUSINESS,
        trigger_event_id="018f3c1e-0000-7000-8000-000000000001",
    ),
    "lockout.cleared": p.LockoutCleared(
        scope=LockoutScope.FACTOR, factor=Factor.SMS, reason="expired"
    ),
    "ip.block.applied": p.IpBlockApplied(
        ip="198.51.100.23",
        reason="password_spray",
        blocked_until=LATER,
        failures=120,
        distinct_subjects=57,
    ),
    "ip.block.released": p.IpBlockReleased(ip="198.51.100.23", reason="expired"),
    "risk.detected": p.RiskDetected(
        detection=p.Detection.IMPOSSIBLE_TRAVEL,
        severity=RiskLevel.HIGH,
        score=85,
        summary="Berlin to Sydney in 40 minutes",
        evidence={"speed_kmh": 24_000.5, "from_country": "DE", "to_country": "AU"},
        related_event_ids=["018f3c1e-0000-7000-8000-000000000001"],
        client=CLIENT,
    ),
    "audit.checkpoint.signed": p.CheckpointSigned(
        log_id="factorstream-ledger",
        tree_size=1024,
        root_hash="ab" * 32,
        key_id="k-2026-11",
        signature="c2lnbmF0dXJl",
    ),
    "privacy.subject.erased": p.SubjectErased(
        requested_by="dpo-1", reason="gdpr_art17", ticket="DSR-77", key_id="dk-1"
    ),
    "audit.evidence.issued": p.EvidenceIssued(
        framework="soc2",
        period="2026-Q3",
        since=datetime(2026, 7, 1, tzinfo=UTC),
        until=datetime(2026, 10, 1, tzinfo=UTC),
        manifest_sha256="ab" * 32,
        controls=["CC6.1-mfa"],
        rows=12,
        exceptions=1,
        checkpoint_size=40,
    ),
    "audit.evidence.downloaded": p.EvidenceDownloaded(
        framework="gdpr",
        period="2026-09-01..2026-12-01",
        since=datetime(2026, 9, 1, tzinfo=UTC),
        until=datetime(2026, 12, 1, tzinfo=UTC),
        scope_tenant="acme",
        manifest_sha256="cd" * 32,
        controls=["Art.17", "Art.30", "Art.32"],
        rows=7,
        checkpoint_size=90,
    ),
}


CONTROL_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
"""The operators' control key of the tests (fixed, so events and goldens are stable)."""
TRUSTED = {key_id_of(CONTROL_KEY.public_key()): CONTROL_KEY.public_key()}
"""What a test's ingest trusts: :data:`CONTROL_KEY`."""


def control_key_pem() -> bytes:
    """:data:`CONTROL_KEY` as a PEM file's bytes (``control.signing_key_file``)."""
    return CONTROL_KEY.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def sample_event(
    type_name: str = "mfa.verification.failed",
    *,
    tenant: str = "acme",
    subject: str = "u-1001",
    now: datetime = T0,
    correlationid: str = "login-1",
    **overrides: Any,
) -> Event:
    """A valid event of ``type_name``; keyword overrides replace envelope arguments. A
    control event is signed by :data:`CONTROL_KEY` (``signed=False``: not signed)."""
    signed = overrides.pop("signed", True)
    event = new_event(
        PAYLOADS[type_name],
        source=overrides.pop("source", "https://login.example.com/mfa"),
        tenant=tenant,
        subject=subject,
        correlationid=correlationid,
        now=now,
        **overrides,
    )
    if signed and BY_NAME[type_name].made_by is Producer.CONTROL:
        return sign_event(event, CONTROL_KEY)
    return event
