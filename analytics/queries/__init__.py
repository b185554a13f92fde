"""The metric queries, by name: what the dashboard shows and SOC analysts can rerun.

Each query is ``name(con, filters) -> pandas.DataFrame`` over a connection from
:func:`analytics.views.connect`; its docstring lists the result columns. The SQL is
constant text: filter values are always bound parameters (``$tenant``, ``$since``, …),
never pasted into SQL. A filter left ``None`` does not restrict. ``since`` is inclusive,
``until`` exclusive; both are timezone-aware datetimes. Days are UTC dates (the lake's
``date`` partition). Sign-ins are ``auth.login.attempted`` and the verification outcomes
(the ``verifications`` table's types). Filters a query does not name are ignored.
Date columns (``day``) come back as pandas ``datetime64`` at midnight; times as
timezone-aware UTC timestamps.

``QUERIES`` maps each name to its function.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from analytics.columns import PHISHING_RESISTANT, PRIVILEGED_ROLES
from analytics.queries.adoption import mfa_adoption
from analytics.queries.compliance import privileged_role_coverage
from analytics.queries.filters import FEED_LIMIT, Filters, Query
from analytics.queries.lifecycle import (
    active_trusted_devices,
    invitation_conversion,
    lifecycle_over_time,
    migration_over_time,
    override_requests,
)
from analytics.queries.overview import overview_kpis
from analytics.queries.risk import (
    anomalies,
    impossible_travel_arcs,
    lockouts_over_time,
    push_fatigue_incidents,
)
from analytics.queries.signins import device_distribution, policy_tiers, sign_in_geography
from analytics.queries.sms import sms_delivery_health, sms_pumping_spend, sms_spend
from analytics.queries.verification import (
    failure_reasons,
    sms_delivery_failure_rate,
    time_to_complete,
    verification_success_rate,
)

__all__ = [
    "FEED_LIMIT",
    "PHISHING_RESISTANT",
    "PRIVILEGED_ROLES",
    "QUERIES",
    "Filters",
    "Query",
    "active_trusted_devices",
    "anomalies",
    "device_distribution",
    "failure_reasons",
    "impossible_travel_arcs",
    "invitation_conversion",
    "lifecycle_over_time",
    "lockouts_over_time",
    "mfa_adoption",
    "migration_over_time",
    "override_requests",
    "overview_kpis",
    "policy_tiers",
    "privileged_role_coverage",
    "push_fatigue_incidents",
    "sign_in_geography",
    "sms_delivery_failure_rate",
    "sms_delivery_health",
    "sms_pumping_spend",
    "sms_spend",
    "time_to_complete",
    "verification_success_rate",
]

QUERIES: Final[Mapping[str, Query]] = {
    query.__name__: query
    for query in (
        overview_kpis,
        mfa_adoption,
        verification_success_rate,
        time_to_complete,
        failure_reasons,
        device_distribution,
        sign_in_geography,
        anomalies,
        impossible_travel_arcs,
        lockouts_over_time,
        sms_delivery_failure_rate,
        sms_spend,
        sms_delivery_health,
        sms_pumping_spend,
        push_fatigue_incidents,
        privileged_role_coverage,
        policy_tiers,
        lifecycle_over_time,
        override_requests,
        active_trusted_devices,
        migration_over_time,
        invitation_conversion,
    )
}
"""Every metric query by name, in the order the dashboard shows them."""
