"""Headline figures for the overview page.

Conventions (bound filters, columns, days) in ``analytics.queries``. Active subjects, the
time to complete and the SMS deliveries come from the rollups for the whole days
they answer (``analytics.rollups``, ``analytics.queries.completions``), from the events
otherwise.
"""

from __future__ import annotations

from typing import Final

import duckdb
import pandas as pd

from analytics.queries.completions import completions
from analytics.queries.filters import NO_FACTOR, Filters
from analytics.queries.planned import WINDOWS, run_planned
from analytics.rollups import Plan
from analytics.views import SMS_DELIVERY, lake_files


def overview_kpis(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """One row of headline figures for the period (tenant, since, until; ``application``
    for the verification figures).

    Columns: ``events``, ``active_subjects`` (subjects with any event), ``verifications``,
    ``success_rate`` (null without verifications), ``p50_time_to_complete_ms``,
    ``lockouts_applied``, ``risk_detections``, ``high_risk_detections`` (high or
    critical), ``sms_delivery_failure_rate`` (null without SMS deliveries).
    """

    def sql(plan: Plan) -> str:
        # SMS challenges without grouping by id when every day of the window comes from
        # rollups whose earlier days are unchanged (their ``earlier`` lists hold)
        counted = plan.rolled and not plan.raw_days and plan.all_completed
        deliveries = _DELIVERIES + (_DELIVERIES_ROLLED if plan.rolled else "")
        return _OVERVIEW.format(
            active=_ACTIVE + (_ACTIVE_ROLLED if plan.rolled else ""),
            sms=_SMS_COUNTED if counted else _SMS_GROUPED.format(deliveries=deliveries),
            completions=completions(rolled=bool(plan.completed)),
        )

    return run_planned(con, filters, sql, NO_FACTOR)


_ACTIVE: Final = f"""
            SELECT tenant, subject FROM {lake_files("$raw")}
            WHERE ($tenant IS NULL OR tenant = $tenant)
              AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)"""  # noqa: S608
_ACTIVE_ROLLED: Final = f"""
            UNION ALL SELECT a.tenant, a.subject
            FROM read_parquet($activity, hive_partitioning = false) a
            JOIN {WINDOWS} w ON a.month = w.month
            WHERE a.days & w.mask <> 0 AND ($tenant IS NULL OR a.tenant = $tenant)"""  # noqa: S608
_DELIVERIES: Final = f"""
            SELECT tenant, challenge_id, status = 'delivery_failed' AS delivery_failed
            FROM {lake_files("$raw_challenges")}
            WHERE {SMS_DELIVERY} AND ($tenant IS NULL OR tenant = $tenant)
              AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)"""  # noqa: S608
_DELIVERIES_ROLLED: Final = """
            UNION ALL SELECT tenant, challenge_id, delivery_failed
            FROM read_parquet($deliveries, hive_partitioning = false)
            WHERE list_contains($days, date) AND ($tenant IS NULL OR tenant = $tenant)"""
_SMS_GROUPED: Final = """sms AS (  -- one row per SMS challenge: did any delivery of it fail?
        SELECT tenant, challenge_id, bool_or(delivery_failed) AS delivery_failed
        FROM ({deliveries}) GROUP BY tenant, challenge_id
    ), s AS (
        SELECT count(challenge_id) FILTER (WHERE delivery_failed)
            / nullif(count(challenge_id), 0) AS sms_delivery_failure_rate
        FROM sms"""
_SMS_COUNTED: Final = f"""s AS (  -- each SMS challenge counted on its first (failed) day here
        SELECT count(*) FILTER (WHERE c.failed_days & w.mask <> 0
                AND NOT list_has_any(c.earlier_failed, $days))
            / nullif(count(*) FILTER (WHERE NOT list_has_any(c.earlier, $days)), 0)
            AS sms_delivery_failure_rate
        FROM read_parquet($sms, hive_partitioning = false) c
        JOIN {WINDOWS} w ON c.month = w.month
        WHERE c.days & w.mask <> 0 AND ($tenant IS NULL OR c.tenant = $tenant)"""  # noqa: S608
_OVERVIEW: Final = """
    WITH e AS (
        SELECT count(*) AS events FROM lake_events
        WHERE ($tenant IS NULL OR tenant = $tenant)
          AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
    ), a AS (  -- subjects with any event: the rollups' days, the other days' events
        SELECT count(*) AS active_subjects FROM (SELECT DISTINCT * FROM ({active}))
    ), v AS (
        SELECT count(*) AS verifications,
            count(*) FILTER (WHERE success) / nullif(count(*), 0) AS success_rate
        FROM lake_verifications
        WHERE ($tenant IS NULL OR tenant = $tenant)
          AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
          AND ($application IS NULL OR application = $application)
    ), ttc AS (
        SELECT quantile_cont(time_to_complete_ms, 0.5) AS p50_time_to_complete_ms
        FROM {completions}
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
    ), {sms}
    )
    SELECT e.events, a.active_subjects, v.*, ttc.*, l.*, r.*, s.* FROM e, a, v, ttc, l, r, s
    """
