"""The lockout API on the worker's web server (Faust), routed to the worker owning the key.

* ``GET /lockouts/{tenant}/{subject}[?factor=totp][&at=…]``: the subject's lock, else
  that factor's (``verifiers.lockout.lockout_status`` at ``at``);
* ``GET /lockouts/ip/{ip}[?at=…][&tenant=…]``: the IP's block (``streams.folds.ipblock``);
  registered before the subject route, so the tenant ``ip`` is reserved;
* ``GET /lockouts/_owners``: which worker owns which partitions of each table.

``at`` defaults to the wall clock, read here at the edge. With ``stream.api_token`` set,
every request needs ``Authorization: Bearer <token>``; without one the worker must be
bound to a loopback address. The routes and answers in full: docs/lockout.md#the-lockout-api.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from faust.exceptions import SameNode
from faust.web import Request, Response, View

from schemas.fields import TENANT_PATTERN, Factor
from streams.engine import KeyedRunner
from streams.folds.ipblock import IpBlockState, ip_block_status
from streams.folds.thresholds import parse_ip
from streams.topology import IP_BLOCK, LOCKOUT
from verifiers.lockout import LockoutState, lockout_status

PATH = "/lockouts/{tenant}/{subject:.+}"
"""The route (a subject may contain ``/``: it is the rest of the path)."""
IP_PATH = "/lockouts/ip/{ip:[0-9A-Fa-f.:]+}"
"""The per-IP route (registered first: see the module docstring)."""


def lockout_answer(
    state: Mapping[str, Any] | None,
    *,
    tenant: str,
    subject: str,
    at: datetime,
    factor: Factor | None = None,
) -> dict[str, Any]:
    """The API's JSON answer for one subject's table value (``None``: never seen)."""
    status = lockout_status(
        LockoutState() if state is None else LockoutState.from_dict(state), now=at, factor=factor
    )
    return {
        "tenant": tenant,
        "subject": subject,
        "factor": None if factor is None else factor.value,
        "at": at.isoformat(),
        "locked": status.locked,
        "until": None if status.until is None else status.until.isoformat(),
        "permanent": status.permanent,
        "scope": None if status.scope is None else status.scope.value,
        "reason": status.reason,
    }


AT_RANGE = timedelta(days=366 * 100)
"""How far from the wall clock an ``at`` may lie (further: a 400, not an overflow)."""


def parse_query(
    query: Mapping[str, str], *, now: datetime | None = None
) -> tuple[Factor | None, datetime | None]:
    """``factor`` and ``at`` from the query string; ValueError says what is wrong.
    ``now``: the wall clock ``at`` must lie within :data:`AT_RANGE` of (default: none)."""
    factor = query.get("factor")
    if factor is not None and factor not in Factor._value2member_map_:
        expected = ", ".join(f.value for f in Factor)
        raise ValueError(f"factor: expected one of {expected}, found {factor!r}")
    at_text = query.get("at")
    at = None
    if at_text is not None:
        try:
            at = datetime.fromisoformat(at_text)
        except ValueError:
            at = None
        if at is None or at.tzinfo is None:
            raise ValueError(f"at: expected an RFC 3339 time with offset, found {at_text!r}")
        try:
            at = at.astimezone(UTC)
            far = now is not None and abs(at - now) > AT_RANGE
        except OverflowError:
            far = True
        if far:
            raise ValueError(f"at: more than {AT_RANGE.days // 366} years from now: {at_text!r}")
    return (None if factor is None else Factor(factor)), at


def parse_tenant(text: str | None) -> str | None:
    """The ``tenant`` of the query string, if given; ValueError says what is wrong."""
    if text is not None and not (len(text) <= 64 and re.fullmatch(TENANT_PATTERN, text)):
        raise ValueError(f"tenant: expected a tenant id ({TENANT_PATTERN}), found {text[:80]!r}")
    return text


class ApiView(View):
    """A view of this API: refuses a request without the bearer token, when one is set."""

    token: bytes | None = None

    def refusal(self, request: Request) -> Response | None:
        """A 401 for a request without the token (``None``: go on)."""
        if self.token is None:
            return None
        given = request.headers.get("Authorization", "")
        scheme, _, credential = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            credential.strip().encode(), self.token
        ):
            return None
        response: Response = self.error(401, "a bearer token is required (Authorization)")
        response.headers["WWW-Authenticate"] = 'Bearer realm="factorstream lockout API"'
        return response


def fold_state_of(stored: Mapping[str, Any] | None, fold: str) -> Mapping[str, Any] | None:
    """One fold's state in a stage table's stored value (``streams/stages.py``)."""
    if stored is None:
        return None
    state: Mapping[str, Any] | None = stored.get("states", {}).get(fold)
    return state


async def _routed(view: View, table: str, key: bytes, request: Request) -> Response | None:
    """The owning worker's answer, proxied; ``None`` when this worker owns ``key``; a 503
    while no owner is known (starting, or rebalancing: no partition metadata yet)."""
    try:
        routed: Response = await view.app.router.route_req(table, key, view.web, request)
        return routed
    except SameNode:
        return None
    except (TypeError, KeyError, LookupError, ConnectionError) as error:
        reason = f"the worker owning this key is not known yet ({type(error).__name__}); retry"
        return view.error(503, reason)


def register_lockout_api(
    app: faust.App, subjects: KeyedRunner, *, token: str | None = None
) -> None:
    """Mount ``GET /lockouts/{tenant}/{subject}`` over the subjects stage (its live state,
    else its table); ``token``: the bearer token every request must carry."""
    table = subjects.table

    class LockoutView(ApiView):
        async def get(self, request: Request, tenant: str, subject: str) -> Response:
            refused = self.refusal(request)
            if refused is not None:
                return refused
            key = f"{tenant}/{subject}".encode()  # the table's key: the partitionkey bytes
            now = datetime.now(UTC)  # the wall clock, read here at the edge
            try:
                factor, at = parse_query(request.query, now=now)
            except ValueError as error:
                return self.error(400, str(error))
            routed = await _routed(self, table.name, key, request)
            if routed is not None:
                return routed
            answer = lockout_answer(
                fold_state_of(subjects.stored(key), LOCKOUT),
                tenant=tenant,
                subject=subject,
                at=at or now,
                factor=factor,
            )
            return self.json(answer)

    LockoutView.token = None if token is None else token.encode()

    app.page(PATH, name="lockouts")(LockoutView)


# -- per-IP throttling -------------------------------------------------------------------


def canonical_ip(text: str) -> str:
    """The ``ips`` table's key text of an address; ValueError says what is wrong."""
    try:
        return str(parse_ip(text))
    except ValueError:
        raise ValueError(f"ip: expected an IPv4 or IPv6 address, found {text!r}") from None


