"""SMS and voice cost and delivery health (``docs/sms-cost.md``).

Money is summed as integer micros (``cost_micros``: millionths of ``currency``), exact;
a table priced in several currencies gives one row per currency, never a mixed sum.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from analytics.queries.filters import NO_FACTOR, Filters
from analytics.views import fetch

_WHEN = """($tenant IS NULL OR tenant = $tenant)
      AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
      AND ($application IS NULL OR application = $application)"""
_PHONE = "channel IN ('sms', 'voice')"


def sms_spend(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """What SMS and voice sends cost, per day, tenant, destination country and provider.

    Columns: ``day`` (date), ``tenant``, ``country`` (``??``: not known), ``provider``,
    ``currency``, ``sends`` (priced sends), ``cost_micros`` (their sum). From the
    ``cost_micros`` of ``mfa.challenge.sent``; unpriced sends are left out.
    """
    sql = f"""
    SELECT date AS day, tenant, coalesce(destination_country, '??') AS country, provider,
        currency, count(*) AS sends, sum(cost_micros)::BIGINT AS cost_micros
    FROM lake_challenges
    WHERE status = 'sent' AND {_PHONE} AND cost_micros IS NOT NULL AND {_WHEN}
    GROUP BY ALL ORDER BY day, tenant, country, provider
    """  # noqa: S608 - constant text: the filter values are bound
    return fetch(con, sql, filters.bind(*NO_FACTOR))


def sms_delivery_health(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Delivery success of SMS and voice sends by provider and destination country.

    Columns: ``provider``, ``country`` (``??``: not known), ``sent`` (accepted by the
    gateway), ``failed_attempts`` (``mfa.challenge.delivery_failed``), ``reported``
    (delivery receipts), ``delivered`` (receipts ``delivered``), ``delivery_rate``
    (delivered / reported; null without receipts). Accepted is not delivered: only a
    receipt says the phone got the message.
    """
    sql = f"""
    SELECT provider, coalesce(destination_country, '??') AS country,
        count(*) FILTER (WHERE status = 'sent') AS sent,
        count(*) FILTER (WHERE status = 'delivery_failed') AS failed_attempts,
        count(*) FILTER (WHERE status = 'delivery_reported') AS reported,
        count(*) FILTER (WHERE delivery_status = 'delivered') AS delivered,
        count(*) FILTER (WHERE delivery_status = 'delivered')
            / nullif(count(*) FILTER (WHERE status = 'delivery_reported'), 0) AS delivery_rate
    FROM lake_challenges
    WHERE {_PHONE} AND status IN ('sent', 'delivery_failed', 'delivery_reported') AND {_WHEN}
    GROUP BY ALL ORDER BY sent DESC, provider, country
    """  # noqa: S608 - constant text: the filter values are bound
    return fetch(con, sql, filters.bind(*NO_FACTOR))


def sms_pumping_spend(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """The spend SMS-pumping detections did not stop, and the spend the country caps did.

    Columns: ``day`` (date), ``tenant``, ``currency``, ``kind`` (``flagged``: sends in a
    period an ``sms_pumping`` detection fired for their tenant, paid; ``refused``: sends the
    tenant's daily country cap refused, ``country_cap``, at what each would have cost at
    most), ``sends``, ``cost_micros``.
    """
    sql = f"""
    WITH periods AS (
        SELECT DISTINCT tenant,
            CAST(json_extract_string(evidence, '$.period_start') AS TIMESTAMPTZ) AS start,
            CAST(json_extract(evidence, '$.period_seconds') AS BIGINT) AS seconds
        FROM lake_risk_detections
        WHERE detection = 'sms_pumping' AND ($tenant IS NULL OR tenant = $tenant)
    ), flagged AS (
        SELECT c.date AS day, c.tenant, c.currency, 'flagged' AS kind,
            count(*) AS sends, sum(c.cost_micros)::BIGINT AS cost_micros
        FROM lake_challenges c
        WHERE c.status = 'sent' AND c.{_PHONE} AND c.cost_micros IS NOT NULL
          AND ($tenant IS NULL OR c.tenant = $tenant)
          AND ($since IS NULL OR c.time >= $since) AND ($until IS NULL OR c.time < $until)
          AND ($application IS NULL OR c.application = $application)
          AND EXISTS (
            SELECT 1 FROM periods p WHERE p.tenant = c.tenant AND c.time >= p.start
              AND c.time < p.start + to_seconds(p.seconds)
          )
        GROUP BY ALL
    ), refused AS (
        SELECT date AS day, tenant, json_extract_string(data, '$.currency') AS currency,
            'refused' AS kind, count(*) AS sends,
            sum(CAST(json_extract(data, '$.cost_micros') AS BIGINT))::BIGINT AS cost_micros
        FROM lake_events
        WHERE reason = 'country_cap' AND {_WHEN}
        GROUP BY ALL
    )
    SELECT * FROM flagged UNION ALL SELECT * FROM refused ORDER BY day, tenant, kind
    """  # noqa: S608 - constant text: the filter values are bound
    return fetch(con, sql, filters.bind(*NO_FACTOR))
