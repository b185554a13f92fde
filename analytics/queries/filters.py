"""The filters every metric query takes, and the constants the queries share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import duckdb
import pandas as pd

FEED_LIMIT: Final = 1000
"""Most rows of the anomaly and push-fatigue feeds (newest first)."""


@dataclass(frozen=True, kw_only=True)
class Filters:
    """What the dashboard's filter bar selects; every value is bound, never pasted."""

    tenant: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    factor: str | None = None
    application: str | None = None
    as_of: datetime | None = None
    """The moment a query that says *as of* answers for when no ``until`` is set (the
    caller's clock, read at the edge; unset: the newest event the query reads)."""

    def __post_init__(self) -> None:
        for name in ("since", "until", "as_of"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware (UTC), got {value!r}")

    def bind(self, *names: str) -> dict[str, object]:
        """The named filters as query parameters (``None`` for an unset one)."""
        return {name: getattr(self, name) for name in names}


Query = Callable[[duckdb.DuckDBPyConnection, Filters], pd.DataFrame]

ALL: Final = ("tenant", "since", "until", "factor", "application")
NO_FACTOR: Final = ("tenant", "since", "until", "application")
WHEN: Final = ("tenant", "since", "until")
