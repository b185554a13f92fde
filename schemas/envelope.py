"""The CloudEvents 1.0 envelope with factorstream's extension attributes.

``partitionkey`` is always ``tenant/subject``: it is the Kafka key, so every fold for
one person has a single writer. ``id`` is a UUIDv7, so ids sort by creation time.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from typing import Annotated, Final, Generic, Literal, TypeVar
from uuid import UUID

import msgspec

from schemas.fields import TENANT_PATTERN
from schemas.payloads import Payload, UtcTime
from schemas.registry import BY_PAYLOAD

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"

D = TypeVar("D")

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
TOKEN_PATTERN = r"^[\x21-\x7e]+$"  # noqa: S105 - printable ASCII, not a secret

ATTRIBUTE_PATTERNS = {
    "id": UUID_PATTERN,
    "source": TOKEN_PATTERN,
    "subject": TOKEN_PATTERN,
    "tenant": TENANT_PATTERN,
    "correlationid": TOKEN_PATTERN,
}
"""Patterns of the envelope's string attributes. They are published in the JSON Schema
and enforced by the codec in one combined match per event (see ``codec``), which is
several times cheaper than one regex constraint per attribute."""


def check_tenant(tenant: str) -> str:
    """``tenant`` if an event may carry it as its tenant; else a ValueError saying what one
    is (for a tenant given by a person, before anything is written for it)."""
    if len(tenant) > 64 or not re.fullmatch(TENANT_PATTERN, tenant):
        raise ValueError(
            f"a tenant is 1–64 letters, digits, '.', '_' or '-' (the event contract's "
            f"tenant), found {tenant!r}"
        )
    return tenant


def _attribute(name: str, description: str, *, min_length: int, max_length: int) -> msgspec.Meta:
    return msgspec.Meta(
        extra_json_schema={"pattern": ATTRIBUTE_PATTERNS[name]},
        description=description,
        min_length=min_length,
        max_length=max_length,
    )


EventId = Annotated[
    str,
    _attribute("id", "Lower-case UUID; factorstream emits UUIDv7.", min_length=36, max_length=36),
]
Source = Annotated[
    str,
    _attribute("source", "URI-reference of the emitting service.", min_length=1, max_length=256),
]
EventTypeName = Annotated[str, msgspec.Meta(min_length=3, max_length=64)]
Subject = Annotated[
    str,
    _attribute(
        "subject",
        "Pseudonymous subject (user) id, never an e-mail or a name.",
        min_length=1,
        max_length=128,
    ),
]
Tenant = Annotated[str, _attribute("tenant", "Tenant id.", min_length=1, max_length=64)]
CorrelationId = Annotated[
    str,
    _attribute(
        "correlationid", "One login or enrollment transaction.", min_length=1, max_length=128
    ),
]
Traceparent = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
        description="W3C trace context.",
    ),
]
KeyId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9a-f]{64}$",
        description="Control events: SHA-256 of the signing key's raw Ed25519 public key, hex.",
    ),
]
Signature = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Za-z0-9+/]{86}==$",
        description="Control events: Ed25519 signature of the event (base64), see "
        "schemas/README.md.",
    ),
]


EXTENSION_NAME_PATTERN: Final = r"^[a-z0-9]{1,20}$"
"""An extension attribute's name: CloudEvents 1.0 §3.1.1 (lower-case ASCII letters and
digits; 20 characters, which the spec recommends, is the limit here)."""
MAX_EXTENSIONS: Final = 16
"""At most this many extension attributes the contract does not know are kept per event."""
MAX_EXTENSION_LENGTH: Final = 256
"""The longest string value of such an attribute (characters)."""
EXTENSION_INT_RANGE: Final = (-(2**31), 2**31 - 1)
"""CloudEvents' Integer type: 32-bit signed."""

