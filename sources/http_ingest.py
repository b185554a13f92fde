"""HTTP ingest: ``POST /v1/events`` takes CloudEvents from any language and answers only
once the broker has them.

:func:`create_app` builds the FastAPI app from an :class:`IngestConfig`, a :class:`Delivery`
(:class:`sources.delivery.EventDelivery` in production) and the credentials. Structured,
binary and batch modes (:mod:`sources.cloudevents_http`), each event decoded by the
contract's codec; a per-tenant bearer credential (and, with a signing secret, an HMAC
signature: :mod:`sources.signatures`). A request is all or nothing: with any bad event
(422 form, 403 permission) none is delivered; 202 comes only after the broker
acknowledged every event, 503 with ``Retry-After`` while it is unreachable; 413 over the
size limits. Errors are RFC 9457 problem details. Other routers (the identity providers'
webhook receivers) can be mounted into the same app (``routers``).
The answers in full: docs/http-ingest.md.

(No ``from __future__ import annotations``: FastAPI reads annotations at run time.)
"""

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from verifiers.service import require_extra

require_extra("fastapi")

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from schemas import Event
from sources.cloudevents_http import (
    BATCH_CONTENT_TYPE,
    ParsedRequest,
    RequestRefused,
    admit,
    parse_request,
    refusal_status,
)
from sources.delivery import BrokerUnavailable
from sources.ingest_metrics import IngestMetrics
from sources.signatures import SIGNATURE_HEADER, RequestSigning, SignatureRefused
from verifiers.service.clients import ServiceClient, ServiceClients
from verifiers.service.errors import (
    PROBLEM,
    BodyGuard,
    ServiceRefusal,
    error_of,
    problem_response,
)
from verifiers.service.metrics import ReadyChecks, add_probes

REALM = 'Bearer realm="factorstream-ingest"'


class Delivery(Protocol):
    """What the ingest needs of :class:`sources.delivery.EventDelivery`."""

    async def deliver(self, events: Sequence[Event]) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class IngestConfig:
    """The HTTP ingest's plain values (made by the front door from its settings)."""

    max_body_bytes: int = 1_048_576
    max_batch_events: int = 1000
    retry_after_s: int = 5
    """``Retry-After`` of a 503 while the broker is unreachable."""
    signing_secret: bytes | None = field(default=None, repr=False)
    """When set, every request must carry a valid HMAC signature (:mod:`sources.signatures`)."""
    signature_window: timedelta = timedelta(minutes=5)
    max_ahead: timedelta | None = timedelta(minutes=5)
    """Events dated more than this after the ingest's clock are refused (the worker would
    dead-letter them); ``None``: no check."""
    control_keys: Mapping[str, Ed25519PublicKey] = field(default_factory=dict, repr=False)
    """Keys (by key id) whose signature makes a control event acceptable."""


