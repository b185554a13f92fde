"""The dashboard's shared filters (tenant, date range, factor, application), as a value.

Values come from the browser and are only ever *bound* as query parameters; a filter
never becomes SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

ALL = "__all__"
"""The dropdowns' "any" choice."""


@dataclass(frozen=True)
class DashboardFilters:
    tenant: str | None = None
    factor: str | None = None
    application: str | None = None
    since: date | None = None
    """First day shown (inclusive, UTC)."""
    until: date | None = None
    """Last day shown (inclusive, UTC)."""

    @property
    def start(self) -> datetime | None:
        """Inclusive lower bound on event time."""
        return None if self.since is None else datetime.combine(self.since, time(), UTC)

    @property
    def end(self) -> datetime | None:
        """Exclusive upper bound on event time (the day after ``until``)."""
        if self.until is None:
            return None
        return datetime.combine(self.until + timedelta(days=1), time(), UTC)


def _choice(value: Any) -> str | None:
    if value is None or value == ALL or value == "":
        return None
    if isinstance(value, list):  # a multi dropdown cleared to []
        return _choice(value[0]) if len(value) == 1 else None
    return str(value)[:256]


def _day(value: Any) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def from_inputs(
    tenant: Any, dates: tuple[Any, Any] | None, factor: Any, application: Any
) -> DashboardFilters:
    """The filters the layout's controls hold (garbage in: that filter is dropped)."""
    since, until = dates if dates is not None else (None, None)
    return DashboardFilters(
        tenant=_choice(tenant),
        factor=_choice(factor),
        application=_choice(application),
        since=_day(since),
        until=_day(until),
    )
