"""The MFA service's HTTP API (``/v1``): the verifiers' ceremonies for callers in any language.

Each route is glue: authenticate the caller (its tenant comes from its credential, never
from the request), build the ceremony's :class:`~verifiers.store.Request`, call the
library, and answer with its result. A refusal the library returns (a wrong or replayed
code, a lockout) becomes a 4xx whose ``error`` is the library's reason; a successful
step-up returns a signed assertion (:mod:`verifiers.service.assertions`).

A subject with nothing enrolled in the caller's tenant is unknown (404), so another
tenant's subjects are indistinguishable from ones that do not exist.

(No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations,
some of them local names, at run time.)
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, urlparse

from verifiers.service import require_extra

require_extra("fastapi", "jwt")

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from schemas.fields import Client, Factor
from verifiers import factors, recovery_codes, temporary_access, totp
from verifiers.delivery import FailoverDelivery
from verifiers.sendcaps import SendCharges
from verifiers.service import otp_routes, push_routes, trusted_device_routes, webauthn_routes
from verifiers.service.assertions import (
    ACR_MFA,
    ACR_RECOVERY,
    ACR_TEMPORARY_ACCESS,
    AMR_RECOVERY,
    AMR_TEMPORARY_ACCESS,
    AMR_TOTP,
    AssertionKeys,
    AssertionRequest,
    sign_assertion,
)
from verifiers.service.assess import add_assess_route
from verifiers.service.clients import ServiceClient, ServiceClients
from verifiers.service.config import ServiceConfig
from verifiers.service.errors import (
    PROBLEM,
    BodyGuard,
    ServiceRefusal,
    error_of,
    problem_response,
)
from verifiers.service.metrics import ServiceMetrics, add_probes, service_checks
from verifiers.service.models import (
    AssertionOut,
    CodeBody,
    ConfirmedOut,
    FactorOut,
    FactorsOut,
    Problem,
    RecoveryCodesOut,
    SignInContext,
    TotpEnrollBody,
    TotpEnrollmentOut,
)
from verifiers.service.ratelimit import RateLimited
from verifiers.service.routing import IdPath, RouteKit, SubjectPath
from verifiers.service.stream_view import StreamView, enforce
from verifiers.service.trail import RefusalTrail
from verifiers.store import Request as CeremonyRequest
from verifiers.store import Verdict, VerifierStore

REALM = 'Bearer realm="factorstream"'
LOCKED = 423
REFUSED = 403
NOT_FOUND_REASONS = frozenset({"unknown_enrollment", "not_enrolled"})


@dataclass(frozen=True)
class ServiceParts:
    """What the API works with (built by :func:`verifiers.service.server.open_parts`)."""

    config: ServiceConfig
    store: VerifierStore
    clients: ServiceClients
    keys: AssertionKeys
    clock: Callable[[], datetime]
    delivery: FailoverDelivery | None = None
    """Where SMS, voice and e-mail codes go (``None``: those factors are unavailable)."""
    charges: SendCharges | None = None
    """The price table and daily caps of SMS and voice sends (``None``: neither)."""
    stream: StreamView | None = None
    """The stream's state (locks, IP blocks, profiles); ``None`` without Kafka."""
    metrics: ServiceMetrics | None = None
    """What ``/metrics`` exports (``None``: no ``/metrics``; ``/health`` and ``/ready``
    are served either way)."""


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {PROBLEM: {}}}
    for code in (400, 401, 403, 404, 409, 413, 415, 422, 423, 429, 502, 503)
}


# -- the app ---------------------------------------------------------------------------------


