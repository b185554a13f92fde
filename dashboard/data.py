"""Query results for the figures: each metric as a DataFrame in the shape ``figures`` takes.

The numbers come from the named metric queries of :mod:`analytics.queries` over a private
in-memory DuckDB with views on the lake (:func:`analytics.views.connect`: the dashboard
never opens a file a writer holds). The functions here only reshape their results (pure:
frame in, frame out). Three small queries the analytics module does not have (verification
outcomes per day, lockouts by reason, the values of the filter dropdowns) are constant SQL
texts here; like every query, they take the filter values as bound parameters only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import duckdb
import pandas as pd

from analytics.queries import QUERIES, Filters
from analytics.views import connect, fetch
from dashboard.filters import DashboardFilters

LOCAL: Final[Mapping[str, str]] = {
    "daily_outcomes": """
        SELECT date AS day, CASE WHEN success THEN 'succeeded' ELSE 'failed' END AS outcome,
               count(*) AS count
        FROM lake_verifications
        WHERE ($tenant IS NULL OR tenant = $tenant)
          AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
          AND ($factor IS NULL OR factor = $factor)
          AND ($application IS NULL OR application = $application)
        GROUP BY ALL ORDER BY day, outcome""",
    "lockout_reasons": """
        SELECT coalesce(reason, 'unknown') AS reason, count(*) AS count
        FROM lake_lockouts
        WHERE action = 'applied' AND ($tenant IS NULL OR tenant = $tenant)
          AND ($since IS NULL OR time >= $since) AND ($until IS NULL OR time < $until)
          AND ($factor IS NULL OR factor = $factor)
        GROUP BY ALL ORDER BY count DESC""",
    "tenants": "SELECT DISTINCT tenant AS value FROM lake_events WHERE tenant IS NOT NULL "
    "ORDER BY 1",
    "applications": "SELECT DISTINCT application AS value FROM lake_events "
    "WHERE application IS NOT NULL ORDER BY 1",
}


def analytics_filters(filters: DashboardFilters, *, now: datetime | None = None) -> Filters:
    """The analytics queries' filters; ``now`` answers *as of* questions without an end."""
    return Filters(
        tenant=filters.tenant,
        since=filters.start,
        until=filters.end,
        factor=filters.factor,
        application=filters.application,
        as_of=now,
    )


def _bind(sql: str, filters: Filters) -> dict[str, object]:
    names = ("tenant", "since", "until", "factor", "application")
    return {name: getattr(filters, name) for name in names if f"${name}" in sql}


# -- pure reshaping: analytics result → figure input ------------------------------------