def ip_block_answer(
    state: Mapping[str, Any] | None, *, ip: str, at: datetime, tenant: str | None = None
) -> dict[str, Any]:
    """The API's JSON answer for one IP's table value (``None``: never seen failing), for a
    sign-in of ``tenant`` (None: the platform's blocks alone; a block an identity provider
    reported holds for its tenant only)."""
    status = ip_block_status(
        IpBlockState() if state is None else IpBlockState.from_dict(state), now=at, tenant=tenant
    )
    return {
        "ip": ip,
        "tenant": tenant,
        "at": at.isoformat(),
        "blocked": status.blocked,
        "until": None if status.until is None else status.until.isoformat(),
        "since": None if status.since is None else status.since.isoformat(),
        "reason": status.reason,
        "failures": status.failures,
        "distinct_subjects": status.distinct_subjects,
    }


def register_ip_block_api(app: faust.App, ips: KeyedRunner, *, token: str | None = None) -> None:
    """Mount ``GET /lockouts/ip/{ip}`` over the IPs stage; call it before
    :func:`register_lockout_api` (routes match in the order they were added)."""
    table = ips.table

    class IpBlockView(ApiView):
        async def get(self, request: Request, ip: str) -> Response:
            refused = self.refusal(request)
            if refused is not None:
                return refused
            now = datetime.now(UTC)  # the wall clock, read here at the edge
            try:
                key = canonical_ip(ip)
                query = {"at": request.query["at"]} if "at" in request.query else {}
                _, at = parse_query(query, now=now)
                tenant = parse_tenant(request.query.get("tenant"))
            except ValueError as error:
                return self.error(400, str(error))
            routed = await _routed(self, table.name, key.encode(), request)
            if routed is not None:
                return routed
            state = fold_state_of(ips.stored(key.encode()), IP_BLOCK)
            return self.json(ip_block_answer(state, ip=key, at=at or now, tenant=tenant))

    IpBlockView.token = None if token is None else token.encode()

    app.page(IP_PATH, name="ip_blocks")(IpBlockView)


OWNERS_PATH = "/lockouts/_owners"
"""Which worker owns which table partitions (registered before the subject route)."""


def register_owners_api(app: faust.App, *, token: str | None = None) -> None:
    """Mount ``GET /lockouts/_owners``: the table routing this worker knows."""

    class OwnersView(ApiView):
        async def get(self, request: Request) -> Response:
            refused = self.refusal(request)
            if refused is not None:
                return refused
            return self.json(self.app.router.tables_metadata())

    OwnersView.token = None if token is None else token.encode()
    app.page(OWNERS_PATH, name="owners")(OwnersView)
