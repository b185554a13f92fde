"""The one list of event types.

Each type has a payload class per version, a one-line meaning, who may produce it (a
service, an operator's signed control tool, or the pipeline itself), its Auth0 log event
code and its OCSF class where one exists. ``schemas/README.md`` and ``schemas/json/`` are
generated from this list.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgspec

from schemas import payloads as p
from schemas.fields import PERSONAL_MARK

SCHEMA_URN = "urn:factorstream:schema"


@dataclass(frozen=True)
class Auth0Code:
    """An Auth0 log event code, optionally chosen by the value of one payload field."""

    default: str | None
    by_field: str | None = None
    cases: Mapping[str, str] = field(default_factory=dict)

    def for_payload(self, payload: p.Payload) -> str | None:
        if self.by_field is None:
            return self.default
        value = getattr(payload, self.by_field, None)
        return self.cases.get(str(value), self.default)

    def describe(self) -> str:
        if self.by_field is None:
            return f"`{self.default}`" if self.default else "—"
        cases = ", ".join(f"`{code}` ({value})" for value, code in self.cases.items())
        return f"by {self.by_field}: {cases}" + (f", else `{self.default}`" if self.default else "")


@dataclass(frozen=True)
class Ocsf:
    """The OCSF 1.1 class (and activity) an event maps to."""

    class_uid: int
    class_name: str
    activity_id: int
    activity_name: str

    def describe(self) -> str:
        return f"{self.class_name} ({self.class_uid}) / {self.activity_name} ({self.activity_id})"


class Producer(StrEnum):
    """Who may put an event of a type on the events topic."""

    SERVICE = "service"
    """Any service allowed to write the topic (what happened at a sign-in)."""
    CONTROL = "control"
    """An operator's tool, signed by a key the pipeline trusts (:mod:`schemas.signing`):
    erasure, administrators' overrides, temporary access."""
    PIPELINE = "pipeline"
    """The pipeline derives it (lockouts, detections, checkpoints); refused on the topic."""


AUTHENTICATION_LOGON = Ocsf(3002, "Authentication", 1, "Logon")
ACCOUNT_CHANGE = "Account Change"


@dataclass(frozen=True)
class EventType:
    name: str
    payload: type[p.Payload]
    summary: str
    version: int = 1
    made_by: Producer = Producer.SERVICE
    auth0: Auth0Code | None = None
    ocsf: Ocsf | None = None

    @property
    def dataschema(self) -> str:
        return f"{SCHEMA_URN}:{self.name}:v{self.version}"

    @property
    def schema_filename(self) -> str:
        return f"{self.name}.v{self.version}.json"

    @property
    def derived(self) -> bool:
        """The pipeline derives it; no one else may produce it."""
        return self.made_by is Producer.PIPELINE

    def auth0_code(self, payload: p.Payload) -> str | None:
        return self.auth0.for_payload(payload) if self.auth0 else None


def _code(default: str | None, by_field: str | None = None, **cases: str) -> Auth0Code:
    return Auth0Code(default, by_field, cases)


_SEND = {
    "sms": "gd_send_sms",
    "voice": "gd_send_voice",
    "email": "gd_send_email",
    "push": "gd_send_pn",
}
_SEND_FAIL = {
    "sms": "gd_send_sms_failure",
    "voice": "gd_send_voice_failure",
    "email": "gd_send_email_failure",
    "push": "gd_send_pn_failure",
}

