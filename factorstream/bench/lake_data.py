"""Synthetic lake rows for ``factorstream bench analytics``, generated column-wise (numpy).

Millions of events as Arrow columns, never as Python objects: a realistic mix of types,
four consecutive events per login transaction (same subject, correlation id, challenge),
5 tenants, 6 applications, 200 000 subjects over 30 days, 24 cities. The typed tables are
derived from the ``events`` rows exactly as ``analytics.tables`` would.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analytics.columns import SCHEMAS, SUCCESS_TYPES, VERIFICATION_TYPES

START: Final = datetime(2026, 10, 1, tzinfo=UTC)
TYPES: Final[Mapping[str, float]] = {
    "auth.login.attempted": 0.18,
    "mfa.required": 0.10,
    "mfa.challenge.issued": 0.12,
    "mfa.challenge.sent": 0.05,
    "mfa.challenge.delivery_failed": 0.005,
    "mfa.verification.succeeded": 0.20,
    "mfa.verification.failed": 0.05,
    "mfa.push.approved": 0.08,
    "mfa.push.rejected": 0.01,
    "mfa.push.expired": 0.005,
    "mfa.push.reported_fraud": 0.001,
    "mfa.recovery.succeeded": 0.004,
    "mfa.recovery.failed": 0.002,
    "mfa.enrollment.started": 0.015,
    "mfa.enrollment.completed": 0.02,
    "mfa.enrollment.failed": 0.003,
    "mfa.enrollment.removed": 0.003,
    "lockout.applied": 0.005,
    "lockout.cleared": 0.004,
    "ip.block.applied": 0.001,
    "ip.block.released": 0.001,
    "risk.detected": 0.004,
}
NAMES: Final = list(TYPES)
FACTORS: Final = ["totp", "webauthn", "sms", "push", "email", "voice"]
CITIES: Final = [
    (country, lat + i * 0.01, lon)
    for i, (country, lat, lon) in enumerate(
        [("DE", 52.52, 13.4), ("FR", 48.86, 2.35), ("US", 40.71, -74.0), ("US", 37.77, -122.4)]
        + [("GB", 51.5, -0.12), ("AU", -33.87, 151.2), ("JP", 35.68, 139.7), ("BR", -23.5, -46.6)]
        + [("IN", 19.07, 72.88), ("CA", 43.65, -79.38)] * 2
        + [("NL", 52.37, 4.9), ("ES", 40.42, -3.7), ("IT", 41.9, 12.5), ("SE", 59.33, 18.07)]
        + [("PL", 52.23, 21.0), ("MX", 19.43, -99.13), ("ZA", -26.2, 28.05), ("SG", 1.35, 103.8)]
        + [("KR", 37.57, 126.98), ("AR", -34.6, -58.38), ("NG", 6.52, 3.38), ("EG", 30.04, 31.24)]
    )
]


def _text(codes: np.ndarray, choices: Sequence[str]) -> pa.Array:
    """Strings chosen by ``codes`` from ``choices``."""
    indices = pa.array(codes.astype(np.int32))
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(choices))).cast(pa.string())


def _prefixed(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pa.array(numbers).cast(pa.string()), "")


def _where(mask: np.ndarray, values: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask), values, pa.scalar(None, values.type))


def events_table(
    rows: int, *, seed: int = 7, days: int = 30, start: datetime = START, first: int = 0
) -> pa.Table:
    """``rows`` events in time order over ``days`` days from ``start``, with the ``events``
    schema; ids and transactions numbered from ``first`` (so that a later table can follow
    an earlier one without sharing any)."""
    rng = np.random.default_rng(seed)
    weights = np.array(list(TYPES.values()))
    kind = rng.choice(len(NAMES), size=rows, p=weights / weights.sum())
    index = np.arange(first, first + rows)
    transaction = index // 4
    subject_of = rng.integers(0, 200_000, size=transaction[-1] + 1)[transaction]
    span_us = days * 86_400_000_000
    times = np.sort(rng.integers(0, span_us, size=rows)) + int(start.timestamp() * 1_000_000)

    def of(*prefixes: str) -> np.ndarray:
        """Per row: whether its type starts with one of ``prefixes`` (a full name matches)."""
        return np.array([n.startswith(prefixes) for n in NAMES])[kind]

    is_push, is_recovery = of("mfa.push."), of("mfa.recovery.")
    delivery = of("mfa.challenge.sent", "mfa.challenge.delivery_failed")
    with_factor = of("mfa.enrollment.", "mfa.challenge.", "mfa.verification.")
    factor = rng.choice(len(FACTORS), size=rows, p=[0.4, 0.15, 0.15, 0.2, 0.07, 0.03])
    factor = np.where(is_push, 3, np.where(delivery, 2, factor))
    factor_text = _where(with_factor, _text(factor, FACTORS))
    factor_text = pc.if_else(pa.array(is_recovery), "recovery_code", factor_text)
    derived = of("lockout.", "ip.")
    located = ~derived
    city = np.where(
        rng.random(rows) < 0.05, rng.integers(0, len(CITIES), rows), subject_of % len(CITIES)
    )
    privileged = subject_of % 50 == 0
    tier = np.where(privileged, 0, np.where(subject_of % 5 < 3, 1, 2))
    failing = of("mfa.verification.failed", "mfa.recovery.failed")
    reason_codes = np.select(
        [of("mfa.verification.failed"), of("mfa.push.rejected"), delivery],
        [rng.integers(0, 3, rows), 3, 5],
        default=4,
    )
    reason_names = ["invalid_code", "expired", "replayed", "user_rejected", "unknown_code"]
    reason = _text(reason_codes, [*reason_names, "provider_timeout"])
    has_reason = failing | of(
        "mfa.push.rejected",
        "mfa.push.expired",
        "mfa.challenge.delivery_failed",
        "mfa.enrollment.removed",
    )
    reason = _where(has_reason, reason)
    reason = pc.if_else(pa.array(of("mfa.push.expired")), "expired", reason)
    reason = pc.if_else(pa.array(derived), "max_failures", reason)
    is_risk, is_required = of("risk.detected"), of("mfa.required")
    score = rng.integers(40, 96, rows)
    detections = ["impossible_travel", "new_device", "push_fatigue", "otp_guessing"]
    type_text = _text(kind, NAMES)
    serial = pc.utf8_lpad(pa.array(index).cast(pa.string()), 12, "0")
    columns: dict[str, Any] = {
        "id": pc.binary_join_element_wise("0190a000-0000-7000-8000-", serial, ""),
        "time": pa.array(times, pa.timestamp("us", tz="UTC")),
        "type": type_text,
        "tenant": _prefixed("tenant-", subject_of % 5),
        "subject": _prefixed("u-", subject_of),
        "correlationid": _prefixed("login-", transaction),
        "source": pa.repeat("https://login.example.com/mfa", rows),
        "dataschema": pc.binary_join_element_wise("urn:factorstream:schema:", type_text, ":v1", ""),
        "application": _where(located, _text(subject_of % 6, [f"app-{i}" for i in range(6)])),
        "policy_tier": _where(located, _text(tier, ["admin", "business", "customer"])),
        "factor": factor_text,
        "channel": _where(delivery, pa.repeat("sms", rows)),
        "reason": reason,
        "outcome": _where(
            of("auth.login.attempted"),
            _text((rng.random(rows) < 0.15).astype(int), ["success", "failure"]),
        ),
        "challenge_id": _where(with_factor | is_push, _prefixed("ch-", transaction)),
        "enrollment_id": _where(of("mfa.enrollment."), _prefixed("en-", subject_of * 10 + factor)),
        "ip": _where(located, _prefixed("198.51.100.", subject_of % 250)),
        "country": _where(located, _text(city, [c[0] for c in CITIES])),
        "latitude": _where(located, pa.array(np.array([c[1] for c in CITIES])[city])),
        "longitude": _where(located, pa.array(np.array([c[2] for c in CITIES])[city])),
        "device_kind": _where(located, _text(subject_of % 3, ["desktop", "mobile", "tablet"])),
        "device_os": _where(located, _text(subject_of % 4, ["Windows", "macOS", "iOS", "Linux"])),
        "role": _where(is_required & privileged, pa.repeat("admin", rows)),
        "detection": _where(is_risk, _text(rng.integers(0, 4, rows), detections)),
        "severity": _where(
            is_risk, _text(np.digitize(score, [70, 90]), ["medium", "high", "critical"])
        ),
        "score": _where(is_risk, pa.array(score)),
        "data": pc.binary_join_element_wise('{"type":"', type_text, '"}', ""),
    }
    schema = SCHEMAS["events"]
    arrays = [columns.get(f.name, pa.nulls(rows, f.type)).cast(f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _suffix(types: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.replace_substring_regex(types, r"^.*\.", "")


def _in(types: pa.ChunkedArray, names: Iterable[str]) -> pa.ChunkedArray:
    return pc.is_in(types, value_set=pa.array(sorted(names)))


def _shape(table: str, columns: Mapping[str, Any], rows: int) -> pa.Table:
    schema = SCHEMAS[table]
    arrays = [pa.chunked_array(columns.get(f.name, pa.nulls(rows, f.type))) for f in schema]
    return pa.Table.from_arrays(
        [a.cast(f.type) for a, f in zip(arrays, schema, strict=True)], schema=schema
    )


def typed_tables(events: pa.Table) -> dict[str, pa.Table]:
    """The typed tables' rows of ``events`` (what ``analytics.tables`` derives per event)."""
    types = events.column("type")
    masks = {
        "verifications": _in(types, VERIFICATION_TYPES),
        "challenges": pc.or_(
            pc.starts_with(types, "mfa.challenge."), pc.equal(types, "mfa.required")
        ),
        "enrollments": pc.starts_with(types, "mfa.enrollment."),
        "lockouts": pc.or_(pc.starts_with(types, "lockout."), pc.starts_with(types, "ip.block.")),
        "risk_detections": pc.equal(types, "risk.detected"),
    }
    out = {"events": events}
    for table, mask in masks.items():
        rows = events.filter(mask)
        kind = rows.column("type")
        n = rows.num_rows
        cols: dict[str, Any] = {name: rows.column(name) for name in rows.column_names}
        if table == "verifications":
            cols["success"] = _in(kind, SUCCESS_TYPES)
        elif table == "challenges":
            cols["status"] = pc.if_else(pc.equal(kind, "mfa.required"), "required", _suffix(kind))
            cols["provider"] = pc.if_else(pc.is_null(rows.column("channel")), None, "twilio")
            cols["destination_country"] = rows.column("country")
        elif table == "enrollments":
            cols["status"] = _suffix(kind)
        elif table == "lockouts":
            applied = pc.ends_with(kind, ".applied")
            cols["action"] = pc.if_else(applied, "applied", "cleared")
            cols["scope"] = pc.if_else(pc.starts_with(kind, "ip."), "ip", "subject")
            cols["failures"] = pc.if_else(applied, 5, None)
        elif table == "risk_detections":
            ids = rows.column("id").combine_chunks()
            before = _previous(events, mask)
            previous = pc.take(events.column("id"), before)
            values = pa.concat_arrays([previous.combine_chunks(), ids]).take(
                pa.array(np.arange(2 * n).reshape(2, n).T.ravel())
            )
            cols["related_event_ids"] = pa.ListArray.from_arrays(
                pa.array(np.arange(0, 2 * n + 1, 2), pa.int32()), values
            )
            cols["summary"] = rows.column("detection")
            cols["evidence"] = _travel_evidence(events, rows, before)
        out[table] = _shape(table, cols, n)
    return out


def _travel_evidence(events: pa.Table, rows: pa.Table, before: pa.Array) -> pa.Array:
    """Evidence as the travel fold writes it: the speed and where the trip started, the
    previous event's place (the detection's own where that event has none: the fold only
    compares located sign-ins, so its evidence always names a start)."""

    def start(name: str) -> pa.Array:
        previous = pc.take(events.column(name), before)
        return pc.coalesce(previous, rows.column(name).combine_chunks())

    return pc.binary_join_element_wise(
        '{"speed_kmh": 1500.0, "from_country": "',
        start("country"),
        '", "from_latitude": ',
        start("latitude").cast(pa.string()),
        ', "from_longitude": ',
        start("longitude").cast(pa.string()),
        "}",
        "",
    )


def _previous(events: pa.Table, mask: pa.ChunkedArray) -> pa.Array:
    """For each masked row, the row four before it (the previous transaction's event)."""
    where = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
    return pa.array(np.maximum(where - 4, 0))


def batches(events: pa.Table, batch_rows: int) -> Iterator[dict[str, pa.Table]]:
    """``events`` cut into micro-batches of ``batch_rows``, each with its typed tables."""
    for start in range(0, events.num_rows, batch_rows):
        yield typed_tables(events.slice(start, batch_rows))
