"""Reporting periods: a quarter (``2026-Q3``), a month (``2026-11``), a year (``2026``),
or explicit bounds. A period is half-open, ``[since, until)``, in UTC."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime


class PeriodError(ValueError):
    """A period that cannot be read; the message says what was expected."""


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime
    label: str

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise PeriodError("a period's bounds must be timezone-aware (UTC)")
        if self.since >= self.until:
            raise PeriodError(
                f"the period starts ({self.since}) at or after it ends ({self.until})"
            )


def _start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


def _next_month(year: int, month: int) -> datetime:
    return _start(year + 1, 1) if month == 12 else _start(year, month + 1)


def parse_period(text: str) -> Period:
    """``2026-Q3`` (July–September), ``2026-11`` (a month) or ``2026`` (a year)."""
    value = text.strip().upper()
    if match := re.fullmatch(r"(\d{4})-Q([1-4])", value):
        year, quarter = int(match[1]), int(match[2])
        first = 3 * (quarter - 1) + 1
        return Period(_start(year, first), _next_month(year, first + 2), value)
    if match := re.fullmatch(r"(\d{4})-(\d{2})", value):
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12:
            raise PeriodError(f"{text!r}: month {month} is not 01..12")
        return Period(_start(year, month), _next_month(year, month), value)
    if re.fullmatch(r"\d{4}", value):
        return Period(_start(int(value), 1), _start(int(value) + 1, 1), value)
    raise PeriodError(f"{text!r} is not a period: expected 2026-Q3, 2026-11 or 2026")


def between(since: datetime, until: datetime) -> Period:
    """Explicit bounds (naive times are taken as UTC)."""
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    until = until if until.tzinfo else until.replace(tzinfo=UTC)
    label = f"{since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}/{until.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
    return Period(since.astimezone(UTC), until.astimezone(UTC), label)
