"""Queries that read the rollups: their files are planned at each call.

Which days the rollups answer changes as compaction runs, so such a query's text and file
lists come from a fresh :func:`analytics.rollups.plan` each time it runs, and again if a
file was swapped away before it was read (:func:`analytics.views.fetch_planned`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import duckdb
import pandas as pd

from analytics import rollups
from analytics.queries.filters import Filters
from analytics.views import fetch_planned, lake_of

SqlFor = Callable[[rollups.Plan], str]
"""The query's text for a plan: which parts it reads depends on what the rollups answer
(:attr:`~analytics.rollups.Plan.rolled`, :attr:`~analytics.rollups.Plan.completed`)."""


WINDOWS: Final = """(
    SELECT unnest($months) AS month, unnest($masks) AS mask,
        unnest($complete_masks) AS complete
)"""
"""SQL: per rollup used (``month``: its first day), the bits of its days the window takes
(``mask``) and of those whose completions and held factors it answers (``complete``)."""


def run_planned(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    sql: SqlFor,
    names: tuple[str, ...],
    **constants: object,
) -> pd.DataFrame:
    """Run ``sql`` over the lake of ``con`` with the filters ``names``, the plan's files and
    the query's ``constants``, all bound."""
    lake = lake_of(con)

    def planned() -> tuple[str, dict[str, object]]:
        plan = rollups.plan(lake, filters.since, filters.until)
        text = sql(plan)
        params = {**filters.bind(*names), **plan.params(), **constants}
        if "$looked_up_challenges" in text:
            params["looked_up_challenges"] = rollups.challenges_to_look_up(con, plan)
        return text, params

    return fetch_planned(con, planned)
