"""MFA adoption over time.

Conventions (bound filters, columns, days) in ``analytics.queries``. Whole days the
rollups cover are counted from each subject's sign-in days there (``analytics.rollups``),
the other days from the sign-ins themselves; a day is counted from one or the other, so the
answer is the same either way.
"""

from __future__ import annotations

from typing import Final

import duckdb
import pandas as pd

from analytics.queries.filters import ALL, Filters
from analytics.queries.planned import WINDOWS, run_planned
from analytics.rollups import Plan
from analytics.spans import held_days, spans
from analytics.views import SIGN_IN, lake_files

_SPANS: Final = spans(
    "lake_enrollments",
    "($tenant IS NULL OR tenant = $tenant) AND ($until IS NULL OR time < $until) "
    "AND ($factor IS NULL OR factor = $factor)",
)
_RAW: Final = f""",
    active AS (
        SELECT DISTINCT date AS day, tenant, subject
        FROM {lake_files("$raw")}
        WHERE {SIGN_IN}
          AND ($tenant IS NULL OR tenant = $tenant)
          AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
          AND ($application IS NULL OR application = $application)
    ), raw_enrolled AS (
        SELECT a.day, s.factor, count(DISTINCT (a.tenant, a.subject)) AS enrolled_subjects
        FROM active a JOIN spans s ON s.tenant = a.tenant AND s.subject = a.subject
        WHERE s.enrolled_on <= a.day AND (s.removed_on IS NULL OR s.removed_on > a.day)
        GROUP BY ALL
    ), raw_days AS (
        SELECT day, count(*) AS active_subjects FROM active GROUP BY day
    )"""  # noqa: S608 - constant text
_ROLLED: Final = f""",
    windows AS {WINDOWS},
    subject_days AS (  -- per rollup, each subject's sign-in days of the window, as bits
        SELECT a.month, a.tenant, a.subject, bit_or(a.days) & any_value(w.mask) AS days
        FROM read_parquet($active, hive_partitioning = false) a
        JOIN windows w ON a.month = w.month
        WHERE ($tenant IS NULL OR a.tenant = $tenant)
          AND ($application IS NULL OR a.application = $application)
        GROUP BY a.month, a.tenant, a.subject
    ), held AS (  -- ... and of those the days the subject held each factor: from the rollup
        SELECT h.month, h.factor, bit_or(h.days) & any_value(w.complete) AS days
        FROM read_parquet($held, hive_partitioning = false) h
        JOIN windows w ON h.month = w.month
        WHERE ($tenant IS NULL OR h.tenant = $tenant)
          AND ($application IS NULL OR h.application = $application)
          AND ($factor IS NULL OR h.factor = $factor)
        GROUP BY h.month, h.factor, h.tenant, h.subject{{uncompleted}}
    ), numbers AS (SELECT range AS bit FROM range(0, 31)),
    rolled_days AS (
        SELECT d.month + n.bit::INTEGER AS day, count(*) AS active_subjects
        FROM subject_days d, numbers n WHERE (d.days >> n.bit) & 1 = 1 GROUP BY ALL
    ), rolled_enrolled AS (
        SELECT h.month + n.bit::INTEGER AS day, h.factor, count(*) AS enrolled_subjects
        FROM held h, numbers n WHERE (h.days >> n.bit) & 1 = 1 GROUP BY ALL
    )"""  # noqa: S608 - constant text
_UNCOMPLETED: Final = f"""
        UNION ALL  -- ... or, on days whose earlier enrollments changed since, from the spans
        SELECT month, factor, days & bit_or({held_days("month", "s")}) AS days
        FROM (
            SELECT d.month, d.tenant, d.subject, d.days & ~w.complete AS days, s.factor,
                s.enrolled_on, s.removed_on
            FROM subject_days d JOIN windows w ON d.month = w.month
            JOIN spans s ON s.tenant = d.tenant AND s.subject = d.subject
            WHERE s.enrolled_on IS NOT NULL AND d.days & ~w.complete <> 0
        ) s GROUP BY month, factor, tenant, subject, days"""  # noqa: S608 - constant text
_ANSWER: Final = """
    SELECT d.day, f.factor, coalesce(e.enrolled_subjects, 0) AS enrolled_subjects,
        d.active_subjects,
        coalesce(e.enrolled_subjects, 0) / d.active_subjects AS adoption_rate
    FROM per_day d CROSS JOIN factors f
    LEFT JOIN enrolled e ON e.day = d.day AND e.factor = f.factor
    ORDER BY d.day, f.factor
    """


_NONE: Final = """,
    none_days AS (SELECT NULL::DATE AS day, NULL::BIGINT AS active_subjects WHERE false),
    none_enrolled AS (
        SELECT NULL::DATE AS day, NULL::VARCHAR AS factor, NULL::BIGINT AS enrolled_subjects
        WHERE false
    )"""


def _sql(plan: Plan) -> str:
    """The query: the days read raw, and those the rollups answer (only the parts the plan
    needs: the spans of every enrollment are the costliest)."""
    days, enrolled, parts = ["none_days"], ["none_enrolled"], _NONE
    if plan.raw_days:
        days.append("raw_days")
        enrolled.append("raw_enrolled")
        parts += _RAW
    if plan.rolled:
        days.append("rolled_days")
        enrolled.append("rolled_enrolled")
        parts += _ROLLED.format(uncompleted="" if plan.all_completed else _UNCOMPLETED)
    per_day = " UNION ALL ".join(f"SELECT * FROM {name}" for name in days)  # noqa: S608
    held = " UNION ALL ".join(f"SELECT * FROM {name}" for name in enrolled)  # noqa: S608
    return f"""WITH spans AS ({_SPANS}){parts},
    per_day AS ({per_day}), enrolled AS ({held}),
    factors AS (  -- every factor ever enrolled (before until)
        SELECT DISTINCT factor FROM lake_enrollments
        WHERE status = 'completed' AND ($tenant IS NULL OR tenant = $tenant)
          AND ($until IS NULL OR time < $until) AND ($factor IS NULL OR factor = $factor)
    )
    {_ANSWER}"""  # noqa: S608 - constant text: the filter values are bound


def mfa_adoption(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """MFA adoption per factor per day: of the subjects who signed in that day, how many
    had the factor enrolled at the end of the day (an enrollment counts from the day of
    its ``mfa.enrollment.completed`` until the day before its ``mfa.enrollment.removed``).

    Columns: ``day`` (date), ``factor``, ``enrolled_subjects``, ``active_subjects``,
    ``adoption_rate`` (enrolled / active). Every day with sign-ins × every factor ever
    enrolled. ``application`` filters the sign-ins; ``factor`` the enrollments.
    """
    return run_planned(con, filters, _sql, ALL)
