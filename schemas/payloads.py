"""Typed ``data`` payloads, one class per event type and version (v1).

A published version never changes in a breaking way (``factorstream schemas check``
enforces it against ``schemas/json/``): add a v2 class and an upcaster instead.
Unknown fields are refused, so a misspelt field is an error, not silently lost data.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

import msgspec

from schemas.fields import (
    Channel,
    Client,
    Count,
    CountryCode,
    Factor,
    Identifier,
    LockoutScope,
    Milliseconds,
    Name,
    Outcome,
    PolicyTier,
    Record,
    RiskLevel,
    TenantId,
    Text,
    check_country,
    check_ip,
    personal,
)

UtcTime = Annotated[datetime, msgspec.Meta(tz=True, description="RFC 3339 time with offset.")]
Reason = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z][a-z0-9_]*$",
        max_length=64,
        description="Machine-readable reason in snake_case, e.g. invalid_code, expired, replayed.",
    ),
]
Destination = (
    Annotated[
        str, personal("Phone number (E.164) or e-mail address the code went to.", max_length=320)
    ]
    | None
)
IpAddress = Annotated[str, personal("IP address (v4 or v6).", max_length=45)]
Micros = Annotated[
    int,
    msgspec.Meta(
        ge=0,
        le=2**53 - 1,
        description=(
            "An amount of money in millionths of the currency unit (1.5 EUR = 1500000): an "
            "integer, so sums are exact in every language and in SQL (no float rounding)."
        ),
    ),
]
Currency = Annotated[
    str,
    msgspec.Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217 currency code, e.g. EUR, USD."),
]


class Payload(Record, frozen=True, kw_only=True):
    """Base of every payload."""


class Activity(Payload, frozen=True, kw_only=True):
    """Context every user-facing MFA event carries."""

    application: Name | None = None
    policy_tier: PolicyTier | None = None
    client: Client | None = None


class Authenticator(Record, frozen=True, kw_only=True):
    """What is known of an authenticator (WebAuthn AAGUID, TOTP algorithm, …)."""

    name: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    aaguid: Annotated[str, msgspec.Meta(max_length=36)] | None = None
    attestation: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    backup_eligible: bool | None = None
    user_verifying: bool | None = None
    algorithm: Annotated[str, msgspec.Meta(max_length=16)] | None = None
    digits: Annotated[int, msgspec.Meta(ge=4, le=10)] | None = None


# -- enrollment --------------------------------------------------------------------------


class EnrollmentStarted(Activity, frozen=True, kw_only=True):
    factor: Factor
    enrollment_id: Identifier
    channel: Channel | None = None
    invited: Annotated[
        bool,
        msgspec.Meta(
            description="An administrator invited the subject to enrol (a bulk invitation); "
            "the subject has not started anything yet."
        ),
    ] = False


class EnrollmentCompleted(Activity, frozen=True, kw_only=True):
    factor: Factor
    enrollment_id: Identifier
    channel: Channel | None = None
    authenticator: Authenticator | None = None
    destination: Destination = None
    destination_country: CountryCode | None = None
    elapsed_ms: Milliseconds | None = None
    imported_from: (
        Annotated[
            str,
            msgspec.Meta(
                min_length=1,
                max_length=128,
                description="The factor's secret was migrated from another system (a bulk "
                "import of its seed, not confirmed by a code): the format or provider it came "
                "from, e.g. otpauth, csv, authelia.",
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        check_country("destination_country", self.destination_country)


class EnrollmentFailed(Activity, frozen=True, kw_only=True):
    factor: Factor
    reason: Reason
    enrollment_id: Identifier | None = None
    detail: Text | None = None
    destination_country: CountryCode | None = None
    """A refused send (``country_cap``): where the code would have gone."""
    cost_micros: Micros | None = None
    """A refused send (``country_cap``): what it would have cost at most (spend stopped)."""
    currency: Currency | None = None

    def __post_init__(self) -> None:
        check_country("destination_country", self.destination_country)


class EnrollmentRemoved(Activity, frozen=True, kw_only=True):
    factor: Factor
    enrollment_id: Identifier
    reason: Reason
    removed_by: Identifier | None = None


# -- challenges --------------------------------------------------------------------------


class ChallengeIssued(Activity, frozen=True, kw_only=True):
    factor: Factor
    challenge_id: Identifier
    channel: Channel | None = None
    enrollment_id: Identifier | None = None
    expires_at: UtcTime | None = None
    number_match: bool = False
    max_attempts: Annotated[int, msgspec.Meta(ge=1)] | None = None


class ChallengeSent(Activity, frozen=True, kw_only=True):
    factor: Factor
    challenge_id: Identifier
    channel: Channel
    provider: Name
    destination: Destination = None
    destination_country: CountryCode | None = None
    resend: bool = False
    provider_message_id: Identifier | None = None
    cost_micros: Micros | None = None
    """What the provider charges for this send (the price table's), in ``currency``."""
    currency: Currency | None = None

    def __post_init__(self) -> None:
        check_country("destination_country", self.destination_country)


class ReceiptStatus(StrEnum):
    """What a provider's delivery receipt says became of a message it had accepted."""

    DELIVERED = "delivered"
    """The handset (or the called person) got it."""
    UNDELIVERED = "undelivered"
    """The network could not deliver it (unreachable, switched off, blocked)."""
    EXPIRED = "expired"
    """The provider gave up trying within its validity period."""
    REJECTED = "rejected"
    """The carrier or the provider refused it after accepting it (filtering, fraud)."""


class ChallengeDeliveryReported(Activity, frozen=True, kw_only=True):
    """A provider's delivery receipt for a message it accepted (``mfa.challenge.sent``):
    accepted by the gateway is not delivered; this says whether it was."""

    factor: Factor
    challenge_id: Identifier
    channel: Channel
    provider: Name
    delivery_status: ReceiptStatus
    provider_message_id: Identifier | None = None
    provider_status: Name | None = None
    """The provider's own word for the status (``DELIVRD``, ``failed``, ``30003``)."""
    destination_country: CountryCode | None = None
    reported_at: UtcTime | None = None
    """When the provider says the status was reached (the event's time: when we heard)."""

    def __post_init__(self) -> None:
        check_country("destination_country", self.destination_country)


class ChallengeDeliveryFailed(Activity, frozen=True, kw_only=True):
    factor: Factor
    challenge_id: Identifier
    channel: Channel
    provider: Name
    reason: Reason
    provider_error: Text | None = None
    destination_country: CountryCode | None = None
    failover_provider: Name | None = None

    # -- verification ------------------------------------------------------------------------

    def __post_init__(self) -> None:
        check_country("destination_country", self.destination_country)


NOT_EVALUATED_REASONS = frozenset(
    {"locked_out", "resend_cooldown", "send_limit", "push_pending", "country_cap"}
)
"""Failure reasons of requests refused before any credential was checked or anything was
sent: a locked subject or factor, a code or push asked for again too soon (``resend_cooldown``,
``push_pending``) or too often (``send_limit``), or a tenant's daily sends or spend to the
destination's country used up (``country_cap``). They are no guesses: lockout, IP blocking
and guessing detections do not count them (counting them would let anyone lock anyone)."""


class VerificationSucceeded(Activity, frozen=True, kw_only=True):
    factor: Factor
    challenge_id: Identifier | None = None
    enrollment_id: Identifier | None = None
    attempt: Annotated[int, msgspec.Meta(ge=1)] = 1
    elapsed_ms: Milliseconds | None = None
    user_verified: bool | None = None
    sign_count: Count | None = None
    previous_sign_count: Count | None = None
    flags: list[Reason] = []
    authenticator: Authenticator | None = None


class VerificationFailed(Activity, frozen=True, kw_only=True):
    factor: Factor
    reason: Reason
    challenge_id: Identifier | None = None
    enrollment_id: Identifier | None = None
    attempt: Annotated[int, msgspec.Meta(ge=1)] = 1
    attempts_remaining: Count | None = None
    elapsed_ms: Milliseconds | None = None
    sign_count: Count | None = None
    previous_sign_count: Count | None = None
    destination_country: CountryCode | None = None
    """A refused send (``country_cap``): where the code would have gone."""
    cost_micros: Micros | None = None
    """A refused send (``country_cap``): what it would have cost at most (spend stopped)."""
    currency: Currency | None = None

    def __post_init__(self) -> None:
        check_country("destination_country", self.destination_country)


# -- push --------------------------------------------------------------------------------


class PushResponse(Activity, frozen=True, kw_only=True):
    challenge_id: Identifier
    enrollment_id: Identifier | None = None
    number_matched: bool | None = None
    responded_after_ms: Milliseconds | None = None
    responder: Client | None = None


class PushApproved(PushResponse, frozen=True, kw_only=True):
    pass


class PushRejected(PushResponse, frozen=True, kw_only=True):
    reason: Reason | None = None


class PushReportedFraud(PushResponse, frozen=True, kw_only=True):
    pass


class PushExpired(Activity, frozen=True, kw_only=True):
    challenge_id: Identifier
    enrollment_id: Identifier | None = None
    expired_after_ms: Milliseconds | None = None


# -- recovery codes ----------------------------------------------------------------------


class RecoverySucceeded(Activity, frozen=True, kw_only=True):
    codes_remaining: Count


class RecoveryFailed(Activity, frozen=True, kw_only=True):
    reason: Reason
    attempt: Annotated[int, msgspec.Meta(ge=1)] = 1


class RecoveryRegenerated(Activity, frozen=True, kw_only=True):
    code_count: Annotated[int, msgspec.Meta(ge=1)]
    previous_codes_invalidated: Count = 0


# -- trusted devices (remember-me) -------------------------------------------------------


class DeviceTrusted(Activity, frozen=True, kw_only=True):
    """The subject trusted the device it just stepped up on (``client.device.id`` names the
    device binding): that device skips MFA until ``expires_at`` unless revoked first."""

    trust_id: Identifier
    expires_at: UtcTime
    device_name: (
        Annotated[str, personal("The name the subject gave the device.", max_length=128)] | None
    ) = None
    assertion_id: Identifier | None = None
    """The ``jti`` of the MFA assertion that proved the step-up (one device per assertion)."""


class DeviceRevoked(Activity, frozen=True, kw_only=True):
    """Trust in one device (``trust_id``) or every device of the subject ended: revoked by the
    subject or an administrator, replaced by a newer trust of the same device, presented from
    another device (a stolen token), or forgotten by an erasure."""

    reason: Reason
    trust_id: Identifier | None = None
    revoked_by: Identifier | None = None
    devices_revoked: Count = 1


class DeviceTrustRefused(Activity, frozen=True, kw_only=True):
    """A trusted-device token was presented and refused (the sign-in steps up instead): the
    reason says why (unknown, another subject's, another device's, revoked, expired, a tier
    that trusts no device, a locked subject, a blocked IP). No lockout counts it."""

    reason: Reason
    trust_id: Identifier | None = None


# -- login, policy, administration -------------------------------------------------------


class LoginAttempted(Activity, frozen=True, kw_only=True):
    outcome: Outcome
    method: Name
    reason: Reason | None = None
    mfa_required: bool | None = None
    attempted_name: (
        Annotated[
            str,
            personal(
                "The name typed at sign-in, kept when it matched no account (the subject is "
                "then unknown).",
                max_length=320,
            ),
        ]
        | None
    ) = None


class MfaRequired(Activity, frozen=True, kw_only=True):
    required: bool
    reasons: list[Reason] = []
    required_factors: list[Factor] = []
    allowed_factors: list[Factor] = []
    risk_level: RiskLevel = RiskLevel.NONE
    role: Name | None = None
    application_sensitivity: Name | None = None


class AdminOverrideRequested(Payload, frozen=True, kw_only=True):
    request_id: Identifier
    requested_by: Identifier
    action: Reason
    justification: Text
    factor: Factor | None = None
    ticket: Identifier | None = None
    approve_before: UtcTime | None = None
    """The deadline: a second administrator's approval after it is refused."""
    policy_tier: PolicyTier | None = None
    """The subject's tier, whose limits a temporary access must keep."""
    access_valid_for_s: Annotated[int, msgspec.Meta(ge=1)] | None = None
    """Temporary access: how long the code stays valid once approved, in seconds."""
    single_use: bool | None = None
    """Temporary access: the code lets the subject in once (else any number of times
    until it expires)."""


class AdminOverrideApproved(Payload, frozen=True, kw_only=True):
    request_id: Identifier
    approved_by: Identifier
    action: Reason
    expires_at: UtcTime | None = None
    requested_by: Identifier | None = None
    """Who requested the override (the first of the two administrators)."""
    ticket: Identifier | None = None


class AdminOverrideRefused(Payload, frozen=True, kw_only=True):
    """A request for, or an approval of, an administrator's override that the two-person
    rule refused (self-approval, an expired request, a non-administrator, a second
    approval, an administrator who failed to sign in, a temporary access beyond the tier's
    limits)."""

    attempted_by: Identifier
    """Who tried: the administrator's name as given (and signed in, unless the reason is
    ``sign_in_refused``)."""
    stage: Reason
    """``request`` or ``approve``."""
    reason: Reason
    request_id: Identifier | None = None
    action: Reason | None = None
    requested_by: Identifier | None = None
    ticket: Identifier | None = None
    justification: (
        Annotated[str, personal("Why the override was asked for (free text).", max_length=1024)]
        | None
    ) = None


class TemporaryAccessGranted(Payload, frozen=True, kw_only=True):
    grant_id: Identifier
    granted_by: Identifier
    expires_at: UtcTime
    justification: Text
    scope: Name | None = None
    request_id: Identifier | None = None
    single_use: bool | None = None
    """The code lets the subject in once (else any number of times until ``expires_at``)."""
    requested_by: Identifier | None = None
    ticket: Identifier | None = None


class TemporaryAccessUsed(Activity, frozen=True, kw_only=True):
    """A temporary-access code let its subject in (whatever lock the subject is under)."""

    grant_id: Identifier
    single_use: bool
    uses: Annotated[int, msgspec.Meta(ge=1)]
    """How many times the code has let the subject in, this time included."""
    request_id: Identifier | None = None


class TemporaryAccessRefused(Activity, frozen=True, kw_only=True):
    """A temporary-access code was refused: unknown, malformed, expired, revoked, used up,
    or issued for another subject or tenant."""

    reason: Reason
    grant_id: Identifier | None = None


# -- the MFA service ---------------------------------------------------------------------


class ServiceRequestRefused(Activity, frozen=True, kw_only=True):
    """The MFA service refused a request outside any ceremony: before one began (malformed,
    unauthenticated, oversized, unknown subject, a factor the tier does not accept, a lock
    or IP block the stream applied) or instead of one. A ceremony's own refusals are its own
    events (``mfa.verification.failed``, …). No lockout or detection counts it."""

    status: Annotated[int, msgspec.Meta(ge=400, le=499)]
    error: Reason
    operation: Annotated[
        str,
        msgspec.Meta(
            max_length=256,
            description="Method and route template, e.g. POST /v1/subjects/{subject}/totp/verify.",
        ),
    ]
    service_client: Identifier | None = None
    """The service client whose credential the request carried (none when it had no valid one)."""
    named_subject: (
        Annotated[
            str,
            personal("The subject the request named, when no such subject exists.", max_length=128),
        ]
        | None
    ) = None
    caller_ip: (
        Annotated[
            str,
            personal("The address the request came from (a back end's, or not).", max_length=45),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        check_ip("caller_ip", self.caller_ip)


# -- reported by identity providers ------------------------------------------------------


class IdpLockReported(Activity, frozen=True, kw_only=True):
    """An identity provider says it locked a subject, one factor or an IP address (Okta's
    ``user.account.lock``, Auth0's ``limit_wc``, …). The pipeline applies a lock of its own
    from it (``lockout.applied`` / ``ip.block.applied``, reason ``idp_reported``): what the
    provider does not say (the failure count, often the end) is not invented here."""

    provider: Name
    scope: LockoutScope
    reason: Reason
    factor: Factor | None = None
    ip: Annotated[str, personal("The IP address the provider blocked.", max_length=45)] | None = (
        None
    )
    locked_until: UtcTime | None = None
    detail: Text | None = None

    def __post_init__(self) -> None:
        # an IP lock names its ip, but the ip is personal: erasure redacts it, so it may be
        # absent from a stored event (the folds then lock nothing)
        check_ip("ip", self.ip)
        if self.scope is LockoutScope.FACTOR and self.factor is None:
            raise ValueError("a factor lock names the factor")


class IdpUnlockReported(Activity, frozen=True, kw_only=True):
    """An identity provider says it lifted a lock (Okta's ``user.account.unlock``, Auth0's
    ``ublkdu``); the pipeline clears its own lock of the same scope."""

    provider: Name
    scope: LockoutScope
    reason: Reason
    factor: Factor | None = None
    ip: Annotated[str, personal("The IP address the provider unblocked.", max_length=45)] | None = (
        None
    )

    def __post_init__(self) -> None:
        check_ip("ip", self.ip)
        if self.scope is LockoutScope.FACTOR and self.factor is None:
            raise ValueError("a factor unlock names the factor")


class IdpRiskReported(Activity, frozen=True, kw_only=True):
    """An identity provider's own risk verdict on a sign-in (Entra ID's ``riskLevelDuringSignIn``
    and ``riskEventTypes``, Okta's ``security.threat.detected``). The pipeline files it as a
    ``risk.detected`` of detection ``idp_reported``, the provider named in its evidence."""

    provider: Name
    level: RiskLevel
    risk_types: list[Reason] = []
    detail: Text | None = None


# -- derived: lockouts, IP blocks, risk --------------------------------------------------


class LockoutApplied(Payload, frozen=True, kw_only=True):
    scope: LockoutScope
    reason: Reason
    failures: Count
    permanent: bool = False
    locked_until: UtcTime | None = None
    lockout_count: Count = 1
    factor: Factor | None = None
    ip: Annotated[str, personal("Locked IP address.", max_length=45)] | None = None
    policy_tier: PolicyTier | None = None
    trigger_event_id: Identifier | None = None

    def __post_init__(self) -> None:
        check_ip("ip", self.ip)


class LockoutCleared(Payload, frozen=True, kw_only=True):
    scope: LockoutScope
    reason: Reason
    factor: Factor | None = None
    ip: Annotated[str, personal("Unlocked IP address.", max_length=45)] | None = None
    cleared_by: Identifier | None = None
    trigger_event_id: Identifier | None = None

    def __post_init__(self) -> None:
        check_ip("ip", self.ip)


class IpBlockApplied(Payload, frozen=True, kw_only=True):
    ip: IpAddress
    reason: Reason
    blocked_until: UtcTime
    failures: Count
    distinct_subjects: Count
    trigger_event_id: Identifier | None = None
    only_tenant: TenantId | None = None
    """The block holds for this tenant's sign-ins alone: one an identity provider of that
    tenant reported (a tenant's report must not block an address every tenant shares).
    None: the platform's own block, for every tenant."""

    def __post_init__(self) -> None:
        check_ip("ip", self.ip)


class IpBlockReleased(Payload, frozen=True, kw_only=True):
    ip: IpAddress
    reason: Reason

    def __post_init__(self) -> None:
        check_ip("ip", self.ip)


class Detection(StrEnum):
    """Risk detections the stream processors run (see streams/folds)."""

    IMPOSSIBLE_TRAVEL = "impossible_travel"
    NEW_COUNTRY = "new_country"
    NEW_DEVICE = "new_device"
    ANONYMOUS_IP = "anonymous_ip"
    MALICIOUS_IP = "malicious_ip"
    PUSH_FATIGUE = "push_fatigue"
    PASSWORD_SPRAY = "password_spray"  # noqa: S105 - a detection name
    OTP_GUESSING = "otp_guessing"
    RECOVERY_CODE_ABUSE = "recovery_code_abuse"
    SMS_PUMPING = "sms_pumping"
    CLONED_AUTHENTICATOR = "cloned_authenticator"
    FACTOR_RESET_AFTER_RISK = "factor_reset_after_risk"
    IDP_REPORTED = "idp_reported"
    """The identity provider's own verdict (``idp.risk.reported``), not one of ours."""


EvidenceValue = str | int | float | bool | None


class RiskDetected(Payload, frozen=True, kw_only=True):
    detection: Detection
    severity: RiskLevel
    score: Annotated[int, msgspec.Meta(ge=0, le=100)]
    summary: Annotated[
        str,
        personal(
            "What was seen, for people: names the places, addresses and devices involved.",
            max_length=1024,
        ),
    ]
    evidence: Annotated[
        dict[Name, EvidenceValue],
        personal("The figures behind the detection (may hold addresses and coordinates)."),
    ] = {}
    related_event_ids: list[Identifier] = []
    client: Client | None = None


# -- derived: ledger and privacy ---------------------------------------------------------


class CheckpointSigned(Payload, frozen=True, kw_only=True):
    log_id: Identifier
    tree_size: Count
    root_hash: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$", description="SHA-256 hex.")]
    key_id: Identifier
    signature: Annotated[str, msgspec.Meta(max_length=256, description="Base64 Ed25519 sig.")]
    algorithm: Annotated[str, msgspec.Meta(pattern=r"^ed25519$")] = "ed25519"


class SubjectErased(Payload, frozen=True, kw_only=True):
    requested_by: Identifier
    reason: Reason
    ticket: Identifier | None = None
    key_id: Identifier | None = None


class PackDigest(Payload, frozen=True, kw_only=True):
    """What identifies an evidence pack: its framework, period, scope, counts and digest
    (the fields of :class:`EvidenceIssued` and :class:`EvidenceDownloaded`)."""

    framework: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9]+$", max_length=16)]
    period: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    since: UtcTime
    until: UtcTime
    scope_tenant: Identifier | None = None
    manifest_sha256: Annotated[
        str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$", description="SHA-256 hex of manifest.json.")
    ]
    controls: list[Name] = []
    rows: Count = 0
    exceptions: Count = 0
    checkpoint_size: Count = 0


class EvidenceIssued(PackDigest, frozen=True, kw_only=True):
    """An evidence pack was handed out: its digest, so the pack is provable later."""


class EvidenceDownloaded(PackDigest, frozen=True, kw_only=True):
    """An evidence pack was downloaded from the dashboard by the event's subject (a
    dashboard user): its digest, so the pack handed out there is provable later."""