def create_app(
    config: IngestConfig,
    delivery: Delivery,
    credentials: ServiceClients,
    *,
    clock: Callable[[], datetime],
    routers: Sequence[APIRouter] = (),
    ready: ReadyChecks | None = None,
    metrics: IngestMetrics | None = None,
) -> Any:
    """The ingest as an ASGI app (FastAPI behind a body-size guard). ``clock``: the time
    signatures and event times are checked against. Stopping the app stops ``delivery``.
    ``ready``: the readiness checks of ``/ready`` (``None``: ready while up); ``metrics``:
    what ``/metrics`` exports (``None``: no ``/metrics``)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # type: ignore[no-untyped-def]
        try:
            yield
        finally:
            await delivery.stop()

    app = FastAPI(
        title="factorstream ingest",
        version="1",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    _install_error_handlers(app)
    signing = (
        RequestSigning(config.signing_secret, window=config.signature_window)
        if config.signing_secret
        else None
    )

    async def caller(request: Request) -> ServiceClient:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ServiceRefusal(
                401,
                "unauthenticated",
                "send an ingest credential: Authorization: Bearer …",
                headers={"WWW-Authenticate": REALM},
            )
        token = token.strip()
        client = credentials.cached(token)
        if client is None:
            client = await run_in_threadpool(credentials.authenticate, token)
        if client is None:
            raise ServiceRefusal(
                401,
                "invalid_credential",
                "the ingest credential is unknown or revoked",
                headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
            )
        return client

    def events_of(
        client: ServiceClient, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> ParsedRequest:
        """The request's events, or the refusal naming each bad one (all or nothing)."""
        try:
            parsed = parse_request(headers, body, max_events=config.max_batch_events)
        except RequestRefused as refused:
            raise ServiceRefusal(refused.status, refused.error, refused.detail) from None
        problems = parsed.problems + admit(
            parsed,
            tenant=client.tenant,
            control_keys=config.control_keys,
            now=now,
            max_ahead=config.max_ahead,
        )
        if problems:
            problems.sort(key=lambda p: p.index)
            total = len(parsed.events) + len(parsed.problems)
            status = refusal_status(problems)
            if metrics is not None:
                metrics.events.labels("refused").inc(len({p.index for p in problems}))
            raise ServiceRefusal(
                status,
                "events_refused" if status == 422 else "events_forbidden",
                f"{len({p.index for p in problems})} of {total} event(s) refused; none of the "
                "request's events was delivered (a request is all or nothing)",
                extra={"errors": [p.as_json() for p in problems]},
            )
        return parsed

    async def deliver(events: Sequence[Event]) -> None:
        started = time.perf_counter()
        try:
            await delivery.deliver(events)
            if metrics is not None:
                metrics.delivery_seconds.observe(time.perf_counter() - started)
                metrics.events.labels("accepted").inc(len(events))
        except BrokerUnavailable as unavailable:
            raise ServiceRefusal(
                503,
                "broker_unavailable",
                f"{unavailable} Retry the same request: events keep their ids, and the "
                "pipeline drops the ones it already has.",
                headers={"Retry-After": str(config.retry_after_s)},
            ) from None

    @app.post(
        "/v1/events",
        status_code=202,
        summary="Ingest CloudEvents (structured, binary or batch mode)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/cloudevents+json": {"schema": {"type": "object"}},
                    BATCH_CONTENT_TYPE: {"schema": {"type": "array", "items": {"type": "object"}}},
                    "application/json": {
                        "schema": {"type": "object"},
                        "description": "binary mode: attributes in ce-* headers",
                    },
                },
            }
        },
        responses={
            code: {"content": {PROBLEM: {}}} for code in (400, 401, 403, 413, 415, 422, 503)
        },
    )
    async def ingest(request: Request) -> JSONResponse:
        """Every event of the request is in the events topic when this answers 202."""
        try:
            return await ingest_request(request)
        except ServiceRefusal as refusal:
            if metrics is not None:
                metrics.refusals.labels(refusal.error).inc()
            raise

    async def ingest_request(request: Request) -> JSONResponse:
        client = await caller(request)
        body = await request.body()
        headers = {name.lower(): value for name, value in request.headers.items()}
        now = clock()
        checked = None
        if signing is not None:
            try:
                checked = signing.check(
                    headers.get(SIGNATURE_HEADER),
                    method=request.method,
                    path=request.url.path,
                    headers=headers,
                    body=body,
                    now=now,
                )
            except SignatureRefused as refused:
                raise ServiceRefusal(401, refused.error, refused.detail) from None
        try:
            parsed = events_of(client, headers, body, now)
            await deliver(parsed.events)
        except BaseException:
            if signing is not None and checked is not None:
                signing.released(checked)
            raise
        if signing is not None and checked is not None:
            signing.accepted(checked, now=now)
        return JSONResponse(
            {"accepted": len(parsed.events), "ids": [event.id for event in parsed.events]},
            status_code=202,
        )

    @app.get("/v1/health", summary="The ingest is up (the broker may not be)")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    add_probes(app, ready or _always_ready, metrics=metrics)
    for router in routers:
        app.include_router(router)
    return BodyGuard(app, max_bytes=config.max_body_bytes)


async def _always_ready() -> dict[str, bool]:
    return {}


def _install_error_handlers(app: FastAPI) -> None:
    respond = problem_response

    async def refused(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceRefusal)  # noqa: S101 - registered for this type
        return respond(exc.status, exc.error, exc.detail, headers=exc.headers, **exc.extra)

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # noqa: S101
        status = exc.status_code
        error = error_of(status)
        return respond(status, error, str(exc.detail), headers=exc.headers)

    async def unexpected(_request: Request, _exc: Exception) -> Response:
        return respond(500, "internal_error", "the ingest failed; nothing was acknowledged")

    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        ServiceRefusal: refused,
        HTTPException: http_error,
        Exception: unexpected,
    }
    for kind, handler in handlers.items():
        app.add_exception_handler(kind, handler)
