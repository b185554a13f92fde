"""Vocabulary shared by the payloads: factors, channels, tiers, client context.

Fields that hold personal data are annotated with :data:`PERSONAL` metadata. It shows
up in the JSON Schema as ``"x-personal-data": true`` and is what the ledger uses to
decide which values to encrypt per subject (see :func:`schemas.registry.personal_paths`).
"""

from __future__ import annotations

import socket
from enum import StrEnum
from typing import Annotated

import msgspec

PERSONAL_MARK = "x-personal-data"


def personal(
    description: str,
    *,
    max_length: int | None = None,
    ge: float | None = None,
    le: float | None = None,
) -> msgspec.Meta:
    """Metadata for a personal-data field (encrypted per subject in the ledger)."""
    mark = {PERSONAL_MARK: True}
    if max_length is not None:
        return msgspec.Meta(description=description, extra_json_schema=mark, max_length=max_length)
    return msgspec.Meta(description=description, extra_json_schema=mark, ge=ge, le=le)


Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
TenantId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=TENANT_PATTERN)]
"""A tenant's id inside a payload (the envelope's ``tenant`` attribute has the same form)."""
PLATFORM_TENANT = "system"
"""The tenant of the platform's own events (IP blocks, ledger checkpoints, refusals no
credential vouched for): no customer's."""
"""An opaque identifier, e.g. of a challenge or an enrollment."""

Text = Annotated[str, msgspec.Meta(max_length=1024)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
COUNTRY_PATTERN = r"^[A-Z]{2}$"
CountryCode = Annotated[
    str,
    msgspec.Meta(
        min_length=2,
        max_length=2,
        extra_json_schema={"pattern": COUNTRY_PATTERN},
        description="ISO 3166-1 alpha-2 country code (checked by check_country).",
    ),
]
Count = Annotated[int, msgspec.Meta(ge=0)]
Milliseconds = Annotated[int, msgspec.Meta(ge=0, description="A duration in milliseconds.")]


class Record(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    gc=False,
):
    """Base of every struct in the contract: immutable, strict, defaults left off the wire.

    ``gc=False``: contract values hold only scalars, strings and other records, so they
    can never form reference cycles; untracked by the GC they decode markedly faster.
    """


class Factor(StrEnum):
    """An MFA factor (authenticator type)."""

    TOTP = "totp"
    WEBAUTHN = "webauthn"
    SMS = "sms"
    VOICE = "voice"
    EMAIL = "email"
    PUSH = "push"
    RECOVERY_CODE = "recovery_code"
    UNKNOWN = "unknown"
    """The source did not name the factor (e.g. an identity provider's log record)."""


class Channel(StrEnum):
    """How a challenge reaches the person."""

    SMS = "sms"
    VOICE = "voice"
    EMAIL = "email"
    PUSH = "push"
    AUTHENTICATOR_APP = "authenticator_app"
    SECURITY_KEY = "security_key"
    PLATFORM_AUTHENTICATOR = "platform_authenticator"
    PAPER = "paper"


class PolicyTier(StrEnum):
    """The mission's policy tiers (see verifiers/policy.py)."""

    ADMIN = "admin"
    BUSINESS = "business"
    CUSTOMER = "customer"


class RiskLevel(StrEnum):
    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class LockoutScope(StrEnum):
    """What a lockout applies to: the whole subject, one factor, or one IP address."""

    SUBJECT = "subject"
    FACTOR = "factor"
    IP = "ip"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


def check_ip(field: str, value: str | None) -> None:
    """Refuse a value that is not an IP address; the message names the field."""
    if value is None:
        return
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in value else socket.AF_INET, value)
    except (OSError, ValueError):
        raise ValueError(f"Invalid `{field}`: expected an IPv4 or IPv6 address") from None


def check_country(field: str, value: str | None) -> None:
    """Refuse a value that is not two upper-case letters (the JSON Schema pattern).

    Checked in Python rather than by a regex constraint: it runs on every sign-in event.
    """
    if value is not None and not (value.isascii() and value.isalpha() and value.isupper()):
        raise ValueError(f"Invalid `{field}`: expected an ISO 3166-1 alpha-2 code like 'DE'")


class Geo(Record, frozen=True, kw_only=True):
    """Where a request came from, as far as it is known."""

    country: CountryCode | None = None
    region: Annotated[str, personal("Region or state name.", max_length=128)] | None = None
    city: Annotated[str, personal("City name.", max_length=128)] | None = None
    latitude: Annotated[float, personal("Latitude in degrees.", ge=-90, le=90)] | None = None
    longitude: Annotated[float, personal("Longitude in degrees.", ge=-180, le=180)] | None = None
    asn: Annotated[int, msgspec.Meta(ge=0, description="Autonomous system number.")] | None = None
    source: (
        Annotated[
            str,
            msgspec.Meta(
                description="Where the location came from: client, mmdb, geoip, centroid."
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        check_country("country", self.country)


class Device(Record, frozen=True, kw_only=True):
    """The device used, as the emitting service saw it."""

    id: (
        Annotated[str, personal("Stable pseudonymous device identifier.", max_length=128)] | None
    ) = None
    kind: (
        Annotated[str, msgspec.Meta(max_length=32, description="desktop, mobile, tablet, …")] | None
    ) = None
    os: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    browser: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    trusted: bool | None = None


class Client(Record, frozen=True, kw_only=True):
    """Request context: IP, user agent, device and location."""

    ip: Annotated[str, personal("Client IP address (v4 or v6).", max_length=45)] | None = None
    user_agent: Annotated[str, personal("HTTP User-Agent.", max_length=1024)] | None = None
    device: Device | None = None
    geo: Geo | None = None

    def __post_init__(self) -> None:
        check_ip("ip", self.ip)
