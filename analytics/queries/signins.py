"""Where and how people sign in: devices, geography, policy tiers in force.

Conventions (bound filters, columns, days) in ``analytics.queries``.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from analytics.queries.filters import ALL, Filters
from analytics.views import fetch


def device_distribution(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Devices sign-ins came from (``unknown`` where the event names none).

    Columns: ``device_kind``, ``device_os``, ``sign_ins``, ``subjects``; most first.
    """
    sql = """
    SELECT coalesce(device_kind, 'unknown') AS device_kind,
        coalesce(device_os, 'unknown') AS device_os,
        count(*) AS sign_ins, count(DISTINCT (tenant, subject)) AS subjects
    FROM sign_ins
    WHERE ($tenant IS NULL OR tenant = $tenant)
      AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
      AND ($factor IS NULL OR factor = $factor)
      AND ($application IS NULL OR application = $application)
    GROUP BY ALL ORDER BY sign_ins DESC, device_kind, device_os
    """
    return fetch(con, sql, filters.bind(*ALL))


def sign_in_geography(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Where sign-ins came from: points rounded to 0.1° (about 11 km), for a map.

    Columns: ``country``, ``latitude``, ``longitude``, ``sign_ins``, ``failures``
    (failed or refused sign-ins), ``subjects``. Sign-ins without coordinates are left out.
    """
    sql = """
    SELECT country, round(latitude, 1) AS latitude, round(longitude, 1) AS longitude,
        count(*) AS sign_ins,
        count(*) FILTER (WHERE type IN ('mfa.verification.failed', 'mfa.push.rejected',
            'mfa.push.expired', 'mfa.push.reported_fraud', 'mfa.recovery.failed')
            OR outcome = 'failure') AS failures,
        count(DISTINCT (tenant, subject)) AS subjects
    FROM sign_ins
    WHERE latitude IS NOT NULL AND longitude IS NOT NULL
      AND ($tenant IS NULL OR tenant = $tenant)
      AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
      AND ($factor IS NULL OR factor = $factor)
      AND ($application IS NULL OR application = $application)
    GROUP BY ALL ORDER BY sign_ins DESC, country, latitude, longitude
    """
    return fetch(con, sql, filters.bind(*ALL))


def policy_tiers(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Policy tiers in force: sign-ins and subjects per tier (``unknown`` where unset).

    Columns: ``policy_tier``, ``sign_ins``, ``subjects``.
    """
    sql = """
    SELECT coalesce(policy_tier, 'unknown') AS policy_tier, count(*) AS sign_ins,
        count(DISTINCT (tenant, subject)) AS subjects
    FROM sign_ins
    WHERE ($tenant IS NULL OR tenant = $tenant)
      AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
      AND ($factor IS NULL OR factor = $factor)
      AND ($application IS NULL OR application = $application)
    GROUP BY ALL ORDER BY sign_ins DESC, policy_tier
    """
    return fetch(con, sql, filters.bind(*ALL))
