"""Exports of the audit trail, for the roles that may take them (checked here, server-side).

The dashboard's export buttons end in :func:`export_bytes`; a role without the right is
refused before the ledger is read, whatever the browser sent.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from audit.export import ExportFormat
from audit.rows import ExportFilter, LedgerRow
from dashboard.filters import DashboardFilters
from dashboard.ledger import LedgerAccess
from dashboard.users import User, may_export
from schemas.registry import EVENT_TYPES

KNOWN_TYPES: Final = frozenset(t.name for t in EVENT_TYPES)

FORMATS: Final[Mapping[ExportFormat, str]] = {
    "jsonl": "jsonl",
    "csv": "csv",
    "parquet": "parquet",
    "ocsf": "ocsf.jsonl",
}
"""Export formats and their file suffixes."""


class ExportRefused(PermissionError):
    """The signed-in user's role may not export."""


def export_filter(
    filters: DashboardFilters, *, subject: str | None = None, event_type: str | None = None
) -> ExportFilter:
    """The ledger filter of the page's controls (pure); ``event_type``: one type or several
    joined by commas (see :func:`event_types`)."""
    return ExportFilter(
        since=filters.start,
        until=filters.end,
        tenant=filters.tenant,
        subject=(subject or "").strip()[:128] or None,
        types=event_types(event_type),
    )


def event_types(choice: str | None) -> frozenset[str]:
    """The event types of the type filter's ``choice`` (``"a,b"``: either), unknown names
    dropped (pure). Empty: any type."""
    names = {name.strip() for name in str(choice or "")[:2048].split(",")}
    return frozenset(names & KNOWN_TYPES)


def rows_href(types: Iterable[str]) -> str:
    """The audit trail's address showing the ledger rows of ``types`` (under the shared
    filters, which the page keeps): where a tile's number links to (pure)."""
    return "/audit?type=" + ",".join(sorted(types))


def export_bytes(
    user: User,
    ledger: LedgerAccess,
    where: ExportFilter,
    *,
    fmt: ExportFormat,
    now: datetime,
) -> tuple[str, bytes, int]:
    """``(file name, content, records)`` of an export, if ``user`` may export."""
    if not may_export(user.role):
        raise ExportRefused(f"role {user.role} may not export the audit trail")
    if fmt not in FORMATS:
        raise ValueError(f"expected a format in {sorted(FORMATS)}, found {fmt!r}")
    name = f"factorstream-audit-{now:%Y%m%dT%H%M%SZ}.{FORMATS[fmt]}"
    with tempfile.TemporaryDirectory(prefix="factorstream-export-") as directory:
        out = Path(directory) / name
        records = ledger.export(where, fmt=fmt, out=out)
        return name, out.read_bytes(), records


def send_bytes(content: bytes, name: str) -> dict[str, Any]:
    """What ``dcc.Download`` takes: ``content`` as a file called ``name`` (base64 inside)."""
    return {"content": base64.b64encode(content).decode(), "filename": name, "base64": True}


def grid_row(row: LedgerRow) -> dict[str, Any]:
    """One ledger row as the audit grid shows it (pure)."""
    event = row.event
    return {
        "sequence": row.sequence,
        "recorded_at": readable_time(row.recorded_at),
        "time": readable_time(event.get("time")),
        "type": event.get("type"),
        "tenant": event.get("tenant"),
        "subject": event.get("subject"),
        "correlationid": event.get("correlationid"),
        "source": event.get("source"),
        "erased": ", ".join(row.erased),
    }


def readable_time(value: object) -> str:
    """A time as the grids show it, ``2026-11-20 08:15:02`` (UTC, to the second; their
    headers say UTC), from a datetime or an ISO 8601 text; anything else as it is (pure)."""
    if value is None or value == "":
        return ""
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if not isinstance(moment, datetime):
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def shown_count(shown: int, entries: int, *, limit: int) -> str:
    """What the grid shows against how many entries the ledger holds (pure): the grid's
    own pager counts only the rows it was given."""
    which = f"the newest {shown:,} matching" if shown >= limit else f"{shown:,} matching"
    return f"Showing {which} of the ledger's {entries:,} entries."