ExtensionName = Annotated[str, msgspec.Meta(pattern=EXTENSION_NAME_PATTERN)]
ExtensionValue = (
    Annotated[str, msgspec.Meta(max_length=MAX_EXTENSION_LENGTH)]
    | Annotated[int, msgspec.Meta(ge=EXTENSION_INT_RANGE[0], le=EXTENSION_INT_RANGE[1])]
    | bool
)
Extensions = Annotated[
    dict[ExtensionName, ExtensionValue],
    msgspec.Meta(
        min_length=1,
        max_length=MAX_EXTENSIONS,
        description="Extension attributes the contract does not know, kept as sent (see "
        "schemas/README.md). On the wire they are top-level members of the event.",
    ),
]


class CloudEvent(
    msgspec.Struct,
    Generic[D],
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    gc=False,
):
    """A CloudEvents 1.0 event in structured mode; ``data`` is the typed payload."""

    specversion: Literal["1.0"]
    id: EventId
    source: Source
    type: EventTypeName
    time: UtcTime
    subject: Subject
    datacontenttype: Literal["application/json"]
    dataschema: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    tenant: Tenant
    partitionkey: Annotated[str, msgspec.Meta(min_length=3, max_length=193)]
    correlationid: CorrelationId
    data: D
    traceparent: Traceparent | None = None
    signedby: KeyId | None = None
    """Control events (:mod:`schemas.signing`): id of the key that signed the event."""
    signature: Signature | None = None
    """Control events: Ed25519 signature (base64) of the event, see :mod:`schemas.signing`."""
    extensions: Extensions | None = None
    """Extension attributes the contract does not know, by name (``None``: none). On the
    wire (:mod:`schemas.codec`) each is a top-level member like any attribute; in the
    canonical forms made from this struct (the ledger's entries, the signed bytes of
    control events) they are the one member ``extensions``, an object."""


Event = CloudEvent[Payload]


def uuid7(now: datetime, *, random_bits: int | None = None) -> str:
    """A UUIDv7 (RFC 9562 §5.7) for ``now``: 48-bit Unix milliseconds, then randomness."""
    millis = int(now.timestamp() * 1000)
    rand = secrets.randbits(74) if random_bits is None else random_bits & ((1 << 74) - 1)
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= (rand >> 62) << 64  # 12 bits rand_a
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # 62 bits rand_b
    return str(UUID(int=value))


def new_event(
    payload: Payload,
    *,
    source: str,
    tenant: str,
    subject: str,
    correlationid: str,
    now: datetime,
    traceparent: str | None = None,
    event_id: str | None = None,
) -> Event:
    """Wrap ``payload`` in an envelope; the type and dataschema come from the registry."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    kind = BY_PAYLOAD[type(payload)]
    return CloudEvent(
        specversion="1.0",
        id=event_id or uuid7(now),
        source=source,
        type=kind.name,
        time=now.astimezone(UTC),
        subject=subject,
        datacontenttype="application/json",
        dataschema=kind.dataschema,
        tenant=tenant,
        partitionkey=f"{tenant}/{subject}",
        correlationid=correlationid,
        traceparent=traceparent,
        data=payload,
    )


def derive_event(
    trigger: Event,
    payload: Payload,
    *,
    source: str,
    what: str,
    subject: str | None = None,
    tenant: str | None = None,
) -> Event:
    """An event the pipeline derives from ``trigger``, with a deterministic id.

    The id depends only on the trigger's id, the payload type and ``what`` (a short
    description of what was derived), so replaying the log derives identical events and
    consumers can drop duplicates. Time, correlation and trace come from the trigger;
    ``subject``/``tenant`` override the trigger's (e.g. events keyed by IP).
    """
    digest = hashlib.sha256(f"{trigger.id}|{type(payload).__name__}|{what}".encode()).digest()
    return new_event(
        payload,
        source=source,
        tenant=tenant or trigger.tenant,
        subject=subject or trigger.subject,
        correlationid=trigger.correlationid,
        now=trigger.time,
        traceparent=trigger.traceparent,
        event_id=uuid7(trigger.time, random_bits=int.from_bytes(digest[:10], "big") >> 6),
    )
