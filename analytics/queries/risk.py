"""Risk: the anomaly feed, impossible-travel arcs, push fatigue, lockouts.

Conventions (bound filters, columns, days) in ``analytics.queries``.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from analytics.queries.filters import FEED_LIMIT, WHEN, Filters
from analytics.views import fetch


def anomalies(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """The feed of risk detections, newest first (at most ``FEED_LIMIT`` rows).

    Columns: ``time``, ``id``, ``tenant``, ``subject``, ``detection``, ``severity``,
    ``score``, ``summary``, ``evidence`` (JSON text), ``country``.
    Filters: tenant, since, until.
    """
    sql = """
    SELECT time, id, tenant, subject, detection, severity, score, summary, evidence, country
    FROM lake_risk_detections
    WHERE ($tenant IS NULL OR tenant = $tenant)
      AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
    ORDER BY time DESC, id LIMIT $limit
    """
    return fetch(con, sql, {**filters.bind(*WHEN), "limit": FEED_LIMIT})


def impossible_travel_arcs(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Impossible-travel detections as arcs: from the previous sign-in to the sign-in that
    fired it.

    The start is read from the detection's evidence (``from_country``, ``from_latitude``,
    ``from_longitude``), so the query reads no event but the detections. A detection whose
    evidence lacks the coordinates (recorded before they were added) takes them from its
    second-to-last related event, by id: the only case that reads ``events``.

    Columns: ``time``, ``id``, ``tenant``, ``subject``, ``from_country``,
    ``from_latitude``, ``from_longitude``, ``to_country``, ``to_latitude``,
    ``to_longitude``, ``speed_kmh``, ``severity``. Filters: tenant, since, until.
    """
    sql = """
    WITH travel AS (
        SELECT time, id, tenant, subject, severity, related_event_ids,
            country AS to_country, latitude AS to_latitude, longitude AS to_longitude,
            json_extract_string(evidence, '$.from_country') AS from_country,
            TRY_CAST(json_extract(evidence, '$.from_latitude') AS DOUBLE) AS from_latitude,
            TRY_CAST(json_extract(evidence, '$.from_longitude') AS DOUBLE) AS from_longitude,
            TRY_CAST(json_extract(evidence, '$.speed_kmh') AS DOUBLE) AS speed_kmh
        FROM lake_risk_detections
        WHERE detection = 'impossible_travel' AND latitude IS NOT NULL
          AND ($tenant IS NULL OR tenant = $tenant)
          AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
    ), located AS (
        SELECT * FROM travel WHERE from_latitude IS NOT NULL AND from_longitude IS NOT NULL
    ), unlocated AS (  -- older detections: the start from the previous sign-in's event
        SELECT t.* REPLACE (e.country AS from_country, e.latitude AS from_latitude,
            e.longitude AS from_longitude)
        FROM travel t JOIN lake_events e ON e.id = t.related_event_ids[-2]
        WHERE (t.from_latitude IS NULL OR t.from_longitude IS NULL)
          AND len(t.related_event_ids) >= 2 AND e.latitude IS NOT NULL
    )
    SELECT time, id, tenant, subject, from_country, from_latitude, from_longitude,
        to_country, to_latitude, to_longitude, speed_kmh, severity
    FROM (SELECT * FROM located UNION ALL SELECT * FROM unlocated)
    ORDER BY time, id
    """
    return fetch(con, sql, filters.bind(*WHEN))


def push_fatigue_incidents(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Push-fatigue detections, newest first (at most ``FEED_LIMIT`` rows).

    Columns: ``time``, ``id``, ``tenant``, ``subject``, ``severity``, ``score``,
    ``rejected``, ``expired``, ``approved_after_seconds`` (null unless a push was approved
    after the burst: the critical case), ``summary``. Filters: tenant, since, until.
    """
    sql = """
    SELECT time, id, tenant, subject, severity, score,
        TRY_CAST(json_extract(evidence, '$.rejected') AS BIGINT) AS rejected,
        TRY_CAST(json_extract(evidence, '$.expired') AS BIGINT) AS expired,
        TRY_CAST(json_extract(evidence, '$.approved_after_seconds') AS BIGINT)
            AS approved_after_seconds,
        summary
    FROM lake_risk_detections
    WHERE detection = 'push_fatigue'
      AND ($tenant IS NULL OR tenant = $tenant)
      AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
    ORDER BY time DESC, id LIMIT $limit
    """
    return fetch(con, sql, {**filters.bind(*WHEN), "limit": FEED_LIMIT})


def lockouts_over_time(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Lockouts applied and cleared per day and scope (subject, factor, ip).

    Columns: ``day`` (date), ``scope``, ``applied``, ``cleared``, ``locked_subjects``
    (distinct subjects with a lockout applied). ``factor`` keeps factor lockouts of it.
    """
    sql = """
    SELECT date AS day, scope,
        count(*) FILTER (WHERE action = 'applied') AS applied,
        count(*) FILTER (WHERE action = 'cleared') AS cleared,
        count(DISTINCT (tenant, subject)) FILTER (WHERE action = 'applied') AS locked_subjects
    FROM lake_lockouts
    WHERE ($tenant IS NULL OR tenant = $tenant)
      AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
      AND ($factor IS NULL OR factor = $factor)
    GROUP BY ALL ORDER BY day, scope
    """
    return fetch(con, sql, filters.bind("tenant", "since", "until", "factor"))
