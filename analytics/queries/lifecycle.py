"""Account lifecycle: the two-person override and temporary access, trusted devices, and
migration and bulk enrolment, from the ``lifecycle`` and ``enrollments`` tables.

An override or a trust is the subject's, not an application's or a factor's: these queries
filter by tenant and period only. Where a query says *as of*, it means the end of the
period (``until``), else the caller's ``as_of`` (its clock, read at the edge), else the
newest lifecycle event: what the events up to then tell. No query reads the clock.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from analytics.queries.filters import FEED_LIMIT, WHEN, Filters
from analytics.views import fetch

_TENANT = "($tenant IS NULL OR tenant = $tenant)"
_PERIOD = "($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)"
_UP_TO = "($until IS NULL OR time < $until)"
_AS_OF = "coalesce($until, $as_of, (SELECT max(time) FROM lake_lifecycle))"
AS_OF: tuple[str, ...] = (*WHEN, "as_of")


def lifecycle_over_time(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Each lifecycle step per day: requests, approvals and refusals of overrides,
    temporary-access codes granted, used and refused, devices trusted, revoked and refused.

    Columns: ``day`` (date), ``ceremony`` (``override``, ``temporary_access``,
    ``trusted_device``), ``status`` (the event type's last part: ``requested``,
    ``approved``, ``refused``, ``granted``, ``used``, ``trusted``, ``revoked``,
    ``trust_refused``), ``reason`` (a refusal's or revocation's; null otherwise),
    ``events``, ``devices`` (devices a revocation ended: one ``device.revoked`` of an
    erasure ends every device of the subject; else one per event).
    """
    sql = f"""
    SELECT date AS day, ceremony, status, reason, count(*) AS events,
        sum(CASE WHEN status = 'revoked' THEN coalesce(devices_revoked, 1) ELSE 1 END)::BIGINT
            AS devices
    FROM lake_lifecycle
    WHERE {_TENANT} AND {_PERIOD}
    GROUP BY ALL ORDER BY day, ceremony, status, reason NULLS FIRST
    """  # noqa: S608 - constant text: the filter values are bound
    return fetch(con, sql, filters.bind(*WHEN))


