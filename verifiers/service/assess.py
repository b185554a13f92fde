"""``POST /v1/assess``: the risk of a sign-in and the tier's decision, from the stream's state.

The caller (a login service, after the first factor) sends the sign-in's context; the
service scores it against the subject's profile (:mod:`verifiers.risk`, read from the
:class:`~verifiers.service.stream_view.StreamView`), applies the tier's conditional access
(:func:`verifiers.policy.decide_mfa`), records ``auth.login.attempted`` and
``mfa.required`` with the reasons (through the outbox, like every ceremony), and answers
with the score, the level, each factor with its points, and the decision.

A sign-in that presents a trusted-device token (``device_token``, with the ``device_id`` it
was trusted with) is judged by :func:`verifiers.trusted_devices.check` in the same
transaction, against the verifier's gate and the stream's lock and IP block: a valid one
takes the device's ``new_device`` points away and skips the step-up when nothing but the
tier, the device or an unknown place asked for it (``mfa.reasons == ["trusted_device"]``);
a refused one is a ``device.trust_refused`` event and changes nothing.

(No ``from __future__ import annotations``: FastAPI reads the route's annotations.)
"""

import uuid
from collections.abc import Callable
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI
from pydantic import AwareDatetime, BaseModel, Field

from schemas.envelope import ATTRIBUTE_PATTERNS
from schemas.fields import COUNTRY_PATTERN, Client, Device, Factor, Geo, Outcome, RiskLevel
from schemas.payloads import LoginAttempted
from verifiers import trusted_devices
from verifiers.policy import Sensitivity, mfa_required_payload
from verifiers.risk import EMPTY, SignIn, assess_risk, decide
from verifiers.service.errors import ServiceRefusal
from verifiers.service.models import SignInContext
from verifiers.store import Request as CeremonyRequest

if TYPE_CHECKING:  # api.py imports this module
    from verifiers.service.api import ServiceParts


MAX_SKEW = timedelta(minutes=5)
"""How far a sign-in's ``time`` may be from the service's clock (the events record it)."""


class GeoIn(BaseModel):
    """Where the sign-in comes from, as the caller's GeoIP placed it."""

    country: str | None = Field(None, pattern=COUNTRY_PATTERN)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)


class AssessBody(SignInContext):
    subject: str = Field(min_length=1, max_length=128, pattern=ATTRIBUTE_PATTERNS["subject"])
    device_id: str | None = Field(
        None, min_length=1, max_length=128, description="Stable pseudonymous device id."
    )
    geo: GeoIn | None = None
    time: AwareDatetime | None = Field(
        None, description="When (default: the service's clock; at most 5 minutes from it)."
    )
    role: str | None = Field(None, max_length=64)
    application_sensitivity: Sensitivity = Sensitivity.LOW
    device_token: str | None = Field(
        None,
        min_length=1,
        max_length=trusted_devices.MAX_TOKEN_LENGTH,
        description="The trusted-device token the device keeps (remember-me); judged with "
        "`device_id`, the binding it was trusted with.",
    )


class RiskFactorOut(BaseModel):
    factor: str
    points: int
    detail: str


class DecisionOut(BaseModel):
    required: bool
    reasons: list[str]
    required_factors: list[Factor]
    allowed_factors: list[Factor]


class StreamOut(BaseModel):
    mode: Literal["kafka", "none"] = Field(
        description="kafka: the stream's state was read; none: no stream view configured."
    )
    caught_up: bool = False
    events_applied: int = 0
    lag_p50_ms: float | None = None
    lag_max_ms: float | None = None


class TrustedDeviceCheckOut(BaseModel):
    trusted: bool = Field(description="The token is valid for this subject and device now.")
    reason: str | None = Field(None, description="Why it was refused (none when trusted).")
    trust_id: str | None = None
    expires_at: AwareDatetime | None = None


class AssessmentOut(BaseModel):
    subject: str
    correlationid: str
    score: int = Field(ge=0, le=100)
    level: RiskLevel
    factors: list[RiskFactorOut]
    mfa: DecisionOut
    stream: StreamOut
    trusted_device: TrustedDeviceCheckOut | None = Field(
        None, description="The presented trusted-device token, judged (none presented: null)."
    )