def success_by(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """``verification_success_rate`` rolled up by ``by``: ``by``, ``success_rate``, ``attempts``."""
    if frame.empty:
        return pd.DataFrame({by: [], "success_rate": [], "attempts": []})
    rolled = frame.groupby(by, dropna=True)[["succeeded", "verifications"]].sum().reset_index()
    rolled["success_rate"] = rolled["succeeded"] / rolled["verifications"]
    return rolled.rename(columns={"verifications": "attempts"})[[by, "success_rate", "attempts"]]


def reasons(frame: pd.DataFrame) -> pd.DataFrame:
    """``failure_reasons`` summed over factors: ``reason``, ``count``."""
    if frame.empty:
        return pd.DataFrame({"reason": [], "count": []})
    rolled = frame.assign(reason=frame["reason"].fillna("unknown"))
    return (
        rolled.groupby("reason")["failures"]
        .sum()
        .reset_index()
        .rename(columns={"failures": "count"})
    )


def geo_points(frame: pd.DataFrame) -> pd.DataFrame:
    """``sign_in_geography`` split by outcome: ``latitude``, ``longitude``, ``country``,
    ``outcome`` (succeeded / failed), ``count``; points without sign-ins of an outcome dropped."""
    columns = ["latitude", "longitude", "country", "outcome", "count"]
    if frame.empty:
        return pd.DataFrame({c: [] for c in columns})
    base = frame.assign(country=frame["country"].fillna("??"))
    ok = base.assign(outcome="succeeded", count=base["sign_ins"] - base["failures"])
    failed = base.assign(outcome="failed", count=base["failures"])
    both = pd.concat([ok, failed], ignore_index=True)
    return both[both["count"] > 0][columns].reset_index(drop=True)


def arcs(frame: pd.DataFrame) -> pd.DataFrame:
    """``impossible_travel_arcs`` as ``from_lat``, ``from_lon``, ``to_lat``, ``to_lon``,
    ``label``."""
    if frame.empty:
        return pd.DataFrame({c: [] for c in ("from_lat", "from_lon", "to_lat", "to_lon", "label")})
    labels = [
        f"{subject}: {a or '??'} → {b or '??'}"
        + (f" at {speed:,.0f} km/h" if pd.notna(speed) else "")
        for subject, a, b, speed in zip(
            frame["subject"],
            frame["from_country"],
            frame["to_country"],
            frame["speed_kmh"],
            strict=True,
        )
    ]
    return pd.DataFrame(
        {
            "from_lat": frame["from_latitude"],
            "from_lon": frame["from_longitude"],
            "to_lat": frame["to_latitude"],
            "to_lon": frame["to_longitude"],
            "label": labels,
        }
    )


def detection_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """``anomalies`` counted: ``detection``, ``severity``, ``count``."""
    if frame.empty:
        return pd.DataFrame({"detection": [], "severity": [], "count": []})
    return frame.groupby(["detection", "severity"]).size().reset_index(name="count")


def feed(frame: pd.DataFrame) -> pd.DataFrame:
    """``anomalies`` for the grid: time as text, no evidence blob."""
    columns = ["time", "tenant", "subject", "detection", "severity", "score", "summary"]
    if frame.empty:
        return pd.DataFrame({c: [] for c in columns})
    shown = frame[columns].copy()
    shown["time"] = [t.strftime("%Y-%m-%d %H:%M:%S") for t in shown["time"]]
    return shown


def lockouts_daily(frame: pd.DataFrame) -> pd.DataFrame:
    """``lockouts_over_time`` applied only: ``day``, ``scope``, ``count``."""
    if frame.empty:
        return pd.DataFrame({"day": [], "scope": [], "count": []})
    applied = frame[frame["applied"] > 0]
    return applied.rename(columns={"applied": "count"})[["day", "scope", "count"]]


def coverage(frame: pd.DataFrame) -> pd.DataFrame:
    """``privileged_role_coverage`` per role: ``role``, ``subjects``, ``covered``
    (phishing-resistant MFA enrolled); subjects privileged by tier only count as ``admin tier``."""
    if frame.empty:
        return pd.DataFrame({"role": [], "subjects": [], "covered": []})
    roles = frame["role"].fillna("admin tier")
    grouped = frame.assign(role=roles, covered=frame["phishing_resistant"].astype(int))
    rolled = grouped.groupby("role").agg(subjects=("subject", "size"), covered=("covered", "sum"))
    return rolled.reset_index()


def devices(frame: pd.DataFrame) -> pd.DataFrame:
    """``device_distribution`` by kind: ``label``, ``count`` (sign-ins)."""
    if frame.empty:
        return pd.DataFrame({"label": [], "count": []})
    rolled = frame.groupby("device_kind")["sign_ins"].sum().reset_index()
    return rolled.rename(columns={"device_kind": "label", "sign_ins": "count"})


def sms_delivery(frame: pd.DataFrame) -> pd.DataFrame:
    """``sms_delivery_failure_rate`` summed: ``label`` (delivered / failed), ``count``."""
    if frame.empty or int(frame["attempted"].sum()) == 0:
        return pd.DataFrame({"label": [], "count": []})
    failed = int(frame["failed"].sum())
    return pd.DataFrame(
        {
            "label": ["delivered", "failed"],
            "count": [int(frame["attempted"].sum()) - failed, failed],
        }
    )


def tiers(frame: pd.DataFrame) -> pd.DataFrame:
    """``policy_tiers`` as ``label``, ``count`` (sign-ins per tier)."""
    if frame.empty:
        return pd.DataFrame({"label": [], "count": []})
    return frame.rename(columns={"policy_tier": "label", "sign_ins": "count"})[["label", "count"]]


def spend_over_time(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """``sms_spend`` per day and ``by`` (``country``, ``tenant`` or ``provider``):
    ``day``, ``by``, ``currency``, ``sends``, ``cost_micros``, ``cost`` (currency units for
    display; the sum itself is done in integer micros, exact)."""
    columns = ["day", by, "currency", "sends", "cost_micros", "cost"]
    if frame.empty:
        return pd.DataFrame({c: [] for c in columns})
    rolled = frame.groupby(["day", by, "currency"])[["sends", "cost_micros"]].sum().reset_index()
    rolled["cost"] = rolled["cost_micros"] / 1_000_000
    return rolled[columns]


def delivery_health(frame: pd.DataFrame) -> pd.DataFrame:
    """``sms_delivery_health`` labelled: ``label`` (``provider · country``), ``sent``,
    ``reported``, ``delivered``, ``delivery_rate``; pairs without receipts left out."""
    columns = ["label", "sent", "reported", "delivered", "delivery_rate"]
    reported = frame[frame["reported"] > 0] if not frame.empty else frame
    if reported.empty:
        return pd.DataFrame({c: [] for c in columns})
    labels = [f"{p} · {c}" for p, c in zip(reported["provider"], reported["country"], strict=True)]
    return reported.assign(label=labels)[columns].reset_index(drop=True)


def pumping_spend(frame: pd.DataFrame) -> pd.DataFrame:
    """``sms_pumping_spend`` per day and kind: ``day``, ``kind`` (``paid while flagged`` /
    ``stopped by the cap``), ``currency``, ``sends``, ``cost``."""
    columns = ["day", "kind", "currency", "sends", "cost"]
    if frame.empty:
        return pd.DataFrame({c: [] for c in columns})
    names = {"flagged": "paid while flagged", "refused": "stopped by the cap"}
    rolled = frame.groupby(["day", "kind", "currency"])[["sends", "cost_micros"]].sum()
    rolled = rolled.reset_index()
    rolled["kind"] = rolled["kind"].map(names)
    rolled["cost"] = rolled["cost_micros"] / 1_000_000
    return rolled[columns]


def lifecycle_steps(frame: pd.DataFrame, ceremony: str) -> pd.DataFrame:
    """``lifecycle_over_time`` of one ceremony: ``day``, ``step`` (the status, with the
    reason of a refusal or revocation: ``refused · self_approval``), ``count`` (events;
    devices ended, for a revocation)."""
    columns = ["day", "step", "count"]
    rows = frame[frame["ceremony"] == ceremony] if not frame.empty else frame
    if rows.empty:
        return pd.DataFrame({c: [] for c in columns})
    steps = [
        str(status) if pd.isna(reason) else f"{status} · {reason}"
        for status, reason in zip(rows["status"], rows["reason"], strict=True)
    ]
    counts = rows["devices"].where(rows["status"] == "revoked", rows["events"])
    shaped = pd.DataFrame({"day": rows["day"], "step": steps, "count": counts})
    return shaped.groupby(["day", "step"])["count"].sum().reset_index()


def override_table(frame: pd.DataFrame) -> pd.DataFrame:
    """``override_requests`` for the grid: times as text, missing values empty."""
    columns = [
        "requested_at",
        "tenant",
        "subject",
        "action",
        "requested_by",
        "approved_by",
        "ticket",
        "outcome",
        "refusal_reasons",
        "request_id",
    ]
    if frame.empty:
        return pd.DataFrame({c: [] for c in columns})
    shown = frame[columns].copy()
    shown["requested_at"] = [t.strftime("%Y-%m-%d %H:%M:%S") for t in shown["requested_at"]]
    return shown


def migration_steps(frame: pd.DataFrame) -> pd.DataFrame:
    """``migration_over_time`` per day: ``day``, ``step`` (``imported · <source>`` or
    ``invited``), ``count``."""
    columns = ["day", "step", "count"]
    if frame.empty:
        return pd.DataFrame({c: [] for c in columns})
    steps = [
        f"imported · {source}" if kind == "imported" else str(kind)
        for kind, source in zip(frame["kind"], frame["source"], strict=True)
    ]
    shaped = frame.assign(step=steps)
    return shaped.groupby(["day", "step"])["count"].sum().reset_index()


OPTIONS_TTL_S: Final = 60.0
"""How long the filter dropdowns' values (tenants, applications) are reused."""

Shape = Callable[[pd.DataFrame], pd.DataFrame]
METRICS: Final[Mapping[str, tuple[str, Shape | None]]] = {
    "kpis": ("overview_kpis", None),
    "daily_outcomes": ("daily_outcomes", None),
    "adoption": ("mfa_adoption", None),
    "success_by_factor": ("verification_success_rate", lambda f: success_by(f, "factor")),
    "success_by_application": (
        "verification_success_rate",
        lambda f: success_by(f, "application"),
    ),
    "success_by_tenant": ("verification_success_rate", lambda f: success_by(f, "tenant")),
    "time_to_complete": ("time_to_complete", lambda f: f.dropna(subset=["p50_ms"])),
    "failure_reasons": ("failure_reasons", reasons),
    "sign_ins_geo": ("sign_in_geography", geo_points),
    "travel_arcs": ("impossible_travel_arcs", arcs),
    "detections": ("anomalies", detection_counts),
    "anomaly_feed": ("anomalies", feed),
    "lockouts_daily": ("lockouts_over_time", lockouts_daily),
    "lockout_reasons": ("lockout_reasons", None),
    "privileged_coverage": ("privileged_role_coverage", coverage),
    "devices": ("device_distribution", devices),
    "sms_delivery": ("sms_delivery_failure_rate", sms_delivery),
    "policy_tiers": ("policy_tiers", tiers),
    "sms_spend_country": ("sms_spend", lambda f: spend_over_time(f, "country")),
    "sms_spend_tenant": ("sms_spend", lambda f: spend_over_time(f, "tenant")),
    "sms_spend_provider": ("sms_spend", lambda f: spend_over_time(f, "provider")),
    "sms_delivery_health": ("sms_delivery_health", delivery_health),
    "sms_pumping_spend": ("sms_pumping_spend", pumping_spend),
    "override_steps": ("lifecycle_over_time", lambda f: lifecycle_steps(f, "override")),
    "temporary_access_steps": (
        "lifecycle_over_time",
        lambda f: lifecycle_steps(f, "temporary_access"),
    ),
    "device_steps": ("lifecycle_over_time", lambda f: lifecycle_steps(f, "trusted_device")),
    "override_requests": ("override_requests", override_table),
    "trusted_devices_in_force": ("active_trusted_devices", None),
    "migration": ("migration_over_time", migration_steps),
    "invitations": ("invitation_conversion", None),
}
"""Each dashboard metric: the query it runs (analytics' or a local one) and its reshaping."""


class LakeMetrics:
    """The metrics over the lake at ``lake`` (the views re-list the files on every query)."""

    def __init__(self, lake: Path) -> None:
        self.lake = lake
        self._lock = threading.Lock()
        self._connection = connect(lake, analyst=True)
        self._options: dict[str, tuple[float, list[str]]] = {}

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:  # a cursor per query: DuckDB connections are not shared by threads
            return self._connection.cursor()

    def run(self, query: str, filters: Filters) -> pd.DataFrame:
        """One query by name: an analytics query, else one of :data:`LOCAL`."""
        cursor = self._cursor()
        try:
            if query in QUERIES:
                return QUERIES[query](cursor, filters)
            sql = LOCAL[query]
            return fetch(cursor, sql, _bind(sql, filters))
        finally:
            cursor.close()

    def frame(self, metric: str, filters: DashboardFilters) -> pd.DataFrame:
        """The figure input of ``metric`` under ``filters`` (an unknown metric: KeyError)."""
        query, shape = METRICS[metric]
        now = datetime.now(UTC)  # the dashboard's clock, read here at the edge
        result = self.run(query, analytics_filters(filters, now=now))
        return shape(result) if shape is not None else result

    def options(self, name: str) -> list[str]:
        """Distinct values for a filter dropdown (``tenants`` or ``applications``); a scan
        of the events, so kept for :data:`OPTIONS_TTL_S` seconds."""
        cached = self._options.get(name)
        if cached is not None and time.monotonic() - cached[0] < OPTIONS_TTL_S:
            return cached[1]
        values = [str(v) for v in self.run(name, Filters())["value"]]
        self._options[name] = (time.monotonic(), values)
        return values
