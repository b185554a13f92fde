"""Decoded events flattened into rows of the lake's tables (schemas: ``analytics.columns``).

Every event becomes one row of ``events`` (the envelope, the payload fields the metrics
use, and the whole payload as JSON in ``data``) and, by its type, at most one row of a
typed table: ``verifications``, ``challenges``, ``enrollments``, ``lockouts``,
``risk_detections`` or ``lifecycle``. Time to complete is not stored (the
``verifications`` view computes it, ``analytics/views.py``), and the hive partition
column ``date`` comes from the directory, never from the files. Pure: no I/O. Which
event types fill which table: docs/lake.md#the-tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, Final

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from analytics.columns import (
    DEVICE,
    GEO,
    LIFECYCLE_CEREMONIES,
    SCHEMAS,
    SUCCESS_TYPES,
    VERIFICATION_TYPES,
)
from schemas import Event
from schemas import payloads as p
from schemas.fields import Client

_FIXED_REASONS: Final = {
    "mfa.push.expired": "expired",
    "mfa.push.reported_fraud": "reported_fraud",
    "mfa.push.rejected": "rejected",
}

_LIFECYCLE_FIELDS: Final = (
    "request_id",
    "trust_id",
    "grant_id",
    "requested_by",
    "attempted_by",
    "revoked_by",
    "ticket",
    "approve_before",
    "expires_at",
    "single_use",
    "uses",
    "devices_revoked",
)
"""Payload fields the ``lifecycle`` table keeps as they are (each null where absent)."""

Row = dict[str, Any]
_TIME: Final = pa.timestamp("us", tz="UTC")
_DAY_US: Final = 86_400_000_000
_EPOCH: Final = date(1970, 1, 1).toordinal()


def factor_of(event: Event) -> str | None:
    """The factor an event is about: its ``factor`` field; push and recovery events imply it."""
    factor = getattr(event.data, "factor", None)
    if factor is not None:
        return str(factor)
    if event.type.startswith("mfa.push."):
        return "push"
    if event.type.startswith("mfa.recovery."):
        return "recovery_code"
    return None


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _envelope(event: Event) -> Row:
    return {
        "id": event.id,
        "time": event.time,
        "type": event.type,
        "tenant": event.tenant,
        "subject": event.subject,
        "correlationid": event.correlationid,
    }


def _client(data: p.Payload) -> Row:
    client = getattr(data, "client", None)
    row: Row = {name: None for name, _ in (*GEO, *DEVICE)}
    row.update(asn=None, geo_source=None, device_trusted=None)
    if not isinstance(client, Client):
        return row
    row["ip"] = client.ip
    if (geo := client.geo) is not None:
        row.update(
            country=geo.country,
            city=geo.city,
            latitude=geo.latitude,
            longitude=geo.longitude,
            asn=geo.asn,
            geo_source=geo.source,
        )
    if (device := client.device) is not None:
        row.update(
            device_id=device.id,
            device_kind=device.kind,
            device_os=device.os,
            device_browser=device.browser,
            device_trusted=device.trusted,
        )
    return row


def _field(data: p.Payload, name: str) -> Any:
    return getattr(data, name, None)


def event_row(event: Event) -> Row:
    """The ``events`` row of ``event``."""
    data = event.data
    reason = _field(data, "reason")
    return {
        **_envelope(event),
        "source": event.source,
        "dataschema": event.dataschema,
        "traceparent": event.traceparent,
        "application": _field(data, "application"),
        "policy_tier": _text(_field(data, "policy_tier")),
        "factor": factor_of(event),
        "channel": _text(_field(data, "channel")),
        "reason": reason if reason is not None else _FIXED_REASONS.get(event.type),
        "outcome": _text(_field(data, "outcome")),
        "challenge_id": _field(data, "challenge_id"),
        "enrollment_id": _field(data, "enrollment_id"),
        "attempt": _field(data, "attempt"),
        "elapsed_ms": _field(data, "elapsed_ms"),
        **_client(data),
        "role": _field(data, "role"),
        "reasons": _field(data, "reasons"),
        "risk_level": _text(_field(data, "risk_level")),
        "detection": _text(_field(data, "detection")),
        "severity": _text(_field(data, "severity")),
        "score": _field(data, "score"),
        "data": msgspec.json.encode(data).decode(),
    }


def _typed_row(event: Event, events_row: Row) -> tuple[str, Row] | None:
    """The typed table and row of ``event``, if its type has one."""
    data, kind = event.data, event.type
    base = {k: events_row[k] for k in ("id", "time", "type", "tenant", "subject", "correlationid")}
    activity = {
        "application": events_row["application"],
        "policy_tier": events_row["policy_tier"],
        "factor": events_row["factor"],
    }
    if kind in VERIFICATION_TYPES:
        return "verifications", {
            **base,
            **activity,
            "success": kind in SUCCESS_TYPES,
            "reason": None if kind in SUCCESS_TYPES else events_row["reason"],
            "attempt": events_row["attempt"],
            "elapsed_ms": events_row["elapsed_ms"],
            "challenge_id": events_row["challenge_id"],
            "enrollment_id": events_row["enrollment_id"],
            "country": events_row["country"],
            "device_kind": events_row["device_kind"],
        }
    if kind.startswith("mfa.challenge.") or kind == "mfa.required":
        return "challenges", {
            **base,
            **activity,
            "status": "required" if kind == "mfa.required" else kind.rsplit(".", 1)[1],
            "challenge_id": events_row["challenge_id"],
            "channel": events_row["channel"],
            "provider": _field(data, "provider"),
            "reason": events_row["reason"],
            "destination_country": _field(data, "destination_country"),
            "resend": _field(data, "resend"),
            "cost_micros": _field(data, "cost_micros"),
            "currency": _field(data, "currency"),
            "delivery_status": _text(_field(data, "delivery_status")),
        }
    if kind.startswith("mfa.enrollment."):
        return "enrollments", {
            **base,
            **activity,
            "status": kind.rsplit(".", 1)[1],
            "enrollment_id": events_row["enrollment_id"],
            "channel": events_row["channel"],
            "reason": events_row["reason"],
            "removed_by": _field(data, "removed_by"),
            "imported_from": _field(data, "imported_from"),
            "invited": _field(data, "invited"),
        }
    if kind.startswith(("lockout.", "ip.block.")):
        applied = kind.endswith(".applied")
        return "lockouts", {
            **base,
            "action": "applied" if applied else "cleared",
            "scope": "ip" if kind.startswith("ip.block.") else _text(_field(data, "scope")),
            "reason": events_row["reason"],
            "factor": events_row["factor"],
            "ip": _field(data, "ip"),
            "policy_tier": events_row["policy_tier"],
            "failures": _field(data, "failures"),
            "permanent": _field(data, "permanent"),
            "locked_until": _field(data, "locked_until") or _field(data, "blocked_until"),
            "lockout_count": _field(data, "lockout_count"),
            "distinct_subjects": _field(data, "distinct_subjects"),
        }
    if isinstance(data, p.RiskDetected):
        return "risk_detections", {
            **base,
            "detection": str(data.detection),
            "severity": str(data.severity),
            "score": data.score,
            "summary": data.summary,
            "evidence": msgspec.json.encode(data.evidence).decode(),
            "related_event_ids": list(data.related_event_ids),
            **{name: events_row[name] for name, _ in GEO},
        }
    ceremony = next(
        (c for prefix, c in LIFECYCLE_CEREMONIES.items() if kind.startswith(prefix)), None
    )
    if ceremony is not None:
        return "lifecycle", {
            **base,
            "ceremony": ceremony,
            "status": kind.rsplit(".", 1)[1],
            "application": events_row["application"],
            "policy_tier": events_row["policy_tier"],
            "reason": events_row["reason"],
            "action": _text(_field(data, "action")),
            "stage": _text(_field(data, "stage")),
            **{name: _field(data, name) for name in _LIFECYCLE_FIELDS},
            "approved_by": _field(data, "approved_by") or _field(data, "granted_by"),
        }
    return None


def rows_by_table(events: Iterable[Event]) -> dict[str, list[Row]]:
    """Each table's rows for ``events`` (tables without rows are left out)."""
    rows: dict[str, list[Row]] = {}
    for event in events:
        row = event_row(event)
        rows.setdefault("events", []).append(row)
        typed = _typed_row(event, row)
        if typed is not None:
            rows.setdefault(typed[0], []).append(typed[1])
    return rows