def add_assess_route(app: FastAPI, parts: "ServiceParts", caller: Callable[..., Any]) -> None:
    """Register ``POST /v1/assess`` on ``app`` (``caller``: the credential dependency)."""
    from verifiers.service.clients import ServiceClient

    Caller = Annotated[ServiceClient, Depends(caller)]

    @app.post("/v1/assess", tags=["risk"])
    def assess(body: AssessBody, client: Caller) -> AssessmentOut:
        """Score a sign-in and decide whether it must step up, and with which factors."""
        clock = parts.clock()
        now = body.time.astimezone(UTC) if body.time is not None else clock
        if abs(now - clock) > MAX_SKEW:
            raise ServiceRefusal(
                422,
                "time_out_of_range",
                f"time must be within {MAX_SKEW} of the service's clock ({clock.isoformat()})",
            )
        geo = body.geo or GeoIn()
        ip = str(body.ip) if body.ip else None
        sign_in = SignIn(
            at=now,
            ip=ip,
            device_id=body.device_id,
            country=geo.country,
            latitude=geo.latitude,
            longitude=geo.longitude,
        )
        view = parts.stream
        profile = view.profile(client.tenant, body.subject) if view else None
        blocked_until = view.ip_blocked_until(ip, now, client.tenant) if view else None
        assessment = assess_risk(
            sign_in,
            profile if profile is not None else EMPTY,
            ip_blocked_until=blocked_until,
            thresholds=parts.config.risk,
        )
        request = CeremonyRequest(
            tenant=client.tenant,
            subject=body.subject,
            correlationid=body.correlationid or str(uuid.uuid4()),
            now=now,
            tier=body.tier,
            application=body.application or client.label,
            client=_client(body, ip),
        )
        token = body.device_token
        # a token is judged against the verifier's gate: the step then takes the subject's
        # lockout row, as a verification does
        with parts.store.step(request, factor=None, gated=token is not None) as step:
            found = None
            if token is not None:
                lock = profile.subject_lock if profile is not None else None
                found = trusted_devices.check(
                    parts.store,
                    step,
                    token=token,
                    device_id=body.device_id,
                    locked=lock is not None and lock.active(now),
                    ip_blocked=blocked_until is not None,
                )
                if found.trusted:
                    assessment = trusted_devices.remembered(assessment)
            context, decision = decide(
                assessment,
                tier=body.tier,
                role=body.role,
                sensitivity=body.application_sensitivity,
                tiers=parts.store.tiers,
            )
            if found is not None and found.trusted:
                decision = trusted_devices.skip_step_up(decision)
            seen = _client(body, ip, trusted=found.trusted if found is not None else None)
            step.emit(
                LoginAttempted(
                    outcome=Outcome.SUCCESS,
                    method="password",
                    mfa_required=decision.required,
                    client=seen,
                )
            )
            step.emit(
                mfa_required_payload(
                    decision,
                    context,
                    application=request.application or "unknown",
                    client=seen,
                )
            )
        status = view.status() if view else None
        return AssessmentOut(
            subject=body.subject,
            correlationid=request.correlationid,
            score=assessment.score,
            level=assessment.level,
            factors=[
                RiskFactorOut(factor=c.factor, points=c.points, detail=c.detail)
                for c in assessment.contributions
            ],
            mfa=DecisionOut(
                required=decision.required,
                reasons=list(decision.reasons),
                required_factors=list(decision.required_factors),
                allowed_factors=list(decision.allowed_factors),
            ),
            stream=StreamOut(mode="none")
            if status is None
            else StreamOut(
                mode="kafka",
                caught_up=status.caught_up,
                events_applied=status.events_applied,
                lag_p50_ms=status.lag_p50_ms,
                lag_max_ms=status.lag_max_ms,
            ),
            trusted_device=None
            if found is None
            else TrustedDeviceCheckOut(
                trusted=found.trusted,
                reason=found.reason,
                trust_id=found.trust_id,
                expires_at=found.expires_at,
            ),
        )


def _client(body: AssessBody, ip: str | None, *, trusted: bool | None = None) -> Client | None:
    """The sign-in's context; ``trusted``: what its trusted-device token was judged."""
    geo = body.geo
    if ip is None and body.user_agent is None and body.device_id is None and geo is None:
        return None
    return Client(
        ip=ip,
        user_agent=body.user_agent,
        device=Device(id=body.device_id, trusted=trusted) if body.device_id else None,
        geo=Geo(
            country=geo.country, latitude=geo.latitude, longitude=geo.longitude, source="client"
        )
        if geo is not None
        else None,
    )
