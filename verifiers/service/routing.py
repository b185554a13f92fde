"""What every route module of the API shares: the caller dependency and the ceremony glue
that :func:`verifiers.service.api.create_app` builds once (a :class:`RouteKit`), and the
path parameters. Each ceremony family registers its routes from a module of its own
(``webauthn_routes``, ``otp_routes``, ``push_routes``) with ``register(app, kit)``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Path

from schemas.envelope import ATTRIBUTE_PATTERNS
from schemas.fields import Factor
from verifiers.factors import SubjectFactors
from verifiers.service.clients import ServiceClient
from verifiers.service.models import AssertionOut, SignInContext
from verifiers.store import Request as CeremonyRequest
from verifiers.store import Verdict

if TYPE_CHECKING:
    from verifiers.service.api import ServiceParts

SubjectPath = Annotated[
    str, Path(min_length=1, max_length=128, pattern=ATTRIBUTE_PATTERNS["subject"])
]
IdPath = Annotated[str, Path(min_length=1, max_length=128)]


@dataclass(frozen=True)
class RouteKit:
    """The glue each route uses (see :mod:`verifiers.service.api` for what each does)."""

    parts: ServiceParts
    caller: Callable[..., Awaitable[ServiceClient]]
    """The FastAPI dependency that authenticates the calling client (401 otherwise)."""
    ceremony: Callable[[ServiceClient, str, SignInContext | None], CeremonyRequest]
    known: Callable[[ServiceClient, str], SubjectFactors]
    """The subject's factors; 404 ``unknown_subject`` when it has none in the tenant."""
    allowed: Callable[[CeremonyRequest, Factor], None]
    """403 ``factor_not_allowed`` when the request's tier does not accept the factor."""
    assertion: Callable[[ServiceClient, CeremonyRequest, tuple[str, ...], str], AssertionOut]
    accepted: Callable[[Verdict], None]
    """Nothing for an accepted verdict; its refusal as a 4xx otherwise."""
