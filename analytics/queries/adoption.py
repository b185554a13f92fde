"""MFA adoption over time.

Conventions (bound filters, columns, days) in ``analytics.queries``. Whole days the monthly
rollups cover are counted from each subject's sign-in days there (``analytics.rollups``),
the other days from the sign-ins themselves; a day is counted from one or the other, so the
answer is the same either way.
"""

from __future__ import annotations

from typing import Final

import duckdb
import pandas as pd

from analytics.queries.filters import ALL, Filters
from analytics.queries.planned import run_planned
from analytics.views import SIGN_IN, lake_files

_RAW: Final = f"""spans AS (
        SELECT tenant, subject, factor, enrollment_id,
            min(date) FILTER (WHERE status = 'completed') AS enrolled_on,
            min(date) FILTER (WHERE status = 'removed') AS removed_on
        FROM lake_enrollments
        WHERE status IN ('completed', 'removed')
          AND ($tenant IS NULL OR tenant = $tenant) AND ($until IS NULL OR time < $until)
          AND ($factor IS NULL OR factor = $factor)
        GROUP BY ALL
    ), active AS (
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
_ROLLED: Final = """,
    windows AS (SELECT unnest($months) AS month, unnest($masks) AS mask),
    subject_days AS (  -- per month, each subject's sign-in days of the window, as bits
        SELECT a.month, a.tenant, a.subject, bit_or(a.days) & any_value(w.mask) AS days
        FROM read_parquet($active, hive_partitioning = false) a
        JOIN windows w ON a.month = w.month
        WHERE ($tenant IS NULL OR a.tenant = $tenant)
          AND ($application IS NULL OR a.application = $application)
        GROUP BY a.month, a.tenant, a.subject
    ), held AS (  -- ... and the days of those on which the subject held each factor
        SELECT month, factor, days & bit_or(CASE WHEN first < stop
            THEN (1::UBIGINT << stop) - (1::UBIGINT << first) ELSE 0::UBIGINT END) AS days
        FROM (
            SELECT d.month, d.tenant, d.subject, d.days, s.factor,
                greatest(0, date_diff('day', d.month, s.enrolled_on)) AS first,
                CASE WHEN s.removed_on IS NULL THEN 31
                    ELSE least(31, greatest(0, date_diff('day', d.month, s.removed_on)))
                END AS stop
            FROM subject_days d JOIN spans s ON s.tenant = d.tenant AND s.subject = d.subject
            WHERE s.enrolled_on IS NOT NULL
        ) GROUP BY month, factor, tenant, subject, days
    ), numbers AS (SELECT range AS bit FROM range(0, 31)),
    rolled_days AS (
        SELECT d.month + n.bit::INTEGER AS day, count(*) AS active_subjects
        FROM subject_days d, numbers n WHERE (d.days >> n.bit) & 1 = 1 GROUP BY ALL
    ), rolled_enrolled AS (
        SELECT h.month + n.bit::INTEGER AS day, h.factor, count(*) AS enrolled_subjects
        FROM held h, numbers n WHERE (h.days >> n.bit) & 1 = 1 GROUP BY ALL
    )"""
_ANSWER: Final = """
    SELECT d.day, f.factor, coalesce(e.enrolled_subjects, 0) AS enrolled_subjects,
        d.active_subjects,
        coalesce(e.enrolled_subjects, 0) / d.active_subjects AS adoption_rate
    FROM per_day d CROSS JOIN factors f
    LEFT JOIN enrolled e ON e.day = d.day AND e.factor = f.factor
    ORDER BY d.day, f.factor
    """


def _sql(*, rolled: bool) -> str:
    """The query: days counted raw, and with ``rolled`` those the rollups answer too."""
    days, enrolled = ["raw_days"], ["raw_enrolled"]
    if rolled:
        days.append("rolled_days")
        enrolled.append("rolled_enrolled")
    per_day = " UNION ALL ".join(f"SELECT * FROM {name}" for name in days)  # noqa: S608
    held = " UNION ALL ".join(f"SELECT * FROM {name}" for name in enrolled)  # noqa: S608
    return f"""WITH {_RAW}{_ROLLED if rolled else ""},
    per_day AS ({per_day}), enrolled AS ({held}),
    factors AS (SELECT DISTINCT factor FROM spans WHERE enrolled_on IS NOT NULL)
    {_ANSWER}"""  # noqa: S608 - constant text: the filter values are bound


def mfa_adoption(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """MFA adoption per factor per day: of the subjects who signed in that day, how many
    had the factor enrolled at the end of the day (an enrollment counts from the day of
    its ``mfa.enrollment.completed`` until the day before its ``mfa.enrollment.removed``).

    Columns: ``day`` (date), ``factor``, ``enrolled_subjects``, ``active_subjects``,
    ``adoption_rate`` (enrolled / active). Every day with sign-ins × every factor ever
    enrolled. ``application`` filters the sign-ins; ``factor`` the enrollments.
    """
    return run_planned(con, filters, lambda rolled, _: _sql(rolled=rolled), ALL)
