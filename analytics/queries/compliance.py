"""SOC 2 evidence: MFA coverage of privileged roles.

Conventions (bound filters, columns, days) in ``analytics.queries``. Whole days the
rollups cover come from their per-day ``privileged`` and ``verified`` rows
(``analytics.rollups``), the other days from the events and verifications themselves; a day
is counted from one or the other, so the answer is the same either way.
"""

from __future__ import annotations

from typing import Final

import duckdb
import pandas as pd

from analytics.columns import PHISHING_RESISTANT
from analytics.queries.filters import WHEN, Filters
from analytics.queries.planned import run_planned
from analytics.rollups import Plan
from analytics.views import PRIVILEGED, PRIVILEGED_ROLE, lake_files

_TENANT: Final = "($tenant IS NULL OR tenant = $tenant)"
_PERIOD: Final = "($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)"
_FLAGGED: Final = f"""
        SELECT tenant, subject, max({PRIVILEGED_ROLE}) AS role,
            bool_or(policy_tier = 'admin') AS admin_tier, max(policy_tier) AS policy_tier,
            max(time) AS last_seen
        FROM {lake_files("$raw")}
        WHERE {PRIVILEGED} AND {_TENANT} AND {_PERIOD}
        GROUP BY ALL"""  # noqa: S608 - constant text
_FLAGGED_ROLLED: Final = f"""
        UNION ALL SELECT tenant, subject, role, admin_tier, policy_tier, last_seen
        FROM read_parquet($privileged, hive_partitioning = false)
        WHERE list_contains($days, date) AND {_TENANT}"""  # noqa: S608 - constant text
_SUCCESSES: Final = f"""
        SELECT tenant, subject, factor, count(*) AS successes
        FROM {lake_files("$raw_verifications")}
        WHERE success AND {_TENANT} AND {_PERIOD}
        GROUP BY ALL"""  # noqa: S608 - constant text
_SUCCESSES_ROLLED: Final = f"""
        UNION ALL SELECT tenant, subject, factor, successes
        FROM read_parquet($verified, hive_partitioning = false)
        WHERE list_contains($days, date) AND {_TENANT}"""  # noqa: S608 - constant text
_COVERAGE: Final = """
    WITH flagged AS ({flagged}
    ), privileged AS (
        SELECT tenant, subject, max(role) AS role,
            CASE WHEN bool_or(admin_tier) THEN 'admin' ELSE max(policy_tier) END AS policy_tier,
            max(last_seen) AS last_seen
        FROM flagged GROUP BY tenant, subject
    ), held AS (
        SELECT tenant, subject, list_sort(list(DISTINCT factor)) AS factors FROM (
            SELECT e.tenant, e.subject, e.factor, e.enrollment_id
            FROM lake_enrollments e
            SEMI JOIN privileged p ON p.tenant = e.tenant AND p.subject = e.subject
            WHERE e.status IN ('completed', 'removed')
              AND ($tenant IS NULL OR e.tenant = $tenant) AND ($until IS NULL OR e.time < $until)
            GROUP BY ALL
            HAVING bool_or(e.status = 'completed') AND NOT bool_or(e.status = 'removed')
        ) GROUP BY ALL
    ), used AS (
        SELECT s.tenant, s.subject,
            sum(s.successes) FILTER (WHERE s.strong)::BIGINT AS phishing_resistant_sign_ins,
            sum(s.successes) FILTER (WHERE NOT s.strong)::BIGINT AS other_sign_ins
        FROM (SELECT *, coalesce(list_contains($strong, factor), false) AS strong
            FROM ({successes})) s
        SEMI JOIN privileged p ON p.tenant = s.tenant AND p.subject = s.subject
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


def _sql(plan: Plan) -> str:
    """The query: days read raw, and those the rollups answer."""
    rolled = plan.rolled
    flagged = _FLAGGED + (_FLAGGED_ROLLED if rolled else "")
    successes = _SUCCESSES + (_SUCCESSES_ROLLED if rolled else "")
    return _COVERAGE.format(flagged=flagged, successes=successes)


def privileged_role_coverage(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """SOC 2 evidence: privileged subjects and whether they hold phishing-resistant MFA.

    Privileged: within the period, an ``mfa.required`` with a privileged ``role`` (or the
    ``privileged_role`` reason), or any event under the ``admin`` policy tier
    (``analytics.views.PRIVILEGED``). Enrolled factors are those completed before
    ``until`` and not removed since (all history).

    Columns: ``tenant``, ``subject``, ``role`` (null if only the tier says privileged),
    ``policy_tier``, ``phishing_resistant`` (a WebAuthn factor enrolled),
    ``enrolled_factors`` (sorted, comma-separated), ``phishing_resistant_sign_ins``,
    ``other_sign_ins`` (successful verifications in the period: with a phishing-resistant
    factor, with any other, a recovery code included), ``last_seen``.
    Uncovered subjects first. Filters: tenant, since, until.
    """
    return run_planned(con, filters, _sql, WHEN, strong=list(PHISHING_RESISTANT))
