"""Headline figures for the overview page.

Conventions (bound filters, columns, days) in ``analytics.queries``.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from analytics.queries.filters import NO_FACTOR, Filters
from analytics.views import fetch


def overview_kpis(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """One row of headline figures for the period (tenant, since, until; ``application``
    for the verification figures).

    Columns: ``events``, ``active_subjects`` (subjects with any event), ``verifications``,
    ``success_rate`` (null without verifications), ``p50_time_to_complete_ms``,
    ``lockouts_applied``, ``risk_detections``, ``high_risk_detections`` (high or
    critical), ``sms_delivery_failure_rate`` (null without SMS deliveries).
    """
    sql = """
    WITH e AS (
        SELECT count(*) AS events, count(DISTINCT (tenant, subject)) AS active_subjects
        FROM lake_events
        WHERE ($tenant IS NULL OR tenant = $tenant)
          AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
    ), v AS (
        SELECT count(*) AS verifications,
            count(*) FILTER (WHERE success) / nullif(count(*), 0) AS success_rate
        FROM lake_verifications
        WHERE ($tenant IS NULL OR tenant = $tenant)
          AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
          AND ($application IS NULL OR application = $application)
    ), ttc AS (  -- only successes pay for the view's challenge join
        SELECT quantile_cont(time_to_complete_ms, 0.5) AS p50_time_to_complete_ms
        FROM verifications
        WHERE success AND ($tenant IS NULL OR tenant = $tenant)
          AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
          AND ($application IS NULL OR application = $application)
    ), l AS (
        SELECT count(*) AS lockouts_applied FROM lake_lockouts
        WHERE action = 'applied' AND ($tenant IS NULL OR tenant = $tenant)
          AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
    ), r AS (
        SELECT count(*) AS risk_detections,
            count(*) FILTER (WHERE severity IN ('high', 'critical')) AS high_risk_detections
        FROM lake_risk_detections
        WHERE ($tenant IS NULL OR tenant = $tenant)
          AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
    ), sms AS (  -- one row per SMS challenge: did any delivery of it fail?
        SELECT challenge_id, bool_or(status = 'delivery_failed') AS delivery_failed
        FROM lake_challenges
        WHERE channel = 'sms' AND status IN ('sent', 'delivery_failed')
          AND ($tenant IS NULL OR tenant = $tenant)
          AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
        GROUP BY challenge_id
    ), s AS (
        SELECT count(challenge_id) FILTER (WHERE delivery_failed)
            / nullif(count(challenge_id), 0) AS sms_delivery_failure_rate
        FROM sms
    )
    SELECT * FROM e, v, ttc, l, r, s
    """
    return fetch(con, sql, filters.bind(*NO_FACTOR))
