"""What every adapter does the same way once it has read a provider's record: the event
ids derived from the record, the client context, and the last step that turns a payload
into one of our events or, when the contract refuses it, an :class:`Unmapped` record.

A provider's record may become more than one event (an Entra ID sign-in with its MFA step
and its risk verdict): each event then has a *role* (``sign_in``, ``mfa``, ``risk``), and
its id derives from the source, the record id and the role, so every event of a record
polled or delivered twice is the same event again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from schemas import Event, decode, encode, new_event, uuid7
from schemas import payloads as p
from schemas.errors import SchemaError
from schemas.fields import Channel, Client, Factor, Geo
from sources.reading import country_code, degrees, ip_address, name, text
from sources.unmapped import Unmapped

UNKNOWN_SUBJECT = "unknown"
"""The subject of a failed sign-in whose name matched no account (the name typed is kept
as ``attempted_name``, personal data)."""

MappedRecord = Event | Unmapped
"""What one record (or one part of a record) becomes."""

FactorAndChannel = tuple[Factor, Channel | None]
"""A provider's name for an authenticator, as our factor and (when it says) channel."""


@dataclass(frozen=True)
class IdpSource:
    """An adapter's configuration: whose logs these are and where they come from."""

    tenant: str
    """Our tenant id the events are filed under (the provider never decides it)."""
    source: str
    """The events' ``source``, e.g. ``https://acme.okta.com/`` (ids derive from it)."""


@dataclass(frozen=True)
class RecordOrigin:
    """Where an event comes from: which provider's record, and which part of it."""

    provider: str
    record_id: str
    record_type: str
    role: str | None = None
    """Which of a record's events this is; ``None`` for a record that is one event."""

    def unmapped(self, reason: str, detail: str) -> Unmapped:
        return Unmapped(self.provider, self.record_id, self.record_type, reason, detail)


def event_id(source: str, record_id: str, time: datetime, role: str | None = None) -> str:
    """The event id of a record (or of one role of it): a UUIDv7 at ``time`` whose random
    bits are a hash of the source, the record id and the role, so a record polled or
    delivered again has the same id; a record of one event has no role."""
    key = f"{source}|{record_id}" if role is None else f"{source}|{record_id}|{role}"
    digest = hashlib.sha256(key.encode()).digest()
    return uuid7(time, random_bits=int.from_bytes(digest[:10], "big") >> 6)


def content_id(fields: Mapping[str, Any]) -> str | None:
    """An id for a record that has none (Keycloak before it gave events ids): a hash of
    what the record says, so the same record read twice has the same id; ``None`` for
    something that is not JSON."""
    try:
        canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:56]


def to_event(
    origin: RecordOrigin,
    config: IdpSource,
    make: Callable[[], p.Payload],
    *,
    subject: str,
    correlation: str,
    time: datetime,
) -> MappedRecord:
    """The payload ``make`` builds, as one of our events that has been through the codec;
    :class:`Unmapped` (``invalid_record``) when the contract refuses what it says."""
    try:
        event = new_event(
            make(),
            source=config.source,
            tenant=config.tenant,
            subject=subject,
            correlationid=correlation,
            now=time,
            event_id=event_id(config.source, origin.record_id, time, origin.role),
        )
        return decode(encode(event))
    except (SchemaError, ValueError, TypeError, OverflowError, msgspec.MsgspecError) as exc:
        return origin.unmapped("invalid_record", str(exc)[:1024])


def client(ip: object, user_agent: object, geo: Geo | None) -> Client | None:
    """The request context as far as the record gives it; ``None`` when it gives nothing."""
    address = ip_address(ip)
    agent = text(user_agent, 1024)
    if address is None and agent is None and geo is None:
        return None
    return Client(ip=address, user_agent=agent, geo=geo)


def geo(
    provider: str,
    *,
    country: object = None,
    region: object = None,
    city: object = None,
    latitude: object = None,
    longitude: object = None,
) -> Geo | None:
    """Where the provider says a request came from; ``None`` when it says nothing usable.
    ``source`` names the provider, whose geolocation it is."""
    place = Geo(
        country=country_code(country),
        region=name(region),
        city=name(city),
        latitude=degrees(latitude, 90),
        longitude=degrees(longitude, 180),
        source=provider,
    )
    said = (place.country, place.region, place.city, place.latitude, place.longitude)
    return place if said != (None,) * 5 else None


def not_mapped(
    origin: RecordOrigin,
    contract_gaps: Mapping[str, str],
    no_contract_type: Mapping[str, str],
    why: str,
) -> Unmapped:
    """A record of a type that becomes no event: ``contract_gap`` or ``no_contract_type``
    (MFA-related, with the reason the module's table gives), else ``not_mfa`` (``why``)."""
    kind = origin.record_type
    if kind in contract_gaps:
        return origin.unmapped("contract_gap", contract_gaps[kind])
    if kind in no_contract_type:
        return origin.unmapped("no_contract_type", no_contract_type[kind])
    return origin.unmapped("not_mfa", why)


def not_mapped_rows(
    label: str, contract_gaps: Mapping[str, str], no_contract_type: Mapping[str, str]
) -> list[str]:
    """The reference's table of the MFA-related types a provider maps to nothing, and why."""
    return [
        f"| {label} | reason | why |",
        "|---|---|---|",
        *(f"| `{kind}` | `contract_gap` | {why} |" for kind, why in sorted(contract_gaps.items())),
        *(
            f"| `{kind}` | `no_contract_type` | {why} |"
            for kind, why in sorted(no_contract_type.items())
        ),
    ]