def create_app(parts: ServiceParts) -> Any:
    """The service as an ASGI app (FastAPI behind the body guard)."""
    app = FastAPI(
        title="factorstream MFA service",
        version="1",
        docs_url=None,
        redoc_url=None,
        responses=ERRORS,
    )
    trail = RefusalTrail(parts.store, parts.clients, parts.clock, routes=lambda: app.router.routes)
    _install_error_handlers(app, trail)
    bearer = HTTPBearer(auto_error=False, description="A service client credential")

    async def caller(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> ServiceClient:
        # async, so a credential the cache knows costs no thread hop; a database look-up
        # runs in the thread pool
        if credentials is None:
            raise ServiceRefusal(
                401,
                "unauthenticated",
                "send a client credential: Authorization: Bearer …",
                headers={"WWW-Authenticate": REALM},
            )
        client = parts.clients.cached(credentials.credentials)
        if client is None:
            client = await run_in_threadpool(parts.clients.authenticate, credentials.credentials)
        if client is None:
            raise ServiceRefusal(
                401,
                "invalid_credential",
                "the client credential is unknown or revoked",
                headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
            )
        return client

    Caller = Annotated[ServiceClient, Depends(caller)]

    def ceremony(
        client: ServiceClient, subject: str, body: SignInContext | None, *, past_lock: bool = False
    ) -> CeremonyRequest:
        context = body or SignInContext()
        request = CeremonyRequest(
            tenant=client.tenant,
            subject=subject,
            correlationid=context.correlationid or str(uuid.uuid4()),
            now=parts.clock(),
            tier=context.tier,
            application=context.application or client.label,
            client=Client(ip=str(context.ip) if context.ip else None, user_agent=context.user_agent)
            if context.ip or context.user_agent
            else None,
        )
        # what the stream locked or blocked: 423 (past_lock: the IP block only)
        enforce(parts.stream, request, subject_lock=not past_lock)
        return request

    def known(client: ServiceClient, subject: str) -> factors.SubjectFactors:
        found = factors.list_factors(parts.store, tenant=client.tenant, subject=subject)
        if not found.known:
            raise _unknown_subject()
        return found

    def allowed(request: CeremonyRequest, factor: Factor) -> None:
        if factor not in parts.store.tiers[request.tier].accepted_factors:
            raise ServiceRefusal(
                REFUSED, "factor_not_allowed", f"the {request.tier} tier does not accept {factor}"
            )

    def assertion(
        client: ServiceClient, request: CeremonyRequest, amr: tuple[str, ...], acr: str
    ) -> AssertionOut:
        lifetime = parts.config.assertion_lifetime
        token = sign_assertion(
            parts.keys,
            AssertionRequest(
                issuer=parts.config.issuer,
                subject=request.subject,
                tenant=request.tenant,
                audience=client.audience,
                amr=amr,
                acr=acr,
                auth_time=request.now,
                lifetime=lifetime,
            ),
            now=request.now,
        )
        return AssertionOut(
            assertion=token, expires_in=int(lifetime.total_seconds()), amr=list(amr), acr=acr
        )

    @app.get("/.well-known/jwks.json", tags=["assertions"])
    def jwks() -> JSONResponse:
        """The public keys MFA assertions are signed with (current and retired)."""
        return JSONResponse(parts.keys.jwks(), headers={"Cache-Control": "max-age=300"})

    @app.get("/v1/health", tags=["service"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/subjects/{subject}/totp/enrollments", status_code=201, tags=["totp"])
    def totp_enroll(
        subject: SubjectPath, client: Caller, body: TotpEnrollBody | None = None
    ) -> TotpEnrollmentOut:
        """Start a TOTP enrollment; it becomes active with its first code (confirm)."""
        request = ceremony(client, subject, body)
        allowed(request, Factor.TOTP)
        enrollment = totp.begin_enrollment(
            parts.store,
            request,
            account_name=(body.account_name if body else None) or subject,
            issuer=parts.config.totp_issuer,
        )
        secret = parse_qs(urlparse(enrollment.provisioning_uri).query)["secret"][0]
        return TotpEnrollmentOut(
            enrollment_id=enrollment.enrollment_id,
            secret=secret,
            provisioning_uri=enrollment.provisioning_uri,
            qr_svg=enrollment.qr_svg,
        )

    @app.post("/v1/subjects/{subject}/totp/enrollments/{enrollment_id}/confirm", tags=["totp"])
    def totp_confirm(
        subject: SubjectPath, enrollment_id: IdPath, client: Caller, body: CodeBody
    ) -> ConfirmedOut:
        """Activate a pending TOTP enrollment with the first code the authenticator shows."""
        request = ceremony(client, subject, body)
        known(client, subject)
        allowed(request, Factor.TOTP)
        verdict = totp.confirm_enrollment(
            parts.store, request, enrollment_id=enrollment_id, code=body.code
        )
        _accepted(verdict)
        return ConfirmedOut(enrollment_id=enrollment_id)

    @app.post("/v1/subjects/{subject}/totp/verify", tags=["totp"])
    def totp_verify(subject: SubjectPath, client: Caller, body: CodeBody) -> AssertionOut:
        """Step up with a TOTP code; returns a signed MFA assertion."""
        request = ceremony(client, subject, body)
        if Factor.TOTP not in parts.store.tiers[request.tier].accepted_factors:
            known(client, subject)  # an unknown subject is 404 before anything else
            allowed(request, Factor.TOTP)
        # the 404 check is part of the ceremony's own transaction: an active TOTP
        # enrollment proves the subject known, so the common case costs no query for it
        verdict = totp.verify(parts.store, request, code=body.code, refuse_unknown_subject=True)
        if verdict.reason == "unknown_subject":
            raise _unknown_subject()
        _accepted(verdict)
        return assertion(client, request, AMR_TOTP, ACR_MFA)

    @app.post("/v1/subjects/{subject}/recovery-codes", status_code=201, tags=["recovery codes"])
    def recovery_generate(
        subject: SubjectPath, client: Caller, body: SignInContext | None = None
    ) -> RecoveryCodesOut:
        """A new set of recovery codes (shown once); the earlier set stops working."""
        request = ceremony(client, subject, body)
        return RecoveryCodesOut(codes=recovery_codes.regenerate(parts.store, request))

    @app.post("/v1/subjects/{subject}/recovery-codes/verify", tags=["recovery codes"])
    def recovery_verify(subject: SubjectPath, client: Caller, body: CodeBody) -> AssertionOut:
        """Redeem one recovery code (single use); returns a signed assertion whose ``acr``
        says recovery."""
        request = ceremony(client, subject, body)
        known(client, subject)
        _accepted(recovery_codes.redeem(parts.store, request, code=body.code))
        return assertion(client, request, AMR_RECOVERY, ACR_RECOVERY)

    @app.post("/v1/subjects/{subject}/temporary-access/verify", tags=["temporary access"])
    def temporary_access_verify(
        subject: SubjectPath, client: Caller, body: CodeBody
    ) -> AssertionOut:
        """Let a locked-out subject in with a temporary-access code two administrators
        granted (``factorstream override``), past any lock of theirs; single-use codes work
        once. The assertion's ``acr`` says temporary access."""
        request = ceremony(client, subject, body, past_lock=True)
        _accepted(temporary_access.redeem(parts.store, request, code=body.code))
        return assertion(client, request, AMR_TEMPORARY_ACCESS, ACR_TEMPORARY_ACCESS)

    @app.get("/v1/subjects/{subject}/factors", tags=["factors"])
    def factor_list(subject: SubjectPath, client: Caller) -> FactorsOut:
        """The subject's invited, pending and active factors and its recovery codes left."""
        found = known(client, subject)
        return FactorsOut(
            factors=[
                FactorOut(
                    enrollment_id=f.enrollment_id,
                    factor=f.factor,
                    status=f.status,
                    created_at=f.created_at,
                    confirmed_at=f.confirmed_at,
                )
                for f in found.factors
            ],
            recovery_codes_remaining=found.recovery_codes_remaining,
        )

    @app.delete("/v1/subjects/{subject}/factors/{enrollment_id}", status_code=204, tags=["factors"])
    def factor_remove(subject: SubjectPath, enrollment_id: IdPath, client: Caller) -> Response:
        """Remove one enrollment (``mfa.enrollment.removed``, removed by the client)."""
        request = ceremony(client, subject, None)
        known(client, subject)
        verdict = factors.remove_factor(
            parts.store,
            request,
            enrollment_id=enrollment_id,
            reason="service_request",
            removed_by=f"client:{client.client_id}",
        )
        _accepted(verdict)
        return Response(status_code=204)

    stream = parts.stream
    checks = service_checks(
        parts.store.engine,
        kafka=None if parts.config.stream is None else parts.config.stream.kafka,
        caught_up=None if stream is None else (lambda: stream.status().caught_up),
    )
    add_probes(app, checks, metrics=parts.metrics)
    kit = RouteKit(parts, caller, ceremony, known, allowed, assertion, _accepted)
    for family in (webauthn_routes, otp_routes, push_routes, trusted_device_routes):
        family.register(app, kit)
    add_assess_route(app, parts, caller)
    guarded = BodyGuard(app, max_bytes=parts.config.max_body_bytes, refused=trail.record)
    return RateLimited(guarded, parts.config.rate_limits)


def _unknown_subject() -> ServiceRefusal:
    """The 404 of a subject with nothing enrolled in the caller's tenant (or another
    tenant's subject: the two are indistinguishable)."""
    return ServiceRefusal(404, "unknown_subject", "no such subject")


def _accepted(verdict: Verdict) -> None:
    """Nothing for an accepted verdict; the refusal as a 4xx otherwise."""
    if verdict.accepted:
        return
    reason = verdict.reason or "refused"
    extra = {"locked_until": verdict.locked_until.isoformat()} if verdict.locked_until else {}
    recorded = verdict.event is not None  # the ceremony's own event says it
    if reason == "locked_out":
        raise ServiceRefusal(
            LOCKED, reason, "the subject or factor is locked", extra=extra, recorded=recorded
        )
    if reason in NOT_FOUND_REASONS:
        raise ServiceRefusal(
            404, reason, "the subject has no such factor enrolled", recorded=recorded
        )
    raise ServiceRefusal(REFUSED, reason, "the factor was refused", extra=extra, recorded=recorded)


def _install_error_handlers(app: FastAPI, trail: RefusalTrail) -> None:
    respond = problem_response

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceRefusal)  # noqa: S101 - registered for this type
        if not exc.recorded:
            await trail.record(request.scope, exc.status, exc.error)
        return respond(exc.status, exc.error, exc.detail, headers=exc.headers, **exc.extra)

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)  # noqa: S101
        problems = exc.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            await trail.record(request.scope, 400, "malformed_json")
            return respond(400, "malformed_json", "the request body is not valid JSON")
        detail = "; ".join(
            f"{'.'.join(str(part) for part in p.get('loc', ()))}: {p.get('msg')}" for p in problems
        )
        await trail.record(request.scope, 422, "invalid_request")
        return respond(422, "invalid_request", detail)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # noqa: S101
        status = exc.status_code
        error = error_of(status)
        await trail.record(request.scope, status, error)
        return respond(status, error, str(exc.detail), headers=exc.headers)

    async def unexpected(_request: Request, _exc: Exception) -> Response:
        return respond(500, "internal_error", "the service failed; the request was not done")

    app.add_exception_handler(ServiceRefusal, refused)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
