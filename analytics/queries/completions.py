"""Completions: each successful verification of the window with its time to complete.

Whole days the rollups answer for completions come from them (the time to complete
was looked up when the month was rolled up, ``analytics.rollups``); every other day of the
window is looked up now, as the ``verifications`` view does, in the challenges of the days
that may hold them (``analytics.rollups.challenges_to_look_up``). Shared by the
time-to-complete and overview queries.
"""

from __future__ import annotations

from typing import Final

from analytics.views import completed, lake_files

_SUCCESSES: Final = f"(SELECT * FROM {lake_files('$lookups')} WHERE success)"  # noqa: S608
_SCOPE: Final = """($tenant IS NULL OR tenant = $tenant)
      AND ($application IS NULL OR application = $application)"""
_LOOKED_UP: Final = f"""
    SELECT tenant, application, factor, time_to_complete_ms
    FROM ({completed(_SUCCESSES, lake_files("$looked_up_challenges"))})
    WHERE time_to_complete_ms IS NOT NULL AND {_SCOPE}
      AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)"""  # noqa: S608
_ROLLED_UP: Final = f"""
    UNION ALL SELECT tenant, application, factor, time_to_complete_ms
    FROM read_parquet($completions, hive_partitioning = false)
    WHERE list_contains($completed, date) AND {_SCOPE}"""  # noqa: S608


def completions(*, rolled: bool) -> str:
    """A table expression (``tenant``, ``application``, ``factor``,
    ``time_to_complete_ms``) of the window's completions; it takes ``$tenant``,
    ``$since``, ``$until``, ``$application`` and the plan's files
    (:meth:`analytics.rollups.Plan.params`)."""
    return f"({_LOOKED_UP}{_ROLLED_UP if rolled else ''})"
