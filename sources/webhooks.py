"""Webhook receivers of identity providers' logs, as FastAPI routers the ingest app mounts.

- Auth0 Log Streams, custom webhook: a POST of a batch (a JSON array, JSON lines, or one
  JSON object) whose ``Authorization`` header is the token the operator configured in the
  stream; any other header is refused (401) before the body is read.
- Okta Event Hooks: the one-time verification (a GET with ``X-Okta-Verification-Challenge``,
  answered ``{"verification": …}``) and the deliveries (a POST of ``data.events``), both
  carrying the secret header the operator configured; any other is refused (401).

Secrets are compared in constant time (of their SHA-256, so not even the length leaks).
A body over ``max_body_bytes`` is refused (413), counted as it arrives. A delivery is
answered 200 only after the broker acknowledged every event of it; 503 with
``Retry-After`` when it did not, so the provider sends the batch again. The same batch
delivered twice maps to the same event ids (the pipeline drops the second copy).
Records that become no event are kept (``UnmappedKeeper``) and counted in the answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sources.delivery import BrokerUnavailable
from sources.polling import Delivery, Mapper, UnmappedKeeper, map_records
from sources.unmapped import Unmapped

DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024
"""Auth0 sends batches of up to 100 records; Okta up to 50 events."""
RETRY_AFTER_S: Final = 5


def secret_matches(given: str | None, expected: str) -> bool:
    """``given == expected``, in constant time."""
    if given is None:
        return False
    return hmac.compare_digest(
        hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest(),
        hashlib.sha256(expected.encode()).digest(),
    )


@dataclass(frozen=True)
class Receiver:
    """What a receiver needs: the mapping, the delivery, where unmapped records go."""

    mapper: Mapper
    delivery: Delivery
    unmapped: UnmappedKeeper
    clock: Callable[[], datetime]
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    async def body(self, request: Request) -> bytes | None:
        """The request body, or ``None`` when it is (or becomes) larger than allowed."""
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def take(self, records: Sequence[Any]) -> JSONResponse:
        mapped = map_records(records, self.mapper)
        try:
            await self.delivery.deliver(mapped.events)
        except BrokerUnavailable:
            return problem(503, "broker unavailable: nothing was taken, send again",
                           headers={"Retry-After": str(RETRY_AFTER_S)})  # fmt: skip
        self.unmapped.keep(mapped.unmapped, self.clock())
        return JSONResponse(
            {"delivered": len(mapped.events), "unmapped": len(mapped.unmapped)}, status_code=200
        )


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An RFC 9457 problem document."""
    titles = {400: "Bad Request", 401: "Unauthorized", 413: "Content Too Large",
              503: "Service Unavailable"}  # fmt: skip
    return JSONResponse(
        {"type": "about:blank", "title": titles.get(status, "Error"), "status": status,
         "detail": detail},
        status_code=status,
        media_type="application/problem+json",
        headers=headers,
    )  # fmt: skip


def batch_records(body: bytes, provider: str) -> list[Any]:
    """A JSON array, one JSON object, or JSON lines; a line that is not JSON is a record
    the mapping will refuse (kept as unmapped), not a reason to drop the rest."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        value = None
    else:
        return value if isinstance(value, list) else [value]
    records: list[Any] = []
    for line in body.splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except (ValueError, RecursionError) as exc:
            records.append(_NotJson(provider, str(exc)))
    return records


@dataclass(frozen=True)
class _NotJson:
    provider: str
    detail: str


def _refusing_not_json(mapper: Mapper) -> Mapper:
    def mapped(record: Any) -> Any:
        if isinstance(record, _NotJson):
            return Unmapped(record.provider, None, None, "not_json", record.detail[:1024])
        return mapper(record)

    return mapped


def auth0_log_stream_router(*, path: str, token: str, receiver: Receiver) -> APIRouter:
    """``POST path``: an Auth0 Log Streams custom webhook batch."""
    router = APIRouter(tags=["identity providers"])
    take = replace(receiver, mapper=_refusing_not_json(receiver.mapper))

    @router.post(path, summary="Auth0 Log Streams custom webhook batch")
    async def auth0_log_stream(request: Request) -> JSONResponse:
        if not secret_matches(request.headers.get("authorization"), token):
            return problem(401, "the Authorization header is not this stream's token")
        body = await take.body(request)
        if body is None:
            return problem(413, f"the body is over {take.max_body_bytes} bytes")
        return await take.take(batch_records(body, "auth0"))

    return router


OKTA_CHALLENGE: Final = "x-okta-verification-challenge"


def okta_event_hook_router(*, path: str, header: str, secret: str, receiver: Receiver) -> APIRouter:
    """``GET path`` (the one-time verification) and ``POST path`` (event deliveries) of an
    Okta Event Hook whose authentication field is ``header: secret``."""
    router = APIRouter(tags=["identity providers"])

    def authentic(request: Request) -> bool:
        return secret_matches(request.headers.get(header), secret)

    @router.get(path, summary="Okta Event Hook one-time verification")
    async def okta_verification(request: Request) -> JSONResponse:
        if not authentic(request):
            return problem(401, f"the {header} header is not this hook's secret")
        challenge = request.headers.get(OKTA_CHALLENGE)
        if not challenge or len(challenge) > 256:
            return problem(400, f"no {OKTA_CHALLENGE} header")
        return JSONResponse({"verification": challenge})

    @router.post(path, summary="Okta Event Hook delivery")
    async def okta_events(request: Request) -> JSONResponse:
        if not authentic(request):
            return problem(401, f"the {header} header is not this hook's secret")
        body = await receiver.body(request)
        if body is None:
            return problem(413, f"the body is over {receiver.max_body_bytes} bytes")
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            return problem(400, "the body is not JSON")
        data = value.get("data") if isinstance(value, dict) else None
        events = data.get("events") if isinstance(data, dict) else None
        if not isinstance(events, list):
            return problem(400, "no data.events array (an Okta event hook delivery)")
        return await receiver.take(events)

    return router
