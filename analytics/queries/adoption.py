"""MFA adoption over time.

Conventions (bound filters, columns, days) in ``analytics.queries``.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from analytics.queries.filters import ALL, Filters
from analytics.views import fetch


def mfa_adoption(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """MFA adoption per factor per day: of the subjects who signed in that day, how many
    had the factor enrolled at the end of the day (an enrollment counts from the day of
    its ``mfa.enrollment.completed`` until the day before its ``mfa.enrollment.removed``).

    Columns: ``day`` (date), ``factor``, ``enrolled_subjects``, ``active_subjects``,
    ``adoption_rate`` (enrolled / active). Every day with sign-ins × every factor ever
    enrolled. ``application`` filters the sign-ins; ``factor`` the enrollments.
    """
    sql = """
    WITH active AS (
        SELECT DISTINCT date AS day, tenant, subject FROM sign_ins
        WHERE ($tenant IS NULL OR tenant = $tenant)
          AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
          AND ($application IS NULL OR application = $application)
    ), spans AS (
        SELECT tenant, subject, factor, enrollment_id,
            min(date) FILTER (WHERE status = 'completed') AS enrolled_on,
            min(date) FILTER (WHERE status = 'removed') AS removed_on
        FROM lake_enrollments
        WHERE status IN ('completed', 'removed')
          AND ($tenant IS NULL OR tenant = $tenant) AND ($until IS NULL OR time < $until)
          AND ($factor IS NULL OR factor = $factor)
        GROUP BY ALL
    ), enrolled AS (
        SELECT a.day, s.factor, count(DISTINCT (a.tenant, a.subject)) AS enrolled_subjects
        FROM active a JOIN spans s ON s.tenant = a.tenant AND s.subject = a.subject
        WHERE s.enrolled_on <= a.day AND (s.removed_on IS NULL OR s.removed_on > a.day)
        GROUP BY ALL
    ), per_day AS (
        SELECT day, count(*) AS active_subjects FROM active GROUP BY day
    ), factors AS (
        SELECT DISTINCT factor FROM spans WHERE enrolled_on IS NOT NULL
    )
    SELECT d.day, f.factor, coalesce(e.enrolled_subjects, 0) AS enrolled_subjects,
        d.active_subjects,
        coalesce(e.enrolled_subjects, 0) / d.active_subjects AS adoption_rate
    FROM per_day d CROSS JOIN factors f
    LEFT JOIN enrolled e ON e.day = d.day AND e.factor = f.factor
    ORDER BY d.day, f.factor
    """
    return fetch(con, sql, filters.bind(*ALL))
