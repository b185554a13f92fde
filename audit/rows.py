"""The ledger's entries as the exports, the OCSF mapping and the evidence packs read them.

A :class:`LedgerRow` is the CloudEvent as a JSON object, personal fields decrypted or,
where the subject's key was destroyed, :data:`ERASED`; :class:`ExportFilter` selects rows;
:data:`COLUMNS` is the one flat column set of every table format (CSV, Parquet): ``sequence,
recorded_at``, the envelope attributes, every dotted ``data.*`` leaf of every registered
payload (sorted), then ``extra`` (JSON of any path no registered payload declares) and
``erased``; :func:`flatten` puts a row into it, erasures applied.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

import msgspec

from schemas.registry import EVENT_TYPES

ERASED = "[erased]"
"""What an erased personal value reads as, in the event and in every export."""

ColumnKind = Literal["string", "integer", "number", "boolean", "timestamp", "json"]


@dataclass(frozen=True)
class LedgerRow:
    """One ledger entry as the exports see it."""

    sequence: int
    """0-based leaf index in the tree."""
    recorded_at: datetime
    """When the ledger appended the entry (UTC)."""
    event: dict[str, Any]
    """The CloudEvent as a JSON object (attributes and ``data``), personal fields decrypted."""
    erased: tuple[str, ...] = ()
    """Dotted paths (``data.client.ip``) of personal fields whose subject key was destroyed."""


@dataclass(frozen=True)
class ExportFilter:
    """Which rows to export; every criterion given must match."""

    since: datetime | None = None
    """Inclusive lower bound on the event's ``time``."""
    until: datetime | None = None
    """Exclusive upper bound on the event's ``time``."""
    tenant: str | None = None
    subject: str | None = None
    types: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for bound in (self.since, self.until):
            if bound is not None and bound.tzinfo is None:
                raise ValueError("since/until must be timezone-aware (UTC)")

    def matches(self, row: LedgerRow) -> bool:
        event = row.event
        if self.tenant is not None and event.get("tenant") != self.tenant:
            return False
        if self.subject is not None and event.get("subject") != self.subject:
            return False
        if self.types and event.get("type") not in self.types:
            return False
        if self.since is None and self.until is None:
            return True
        time = event_time(event)
        if self.since is not None and time < self.since:
            return False
        return self.until is None or time < self.until


def event_time(event: Mapping[str, Any]) -> datetime:
    """The event's ``time`` attribute as an aware UTC datetime."""
    value = event["time"]
    time = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if time.tzinfo is None:
        raise ValueError(f"event time {value!r} has no UTC offset")
    return time.astimezone(UTC)


def with_erasures(row: LedgerRow) -> dict[str, Any]:
    """``row.event`` with every erased path that is present set to :data:`ERASED`.

    Only the dictionaries along erased paths are copied; the row is left untouched.
    """
    event = dict(row.event)
    for path in row.erased:
        node = event
        *parents, leaf = path.split(".")
        for name in parents:
            child = node.get(name)
            if not isinstance(child, dict):
                break
            copy = dict(child)
            node[name] = copy
            node = copy
        else:
            if node.get(leaf) is not None:
                node[leaf] = ERASED
    return event


# -- the table layout -------------------------------------------------------------------

ENVELOPE_COLUMNS: tuple[str, ...] = tuple(
    "id specversion source type time subject tenant partitionkey correlationid traceparent"
    " datacontenttype dataschema".split()
)


def _payload_leaves(node: Any, defs: Mapping[str, Any], at: str) -> Iterator[tuple[str, str]]:
    """(dotted path, column kind) of each leaf of a payload's JSON Schema ``node``."""
    if "$ref" in node:
        yield from _payload_leaves(defs[node["$ref"].rsplit("/", 1)[-1]], defs, at)
        return
    present = [n for n in node.get("anyOf", ()) if n.get("type") != "null"]
    if len(present) == 1:
        yield from _payload_leaves(present[0], defs, at)
    elif present:
        yield at, "json"
    elif node.get("type") == "object" and "properties" in node:
        for name, child in node["properties"].items():
            yield from _payload_leaves(child, defs, f"{at}.{name}")
    elif node.get("type") == "string" or _text_enum(node):
        yield at, "timestamp" if node.get("format") == "date-time" else "string"
    elif node.get("type") in ("integer", "number", "boolean"):
        yield at, node["type"]
    else:
        yield at, "json"


def _text_enum(node: Mapping[str, Any]) -> bool:
    values = node.get("enum") or [None]
    return all(isinstance(value, str) for value in values)


def _data_columns() -> dict[str, ColumnKind]:
    kinds: dict[str, set[str]] = {}
    for kind in EVENT_TYPES:
        schema = msgspec.json.schema(kind.payload)
        for path, leaf in _payload_leaves(schema, schema.get("$defs", {}), "data"):
            kinds.setdefault(path, set()).add(leaf)
    merged: dict[str, ColumnKind] = {}
    for path in sorted(kinds):
        found = kinds[path]
        if len(found) == 1:
            merged[path] = cast(ColumnKind, found.pop())
        else:  # the same name with different types in two payloads
            merged[path] = "number" if found == {"integer", "number"} else "json"
    return merged


COLUMNS: Mapping[str, ColumnKind] = {
    "sequence": "integer",
    "recorded_at": "timestamp",
    **{name: "timestamp" if name == "time" else "string" for name in ENVELOPE_COLUMNS},
    **_data_columns(),
    "extra": "json",
    "erased": "json",
}
"""Every table column and its kind, in order."""
COLUMN_INDEX = {name: index for index, name in enumerate(COLUMNS)}


def flatten(row: LedgerRow) -> dict[str, Any]:
    """``row`` as one table row: column name -> JSON value (erasures applied)."""
    flat: dict[str, Any] = {"sequence": row.sequence, "recorded_at": iso_utc(row.recorded_at)}
    extra: dict[str, Any] = {}
    for name, value in with_erasures(row).items():
        _flatten_into(flat, extra, value, name)
    flat["extra"] = extra or None
    flat["erased"] = list(row.erased)
    return flat


def _flatten_into(flat: dict[str, Any], extra: dict[str, Any], value: Any, at: str) -> None:
    if at in COLUMNS and at not in ("sequence", "recorded_at", "extra", "erased"):
        flat[at] = value
    elif isinstance(value, dict):
        for name, child in value.items():
            _flatten_into(flat, extra, child, f"{at}.{name}")
    elif value is not None:
        extra[at] = value


def iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("recorded_at must be timezone-aware (UTC)")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
