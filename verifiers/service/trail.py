"""The event trail of refused requests: every 4xx the service answers outside a ceremony
becomes a ``service.request.refused`` event in the outbox, next to the ceremonies' own.

A ceremony records its refusals itself; what it never sees is recorded here, naming the
status, the ``error``, the operation (method and route template, never the raw path), the
service client and the caller's IP. A refusal without a valid credential is filed under
:data:`TENANT` / :data:`UNKNOWN_SUBJECT` and rate-limited per caller IP
(:data:`UNAUTHENTICATED_BURST`, :data:`UNAUTHENTICATED_PER_S`); 429s are not recorded.
Recording never changes the answer: a failure to record is logged, and the caller still
gets its 4xx. Whose event it is, in full: docs/mfa-service.md#the-trail-of-refused-requests.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Match

from schemas import Event, new_event
from schemas import payloads as p
from schemas.envelope import ATTRIBUTE_PATTERNS
from schemas.fields import PLATFORM_TENANT, check_ip
from verifiers.service.clients import ServiceClient, ServiceClients
from verifiers.service.errors import Scope
from verifiers.service.ratelimit import CALLER_IP, TokenBuckets, ip_bucket
from verifiers.store import VerifierStore

log = logging.getLogger(__name__)

TENANT: Final = PLATFORM_TENANT
"""Tenant of refusals no valid credential vouched for (as the platform's IP blocks)."""
UNKNOWN_SUBJECT: Final = "unknown"
UNKNOWN_SUBJECT_ERROR: Final = "unknown_subject"
UNAUTHENTICATED_PER_S: Final = 1.0
UNAUTHENTICATED_BURST: Final = 20
NOT_RECORDED: Final = frozenset({429})

_SUBJECT = re.compile(ATTRIBUTE_PATTERNS["subject"])
_REASON = re.compile(r"[a-z][a-z0-9_]{0,63}")


class RefusalTrail:
    """Writes ``service.request.refused`` events (see the module docstring)."""

    def __init__(
        self,
        store: VerifierStore,
        clients: ServiceClients,
        clock: Callable[[], datetime],
        *,
        routes: Callable[[], Iterable[BaseRoute]] = tuple,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.clients, self.clock = store, clients, clock
        self.routes, self.monotonic = routes, monotonic
        self.strangers = TokenBuckets(
            rate=UNAUTHENTICATED_PER_S, burst=UNAUTHENTICATED_BURST, max_keys=10_000
        )

    async def record(self, scope: Scope, status: int, error: str) -> None:
        """Record one refusal (never raises)."""
        if not 400 <= status < 500 or status in NOT_RECORDED:
            return
        try:
            client = await self._client(scope)
            ip = _caller_ip(scope)
            if client is None and self.strangers.take(ip_bucket(ip or ""), self.monotonic()):
                return  # a stranger's junk beyond its budget
            event = self._event(scope, status, error, client, ip)
            await run_in_threadpool(self._write, event)
        except Exception:  # recording must never turn a 4xx into a 500
            log.exception("could not record a refused request (%s %s)", status, error)

    async def _client(self, scope: Scope) -> ServiceClient | None:
        credential = _bearer(scope)
        if credential is None:
            return None
        client = self.clients.cached(credential)
        if client is None:
            client = await run_in_threadpool(self.clients.authenticate, credential)
        return client

    def _event(
        self, scope: Scope, status: int, error: str, client: ServiceClient | None, ip: str | None
    ) -> Event:
        template, params = self._route(scope)
        subject = params.get("subject") if client is not None else None
        if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
            subject = None
        named = None
        if error == UNKNOWN_SUBJECT_ERROR:  # no such person: no event of its own
            subject, named = None, subject
        refused = p.ServiceRequestRefused(
            status=status,
            error=error if _REASON.fullmatch(error) else "refused",
            operation=f"{scope.get('method', '?')} {template}"[:256],
            service_client=client.client_id if client is not None else None,
            named_subject=named,
            caller_ip=ip,
        )
        return new_event(
            refused,
            source=self.store.source,
            tenant=client.tenant if client is not None else TENANT,
            subject=subject or UNKNOWN_SUBJECT,
            correlationid=str(uuid.uuid4()),
            now=self.clock(),
        )

    def _route(self, scope: Scope) -> tuple[str, dict[str, Any]]:
        """The route template and path parameters: the router's, or matched here for a
        request refused before routing (a body too large or not JSON)."""
        route = scope.get("route")
        if route is not None and hasattr(route, "path"):
            return str(route.path), dict(scope.get("path_params") or {})
        for candidate in self.routes():
            match, child = candidate.matches(scope)
            if match is not Match.NONE and hasattr(candidate, "path"):
                return str(candidate.path), dict(child.get("path_params") or {})
        return "(no route)", {}

    def _write(self, event: Event) -> None:
        with self.store.engine.begin() as connection:
            self.store.outbox.add(connection, [event])


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            scheme, _, credential = value.decode("latin-1").partition(" ")
            return credential.strip() or None if scheme.lower() == "bearer" else None
    return None


def _caller_ip(scope: Scope) -> str | None:
    ip = (scope.get("state") or {}).get(CALLER_IP)
    if ip is None:
        peer = scope.get("client")
        ip = peer[0] if peer else None
    if not isinstance(ip, str) or len(ip) > 45:
        return None
    try:
        check_ip("caller_ip", ip)
    except ValueError:
        return None  # "unknown" or a unix socket: no address to record
    return ip
