"""SOC 2 evidence: MFA coverage of privileged roles.

Conventions (bound filters, columns, days) in ``analytics.queries``.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from analytics.queries.filters import PHISHING_RESISTANT, PRIVILEGED_ROLES, WHEN, Filters
from analytics.views import fetch


def privileged_role_coverage(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """SOC 2 evidence: privileged subjects and whether they hold phishing-resistant MFA.

    Privileged: within the period, an ``mfa.required`` with a privileged ``role`` (or the
    ``privileged_role`` reason), or any event under the ``admin`` policy tier. Enrolled
    factors are those completed before ``until`` and not removed since (all history).

    Columns: ``tenant``, ``subject``, ``role`` (null if only the tier says privileged),
    ``policy_tier``, ``phishing_resistant`` (a WebAuthn factor enrolled),
    ``enrolled_factors`` (sorted, comma-separated), ``phishing_resistant_sign_ins``,
    ``other_sign_ins`` (successful verifications in the period), ``last_seen``.
    Uncovered subjects first. Filters: tenant, since, until.
    """
    sql = """
    WITH privileged AS (
        SELECT tenant, subject,
            max(lower(role)) FILTER (WHERE list_contains($roles, lower(role))) AS role,
            CASE WHEN bool_or(policy_tier = 'admin') THEN 'admin' ELSE max(policy_tier) END
                AS policy_tier,
            max(time) AS last_seen
        FROM lake_events
        WHERE ((type = 'mfa.required' AND (list_contains($roles, lower(role))
                OR list_contains(reasons, 'privileged_role'))) OR policy_tier = 'admin')
          AND ($tenant IS NULL OR tenant = $tenant)
          AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
        GROUP BY ALL
    ), held AS (
        SELECT tenant, subject, list_sort(list(DISTINCT factor)) AS factors FROM (
            SELECT tenant, subject, factor, enrollment_id FROM lake_enrollments
            WHERE status IN ('completed', 'removed')
              AND ($tenant IS NULL OR tenant = $tenant) AND ($until IS NULL OR time < $until)
            GROUP BY ALL
            HAVING bool_or(status = 'completed') AND NOT bool_or(status = 'removed')
        ) GROUP BY ALL
    ), used AS (
        SELECT tenant, subject,
            count(*) FILTER (WHERE list_contains($strong, factor)) AS phishing_resistant_sign_ins,
            count(*) FILTER (WHERE NOT list_contains($strong, factor)) AS other_sign_ins
        FROM lake_verifications
        WHERE success AND ($tenant IS NULL OR tenant = $tenant)
          AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
        GROUP BY ALL
    )
    SELECT p.tenant, p.subject, p.role, p.policy_tier,
        coalesce(len(list_intersect(h.factors, $strong)) > 0, false) AS phishing_resistant,
        coalesce(array_to_string(h.factors, ','), '') AS enrolled_factors,
        coalesce(u.phishing_resistant_sign_ins, 0) AS phishing_resistant_sign_ins,
        coalesce(u.other_sign_ins, 0) AS other_sign_ins, p.last_seen
    FROM privileged p
    LEFT JOIN held h ON h.tenant = p.tenant AND h.subject = p.subject
    LEFT JOIN used u ON u.tenant = p.tenant AND u.subject = p.subject
    ORDER BY phishing_resistant, p.tenant, p.subject
    """
    params = {
        **filters.bind(*WHEN),
        "roles": list(PRIVILEGED_ROLES),
        "strong": list(PHISHING_RESISTANT),
    }
    return fetch(con, sql, params)