EVENT_TYPES: tuple[EventType, ...] = (
    EventType(
        "mfa.enrollment.started",
        p.EnrollmentStarted,
        "A subject began enrolling a factor.",
        auth0=_code("gd_start_enroll"),
        ocsf=Ocsf(3001, ACCOUNT_CHANGE, 99, "Other"),
    ),
    EventType(
        "mfa.enrollment.completed",
        p.EnrollmentCompleted,
        "A factor was enrolled and confirmed.",
        auth0=_code("gd_enrollment_complete"),
        ocsf=Ocsf(3001, ACCOUNT_CHANGE, 10, "MFA Factor Enable"),
    ),
    EventType(
        "mfa.enrollment.failed",
        p.EnrollmentFailed,
        "An enrollment could not be completed.",
        auth0=_code("gd_start_enroll_failed", "factor", webauthn="gd_webauthn_enrollment_failed"),
        ocsf=Ocsf(3001, ACCOUNT_CHANGE, 10, "MFA Factor Enable"),
    ),
    EventType(
        "mfa.enrollment.removed",
        p.EnrollmentRemoved,
        "A factor was removed (by the subject or an administrator).",
        auth0=_code("gd_unenroll"),
        ocsf=Ocsf(3001, ACCOUNT_CHANGE, 11, "MFA Factor Disable"),
    ),
    EventType(
        "mfa.challenge.issued",
        p.ChallengeIssued,
        "A second-factor challenge was started.",
        auth0=_code("gd_start_auth"),
        ocsf=Ocsf(3002, "Authentication", 6, "Preauth"),
    ),
    EventType(
        "mfa.challenge.sent",
        p.ChallengeSent,
        "A code or push was handed to a delivery provider.",
        auth0=_code(None, "channel", **_SEND),
    ),
    EventType(
        "mfa.challenge.delivery_failed",
        p.ChallengeDeliveryFailed,
        "A delivery provider failed to deliver a challenge.",
        auth0=_code(None, "channel", **_SEND_FAIL),
    ),
    EventType(
        "mfa.challenge.delivery_reported",
        p.ChallengeDeliveryReported,
        "A provider's delivery receipt: whether a message it accepted reached the phone.",
    ),
    EventType(
        "mfa.verification.succeeded",
        p.VerificationSucceeded,
        "A second factor was verified.",
        auth0=_code("gd_auth_succeed"),
        ocsf=AUTHENTICATION_LOGON,
    ),
    EventType(
        "mfa.verification.failed",
        p.VerificationFailed,
        "A second-factor verification failed (the reason says why).",
        auth0=_code("gd_auth_failed", "factor", webauthn="gd_webauthn_challenge_failed"),
        ocsf=AUTHENTICATION_LOGON,
    ),
    EventType(
        "mfa.push.approved",
        p.PushApproved,
        "The subject approved a push challenge.",
        auth0=_code("gd_auth_succeed"),
        ocsf=AUTHENTICATION_LOGON,
    ),
    EventType(
        "mfa.push.rejected",
        p.PushRejected,
        "The subject rejected a push challenge.",
        auth0=_code("gd_auth_rejected"),
        ocsf=AUTHENTICATION_LOGON,
    ),
    EventType(
        "mfa.push.expired",
        p.PushExpired,
        "A push challenge expired unanswered.",
        ocsf=AUTHENTICATION_LOGON,
    ),
    EventType(
        "mfa.push.reported_fraud",
        p.PushReportedFraud,
        "The subject reported a push challenge as fraudulent.",
        auth0=_code("gd_auth_rejected"),
        ocsf=AUTHENTICATION_LOGON,
    ),
    EventType(
        "mfa.recovery.succeeded",
        p.RecoverySucceeded,
        "A recovery code was accepted (and is now used up).",
        auth0=_code("gd_recovery_succeed"),
        ocsf=AUTHENTICATION_LOGON,
    ),
    EventType(
        "mfa.recovery.failed",
        p.RecoveryFailed,
        "A recovery code was refused.",
        auth0=_code("gd_recovery_failed"),
        ocsf=AUTHENTICATION_LOGON,
    ),
    EventType(
        "mfa.recovery.regenerated",
        p.RecoveryRegenerated,
        "A new set of recovery codes replaced the old one.",
        ocsf=Ocsf(3001, ACCOUNT_CHANGE, 99, "Other"),
    ),
    EventType(
        "device.trusted",
        p.DeviceTrusted,
        "The subject trusted a device: it skips MFA until the trust expires or is revoked.",
        ocsf=Ocsf(3001, ACCOUNT_CHANGE, 99, "Trusted Device Add"),
    ),
    EventType(
        "device.revoked",
        p.DeviceRevoked,
        "Trust in a device ended (subject, administrator, erasure, stolen token).",
        ocsf=Ocsf(3001, ACCOUNT_CHANGE, 99, "Trusted Device Remove"),
    ),
    EventType(
        "device.trust_refused",
        p.DeviceTrustRefused,
        "A trusted-device token was refused (the reason says why); the sign-in steps up.",
        ocsf=AUTHENTICATION_LOGON,
    ),
    EventType(
        "auth.login.attempted",
        p.LoginAttempted,
        "A first-factor sign-in was attempted.",
        auth0=_code("f", "outcome", success="s", failure="f"),
        ocsf=AUTHENTICATION_LOGON,
    ),
    EventType(
        "mfa.required",
        p.MfaRequired,
        "Conditional access decided whether MFA is required, and which factors.",
        auth0=_code("mfar"),
    ),
    EventType(
        "service.request.refused",
        p.ServiceRequestRefused,
        "The MFA service refused a request outside any ceremony.",
        ocsf=Ocsf(6003, "API Activity", 99, "Other"),
    ),
    EventType(
        "idp.lock.reported",
        p.IdpLockReported,
        "An identity provider locked a subject, factor or IP.",
        ocsf=Ocsf(3001, ACCOUNT_CHANGE, 9, "Lock"),
    ),
    EventType(
        "idp.unlock.reported",
        p.IdpUnlockReported,
        "An identity provider lifted a lock.",
        ocsf=Ocsf(3001, ACCOUNT_CHANGE, 99, "Other"),
    ),
    EventType(
        "idp.risk.reported",
        p.IdpRiskReported,
        "An identity provider's own risk verdict on a sign-in.",
    ),
    EventType(
        "admin.override.requested",
        p.AdminOverrideRequested,
        "An administrator asked to override a control (unlock, reset, bypass).",
        made_by=Producer.CONTROL,
    ),
    EventType(
        "admin.override.approved",
        p.AdminOverrideApproved,
        "A second administrator approved an override.",
        made_by=Producer.CONTROL,
        ocsf=Ocsf(3005, "User Access Management", 1, "Assign Privileges"),
    ),
    EventType(
        "access.temporary.granted",
        p.TemporaryAccessGranted,
        "Time-boxed access was granted without the usual factor.",
        made_by=Producer.CONTROL,
        ocsf=Ocsf(3005, "User Access Management", 1, "Assign Privileges"),
    ),
    EventType(
        "admin.override.refused",
        p.AdminOverrideRefused,
        "The two-person rule refused an override's request or approval.",
        made_by=Producer.CONTROL,
        ocsf=Ocsf(3005, "User Access Management", 99, "Other"),
    ),
    EventType(
        "access.temporary.used",
        p.TemporaryAccessUsed,
        "A temporary-access code let its subject in.",
        ocsf=AUTHENTICATION_LOGON,
    ),
    EventType(
        "access.temporary.refused",
        p.TemporaryAccessRefused,
        "A temporary-access code was refused.",
        ocsf=AUTHENTICATION_LOGON,
    ),
    EventType(
        "lockout.applied",
        p.LockoutApplied,
        "The lockout fold locked a subject, factor or IP.",
        made_by=Producer.PIPELINE,
        auth0=_code("limit_sul", "scope", factor="gd_otp_rate_limit_exceed", ip="limit_wc"),
        ocsf=Ocsf(3001, ACCOUNT_CHANGE, 9, "Lock"),
    ),
    EventType(
        "lockout.cleared",
        p.LockoutCleared,
        "A lockout ended (expired, success, administrator).",
        made_by=Producer.PIPELINE,
        auth0=_code("ublkdu"),
        ocsf=Ocsf(3001, ACCOUNT_CHANGE, 99, "Other"),
    ),
    EventType(
        "ip.block.applied",
        p.IpBlockApplied,
        "An IP was throttled for failing against many subjects.",
        made_by=Producer.PIPELINE,
        auth0=_code("limit_mu"),
    ),
    EventType(
        "ip.block.released", p.IpBlockReleased, "An IP block ended.", made_by=Producer.PIPELINE
    ),
    EventType(
        "risk.detected",
        p.RiskDetected,
        "A risk detection fired, with its evidence.",
        made_by=Producer.PIPELINE,
        ocsf=Ocsf(2004, "Detection Finding", 1, "Create"),
    ),
    EventType(
        "audit.checkpoint.signed",
        p.CheckpointSigned,
        "The ledger signed a checkpoint (tree size and root).",
        made_by=Producer.PIPELINE,
    ),
    EventType(
        "privacy.subject.erased",
        p.SubjectErased,
        "A subject's personal data was crypto-shredded (GDPR Art. 17).",
        made_by=Producer.CONTROL,
        ocsf=Ocsf(3001, ACCOUNT_CHANGE, 6, "Delete"),
    ),
    EventType(
        "audit.evidence.issued",
        p.EvidenceIssued,
        "An evidence pack (SOC 2, HIPAA, GDPR) was issued; its manifest's SHA-256.",
        made_by=Producer.PIPELINE,
    ),
    EventType(
        "audit.evidence.downloaded",
        p.EvidenceDownloaded,
        "A dashboard user downloaded an evidence pack; its manifest's SHA-256.",
    ),
)