def override_requests(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """The auditor's view of the two-person rule: one row per override requested in the
    period, newest first (at most :data:`FEED_LIMIT`), with what became of it as of the
    period's end.

    Columns: ``requested_at``, ``tenant``, ``subject``, ``request_id``, ``action``
    (``unlock``, ``temporary_access``), ``requested_by``, ``approved_by`` (null: not
    approved), ``approved_at``, ``ticket``, ``outcome`` (``approved``; ``refused``: the
    request itself was, e.g. ``not_admin``; ``expired``: its deadline passed without an
    approval; ``pending``), ``refusals`` (refused attempts on it, the request's own
    included), ``refusal_reasons`` (their reasons, comma-separated, in order).
    """
    sql = f"""
    WITH steps AS (
        SELECT * FROM lake_lifecycle
        WHERE ceremony = 'override' AND request_id IS NOT NULL AND {_TENANT} AND {_UP_TO}
    ), requests AS (
        SELECT tenant, request_id,
            min(time) FILTER (WHERE status = 'requested'
                OR (status = 'refused' AND stage = 'request')) AS requested_at,
            any_value(subject) AS subject,
            any_value(action) AS action,
            any_value(requested_by) FILTER (WHERE requested_by IS NOT NULL) AS requested_by,
            any_value(approved_by) FILTER (WHERE status = 'approved') AS approved_by,
            min(time) FILTER (WHERE status = 'approved') AS approved_at,
            any_value(ticket) FILTER (WHERE ticket IS NOT NULL) AS ticket,
            max(approve_before) AS approve_before,
            bool_or(status = 'refused' AND stage = 'request') AS refused,
            count(*) FILTER (WHERE status = 'refused') AS refusals,
            string_agg(reason, ', ' ORDER BY time) FILTER (WHERE status = 'refused')
                AS refusal_reasons
        FROM steps GROUP BY ALL
    )
    SELECT requested_at, tenant, subject, request_id, action, requested_by, approved_by,
        approved_at, ticket,
        CASE WHEN approved_at IS NOT NULL THEN 'approved'
             WHEN refused THEN 'refused'
             WHEN approve_before <= {_AS_OF} THEN 'expired'
             ELSE 'pending' END AS outcome,
        refusals, refusal_reasons
    FROM requests
    WHERE requested_at IS NOT NULL
      AND ($since IS NULL OR requested_at >= $since)
    ORDER BY requested_at DESC, request_id
    LIMIT {FEED_LIMIT}
    """  # noqa: S608 - constant text: the filter values are bound
    return fetch(con, sql, filters.bind(*AS_OF))


def active_trusted_devices(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Trusted devices in force as of the period's end, per tenant, as far as the events
    tell: trusts made up to then, less those revoked (one by one, or every device of the
    subject at once, as an erasure does) or expired by then. ``since`` does not apply:
    a trust made before the period may still be in force.

    Columns: ``tenant``, ``trusted`` (trusts made), ``revoked``, ``expired`` (ended by
    their own ``expires_at``, not revoked), ``active``, ``subjects`` (with an active one).
    """
    sql = f"""
    WITH steps AS (
        SELECT * FROM lake_lifecycle
        WHERE ceremony = 'trusted_device' AND {_TENANT} AND {_UP_TO}
    ), trusts AS (
        SELECT t.tenant, t.subject, t.trust_id, t.expires_at,
            EXISTS (
                SELECT 1 FROM steps r
                WHERE r.status = 'revoked' AND r.tenant = t.tenant AND r.time >= t.time
                  AND (r.trust_id = t.trust_id OR (r.trust_id IS NULL AND r.subject = t.subject))
            ) AS revoked
        FROM steps t WHERE t.status = 'trusted'
    )
    SELECT tenant, count(*) AS trusted,
        count(*) FILTER (WHERE revoked) AS revoked,
        count(*) FILTER (WHERE NOT revoked AND expires_at <= {_AS_OF}) AS expired,
        count(*) FILTER (WHERE NOT revoked AND expires_at > {_AS_OF}) AS active,
        count(DISTINCT subject) FILTER (WHERE NOT revoked AND expires_at > {_AS_OF})
            AS subjects
    FROM trusts GROUP BY ALL ORDER BY tenant
    """  # noqa: S608 - constant text: the filter values are bound
    return fetch(con, sql, filters.bind(*AS_OF))


def migration_over_time(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Migration and bulk enrolment per day: seeds imported from another system, by where
    they came from, and invitations sent.

    Columns: ``day`` (date), ``tenant``, ``kind`` (``imported``: an
    ``mfa.enrollment.completed`` with ``imported_from``; ``invited``: an
    ``mfa.enrollment.started`` with ``invited``), ``source`` (``imported_from``; null for
    an invitation), ``factor``, ``count``.
    """
    sql = f"""
    SELECT date AS day, tenant,
        CASE WHEN status = 'completed' THEN 'imported' ELSE 'invited' END AS kind,
        imported_from AS source, factor, count(*) AS count
    FROM lake_enrollments
    WHERE ((status = 'completed' AND imported_from IS NOT NULL) OR (status = 'started' AND invited))
      AND {_TENANT} AND {_PERIOD}
    GROUP BY ALL ORDER BY day, tenant, kind, source NULLS FIRST, factor
    """  # noqa: S608 - constant text: the filter values are bound
    return fetch(con, sql, filters.bind(*WHEN))


def invitation_conversion(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Invitations sent in the period vs enrolled: of the subjects invited to enrol a
    factor, how many completed an enrolment of it (not an import) at or after their first
    invitation, up to the period's end.

    Columns: ``tenant``, ``factor``, ``invited`` (subjects), ``enrolled``,
    ``enrolled_rate`` (enrolled / invited).
    """
    sql = f"""
    WITH invited AS (
        SELECT tenant, subject, factor, min(time) AS invited_at
        FROM lake_enrollments
        WHERE status = 'started' AND invited AND {_TENANT} AND {_PERIOD}
        GROUP BY ALL
    ), enrolled AS (
        SELECT i.tenant, i.subject, i.factor,
            EXISTS (
                SELECT 1 FROM lake_enrollments e
                WHERE e.status = 'completed' AND e.imported_from IS NULL
                  AND e.tenant = i.tenant AND e.subject = i.subject AND e.factor = i.factor
                  AND e.time >= i.invited_at AND ($until IS NULL OR e.time < $until)
            ) AS enrolled
        FROM invited i
    )
    SELECT tenant, factor, count(*) AS invited, count(*) FILTER (WHERE enrolled) AS enrolled,
        count(*) FILTER (WHERE enrolled) / count(*) AS enrolled_rate
    FROM enrolled GROUP BY ALL ORDER BY tenant, factor
    """  # noqa: S608 - constant text: the filter values are bound
    return fetch(con, sql, filters.bind(*WHEN))
