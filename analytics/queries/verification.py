"""Verification outcomes: success rates, time to complete, failure reasons, SMS delivery.

Conventions (bound filters, columns, days) in ``analytics.queries``.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from analytics.queries.completions import completions
from analytics.queries.filters import ALL, NO_FACTOR, Filters
from analytics.queries.planned import run_planned
from analytics.rollups import Plan
from analytics.views import SMS_DELIVERY, fetch


def verification_success_rate(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Verification outcomes by tenant, application and factor.

    Columns: ``tenant``, ``application``, ``factor``, ``verifications``, ``succeeded``,
    ``failed``, ``success_rate`` (succeeded / verifications).
    """
    sql = """
    SELECT tenant, application, factor, count(*) AS verifications,
        count(*) FILTER (WHERE success) AS succeeded,
        count(*) FILTER (WHERE NOT success) AS failed,
        count(*) FILTER (WHERE success) / count(*) AS success_rate
    FROM lake_verifications
    WHERE ($tenant IS NULL OR tenant = $tenant)
      AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
      AND ($factor IS NULL OR factor = $factor)
      AND ($application IS NULL OR application = $application)
    GROUP BY ALL ORDER BY tenant, application, factor
    """
    return fetch(con, sql, filters.bind(*ALL))


def time_to_complete(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Time from challenge to successful verification, by factor (see the ``verifications``
    view for how the challenge is found; ``analytics.queries.completions`` for where).

    Columns: ``factor``, ``completions`` (successes with a known challenge time),
    ``p50_ms``, ``p95_ms`` (``quantile_cont``: linear interpolation between ranks).
    """

    def sql(plan: Plan) -> str:
        return f"""
    SELECT factor, count(*) AS completions,
        quantile_cont(time_to_complete_ms, 0.5) AS p50_ms,
        quantile_cont(time_to_complete_ms, 0.95) AS p95_ms
    FROM {completions(rolled=bool(plan.completed))}
    WHERE $factor IS NULL OR factor = $factor
    GROUP BY factor ORDER BY factor
    """  # noqa: S608 - constant text: the filter values are bound

    return run_planned(con, filters, sql, ALL)


def failure_reasons(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Why verifications failed.

    Columns: ``factor``, ``reason``, ``failures``, ``share`` (of all failures selected).
    Ordered by ``failures``, most first.
    """
    sql = """
    SELECT factor, reason, count(*) AS failures,
        count(*) / sum(count(*)) OVER () AS share
    FROM lake_verifications
    WHERE NOT success
      AND ($tenant IS NULL OR tenant = $tenant)
      AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
      AND ($factor IS NULL OR factor = $factor)
      AND ($application IS NULL OR application = $application)
    GROUP BY ALL ORDER BY failures DESC, factor, reason
    """
    return fetch(con, sql, filters.bind(*ALL))


def sms_delivery_failure_rate(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """SMS challenges providers failed to deliver, per day and provider.

    Columns: ``day`` (date), ``provider``, ``attempted`` (distinct SMS challenges sent or
    failed), ``failed`` (with ``mfa.challenge.delivery_failed``), ``failure_rate``.

    Each challenge (tenant + id) is first reduced to one row per day and provider (did any
    of its deliveries fail?), then counted: one aggregation instead of a distinct count per
    column (``count(challenge_id)`` skips a null id, as ``count(DISTINCT …)`` did).
    """
    sql = f"""
    WITH challenge AS (
        SELECT date AS day, provider, tenant, challenge_id,
            bool_or(status = 'delivery_failed') AS delivery_failed
        FROM lake_challenges
        WHERE {SMS_DELIVERY}
          AND ($tenant IS NULL OR tenant = $tenant)
          AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
          AND ($application IS NULL OR application = $application)
        GROUP BY ALL
    )
    SELECT day, provider, count(challenge_id) AS attempted,
        count(challenge_id) FILTER (WHERE delivery_failed) AS failed,
        count(challenge_id) FILTER (WHERE delivery_failed) / count(challenge_id) AS failure_rate
    FROM challenge
    GROUP BY day, provider ORDER BY day, provider
    """  # noqa: S608 - constant text: the filter values are bound
    return fetch(con, sql, filters.bind(*NO_FACTOR))