BY_NAME: Mapping[str, EventType] = {t.name: t for t in EVENT_TYPES}
BY_DATASCHEMA: Mapping[str, EventType] = {t.dataschema: t for t in EVENT_TYPES}
BY_PAYLOAD: Mapping[type[p.Payload], EventType] = {t.payload: t for t in EVENT_TYPES}


def event_type(name: str) -> EventType:
    """The registered type called ``name`` (``KeyError`` if there is none)."""
    return BY_NAME[name]


def personal_paths(event: EventType) -> list[str]:
    """Dotted paths under ``data`` of the fields marked as personal data."""
    schema = msgspec.json.schema(event.payload)
    return sorted(set(_personal_paths(schema, schema.get("$defs", {}), "data")))


def _personal_paths(node: Any, defs: Mapping[str, Any], at: str) -> Iterator[str]:
    if not isinstance(node, dict):
        return
    if node.get(PERSONAL_MARK):
        yield at
    if "$ref" in node:
        yield from _personal_paths(defs[node["$ref"].rsplit("/", 1)[-1]], defs, at)
    for alternative in node.get("anyOf", []):
        yield from _personal_paths(alternative, defs, at)
    for name, child in node.get("properties", {}).items():
        yield from _personal_paths(child, defs, f"{at}.{name}")


PathTree = dict[str, "PathTree | None"]
"""Dotted paths as nested names: ``{"client": {"ip": None}}`` for ``data.client.ip``."""


@functools.cache
def personal_tree(event_type: str) -> PathTree:
    """The personal-data paths of a type below ``data``, as a tree (``None`` at a field);
    empty for a type not in the registry."""
    kind = BY_NAME.get(event_type)
    tree: PathTree = {}
    for path in personal_paths(kind) if kind is not None else ():
        node = tree
        *parents, name = path.split(".")[1:]
        for part in parents:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            node = child
        node[name] = None
    return tree