def flatten(events: Iterable[Event]) -> dict[str, pa.Table]:
    """``events`` as one Arrow table per lake table (tables without rows are left out)."""
    return {
        name: pa.Table.from_pylist(rows, schema=SCHEMAS[name])
        for name, rows in rows_by_table(events).items()
    }


def empty(table: str) -> pa.Table:
    """A table with ``table``'s schema and no rows."""
    return SCHEMAS[table].empty_table()


def split_by_date(table: pa.Table) -> list[tuple[date, pa.Table]]:
    """``table``'s rows grouped by the UTC date of ``time`` (the hive partition), by date.

    A micro-batch almost always falls within one day: that case compares the first and
    last day as integers (microseconds // a day), the cheapest test per batch; only a batch
    that crosses midnight casts every row.
    """
    if table.num_rows == 0:
        return []
    times = table.column("time").cast(_TIME)
    bounds = pc.min_max(times)
    first, last = bounds["min"].value // _DAY_US, bounds["max"].value // _DAY_US
    if first == last:
        return [(date.fromordinal(_EPOCH + first), table)]
    days = times.cast(pa.date32())
    unique: Sequence[date] = sorted(days.unique().to_pylist())
    return [(day, table.filter(pc.equal(days, pa.scalar(day, pa.date32())))) for day in unique]
