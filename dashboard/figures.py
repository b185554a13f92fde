"""Plotly figures, built by pure functions from query results (data in, figure out).

Every function takes a ``pandas.DataFrame`` with the columns its docstring names (the
shape :mod:`dashboard.data` hands over) and returns a ``plotly.graph_objects.Figure``. No
I/O, no clock, no global state: the same frame always gives the same figure. An empty
frame gives an empty figure that says so, never an error.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go

from dashboard.theme import (
    OUTCOME_COLOURS,
    PALETTE,
    SEVERITY_COLOURS,
    base,
    days_axis,
    empty,
    require,
    series,
)


def daily_outcomes(frame: pd.DataFrame) -> go.Figure:
    """Verifications per day stacked by outcome. Columns: ``day``, ``outcome``, ``count``."""
    require(frame, ("day", "outcome", "count"))
    figure = base("Verifications per day")
    if frame.empty:
        return empty(figure)
    for outcome, group in frame.sort_values("day").groupby("outcome", sort=True):
        figure.add_bar(
            name=str(outcome),
            x=series(group, "day"),
            y=series(group, "count"),
            marker_color=OUTCOME_COLOURS.get(str(outcome)),
        )
    figure.update_layout(barmode="stack", yaxis_title="verifications")
    days_axis(figure, frame["day"])
    return figure


def adoption_over_time(frame: pd.DataFrame) -> go.Figure:
    """MFA adoption rate per factor over time (enrolled / active subjects, 0–1).

    Columns: ``day``, ``factor``, ``adoption_rate``.
    """
    require(frame, ("day", "factor", "adoption_rate"))
    figure = base("MFA adoption by factor (enrolled / active subjects)")
    if frame.empty:
        return empty(figure)
    for factor, group in frame.sort_values("day").groupby("factor", sort=True):
        figure.add_scatter(
            name=str(factor),
            x=series(group, "day"),
            y=series(group, "adoption_rate"),
            mode="lines+markers",
        )
    figure.update_layout(yaxis={"tickformat": ".0%", "rangemode": "tozero"})
    days_axis(figure, frame["day"])
    return figure


def success_rates(frame: pd.DataFrame, *, by: str = "factor") -> go.Figure:
    """Verification success rate (0–1) per ``by`` (factor, application or tenant).

    Columns: ``by``, ``success_rate``, ``attempts``.
    """
    require(frame, (by, "success_rate", "attempts"))
    figure = base(f"Verification success rate by {by}")
    if frame.empty:
        return empty(figure)
    ordered = frame.sort_values("success_rate", ascending=False)
    figure.add_bar(
        name="success rate",
        x=[str(v) for v in ordered[by]],
        y=series(ordered, "success_rate"),
        customdata=series(ordered, "attempts"),
        hovertemplate="%{x}: %{y:.1%} of %{customdata} attempts<extra></extra>",
        marker_color=PALETTE[1],
    )
    figure.update_layout(yaxis={"tickformat": ".0%", "range": [0, 1.05]})
    return figure


def time_to_complete(frame: pd.DataFrame) -> go.Figure:
    """p50 and p95 time from challenge to verification per factor, in seconds.

    Columns: ``factor``, ``p50_ms``, ``p95_ms``.
    """
    require(frame, ("factor", "p50_ms", "p95_ms"))
    figure = base("Time to complete (challenge → verification)")
    if frame.empty:
        return empty(figure)
    ordered = frame.sort_values("factor")
    factors = [str(v) for v in ordered["factor"]]
    for label, column, colour in (("p50", "p50_ms", PALETTE[0]), ("p95", "p95_ms", PALETTE[4])):
        figure.add_bar(
            name=label,
            x=factors,
            y=[float(v) / 1000 for v in ordered[column]],
            marker_color=colour,
        )
    figure.update_layout(barmode="group", yaxis_title="seconds")
    return figure


def failure_reasons(frame: pd.DataFrame) -> go.Figure:
    """Failed verifications by reason, largest first. Columns: ``reason``, ``count``."""
    require(frame, ("reason", "count"))
    figure = base("Failure reasons")
    if frame.empty:
        return empty(figure)
    ordered = frame.sort_values("count", ascending=True)
    figure.add_bar(
        name="failures",
        x=series(ordered, "count"),
        y=[str(v) for v in ordered["reason"]],
        orientation="h",
        marker_color=PALETTE[2],
    )
    return figure


def sign_in_map(frame: pd.DataFrame, arcs: pd.DataFrame) -> go.Figure:
    """Sign-ins on a world map, sized by count, and impossible-travel arcs between them.

    ``frame`` columns: ``latitude``, ``longitude``, ``country``, ``outcome``, ``count``;
    ``arcs`` columns: ``from_lat``, ``from_lon``, ``to_lat``, ``to_lon``, ``label``.
    """
    require(frame, ("latitude", "longitude", "country", "outcome", "count"))
    require(arcs, ("from_lat", "from_lon", "to_lat", "to_lon", "label"))
    figure = base("Sign-ins and impossible travel", height=460)
    figure.update_geos(
        projection_type="natural earth",
        showcountries=True,
        countrycolor="#cbd5e1",
        showland=True,
        landcolor="#f8fafc",
        showocean=True,
        oceancolor="#eff6ff",
    )
    figure.update_layout(margin={"l": 0, "r": 0, "t": 48, "b": 0})
    located = frame.dropna(subset=["latitude", "longitude"])
    if located.empty and arcs.empty:
        figure.add_scattergeo(lat=[], lon=[], name="sign-ins")
        return empty(figure)
    peak = max(float(located["count"].max()), 1.0) if not located.empty else 1.0
    for outcome, group in located.groupby("outcome", sort=True):
        figure.add_scattergeo(
            name=f"sign-ins {outcome}",
            lat=series(group, "latitude"),
            lon=series(group, "longitude"),
            text=[f"{c}: {n}" for c, n in zip(group["country"], group["count"], strict=True)],
            hoverinfo="text",
            mode="markers",
            marker={
                "size": [6 + 24 * (float(n) / peak) ** 0.5 for n in group["count"]],
                "color": OUTCOME_COLOURS.get(str(outcome), PALETTE[0]),
                "opacity": 0.7,
                "line": {"width": 0.5, "color": "#ffffff"},
            },
        )
    for index, arc in enumerate(arcs.itertuples(index=False)):
        figure.add_scattergeo(
            name="impossible travel",
            legendgroup="impossible travel",
            showlegend=index == 0,
            lat=[arc.from_lat, arc.to_lat],
            lon=[arc.from_lon, arc.to_lon],
            mode="lines+markers",
            line={"width": 2, "color": SEVERITY_COLOURS["critical"]},
            marker={"size": 5, "color": SEVERITY_COLOURS["critical"]},
            text=[str(arc.label)] * 2,
            hoverinfo="text",
        )
    return figure


def detections_by_kind(frame: pd.DataFrame) -> go.Figure:
    """Risk detections per kind, stacked by severity.

    Columns: ``detection``, ``severity``, ``count``.
    """
    require(frame, ("detection", "severity", "count"))
    figure = base("Anomalies by detection", height=460)  # beside the map
    if frame.empty:
        return empty(figure)
    for severity, group in frame.groupby("severity", sort=True):
        figure.add_bar(  # horizontal: a detection's name reads whole, however long
            name=str(severity),
            y=[str(v) for v in group["detection"]],
            x=series(group, "count"),
            orientation="h",
            marker_color=SEVERITY_COLOURS.get(str(severity)),
        )
    figure.update_layout(barmode="stack", xaxis_title="detections")
    figure.update_yaxes(categoryorder="total ascending")
    return figure


def lockouts_over_time(frame: pd.DataFrame) -> go.Figure:
    """Lockouts applied per day, stacked by scope (subject, factor, ip).

    Columns: ``day``, ``scope``, ``count``.
    """
    require(frame, ("day", "scope", "count"))
    figure = base("Lockouts applied per day")
    if frame.empty:
        return empty(figure)
    for scope, group in frame.sort_values("day").groupby("scope", sort=True):
        figure.add_bar(name=str(scope), x=series(group, "day"), y=series(group, "count"))
    figure.update_layout(barmode="stack", yaxis_title="lockouts")
    days_axis(figure, frame["day"])
    return figure


def spend_over_time(frame: pd.DataFrame, *, by: str, title: str) -> go.Figure:
    """SMS and voice spend per day, stacked by ``by`` (country, tenant, provider).

    Columns: ``day``, ``by``, ``currency``, ``cost`` (currency units).
    """
    require(frame, ("day", by, "currency", "cost"))
    figure = base(title)
    if frame.empty:
        return empty(figure)
    currencies = sorted(str(c) for c in frame["currency"].unique())
    for (name, currency), group in frame.sort_values("day").groupby([by, "currency"], sort=True):
        label = f"{name} ({currency})" if len(currencies) > 1 else str(name)
        figure.add_bar(name=label, x=series(group, "day"), y=series(group, "cost"))
    figure.update_layout(barmode="stack", yaxis_title=f"spend ({', '.join(currencies)})")
    days_axis(figure, frame["day"])
    return figure


def delivery_health(frame: pd.DataFrame) -> go.Figure:
    """Delivered share of the receipts per provider and country (accepted is not delivered).

    Columns: ``label``, ``delivery_rate``, ``reported``.
    """
    require(frame, ("label", "delivery_rate", "reported"))
    figure = base("Delivery success by provider and country (receipts)")
    if frame.empty:
        return empty(figure)
    ordered = frame.sort_values("label")
    figure.add_bar(
        x=[str(v) for v in ordered["label"]],
        y=series(ordered, "delivery_rate"),
        customdata=series(ordered, "reported"),
        hovertemplate="%{x}: %{y:.1%} of %{customdata} receipts<extra></extra>",
        marker_color=PALETTE[1],
    )
    figure.update_layout(yaxis={"tickformat": ".0%", "range": [0, 1]})
    return figure


def pumping_spend(frame: pd.DataFrame) -> go.Figure:
    """Spend on sends an SMS-pumping detection flagged (paid) beside the spend the country
    cap refused (stopped), per day. Columns: ``day``, ``kind``, ``currency``, ``cost``."""
    require(frame, ("day", "kind", "currency", "cost"))
    figure = base("SMS pumping: spend paid while flagged vs stopped by the cap")
    if frame.empty:
        return empty(figure)
    colours = {"paid while flagged": PALETTE[2], "stopped by the cap": PALETTE[1]}
    for kind, group in frame.sort_values("day").groupby("kind", sort=True):
        figure.add_bar(
            name=str(kind),
            x=series(group, "day"),
            y=series(group, "cost"),
            marker_color=colours.get(str(kind)),
        )
    currencies = ", ".join(sorted(str(c) for c in frame["currency"].unique()))
    figure.update_layout(barmode="group", yaxis_title=f"spend ({currencies})")
    days_axis(figure, frame["day"])
    return figure


def lockout_reasons(frame: pd.DataFrame) -> go.Figure:
    """Lockouts by reason, as a donut. Columns: ``reason``, ``count``."""
    require(frame, ("reason", "count"))
    figure = base("Lockouts by reason")
    if frame.empty:
        return empty(figure)
    figure.add_pie(
        labels=[str(v) for v in frame["reason"]],
        values=series(frame, "count"),
        hole=0.5,
        sort=True,
    )
    return figure


def privileged_coverage(frame: pd.DataFrame) -> go.Figure:
    """Privileged subjects with and without phishing-resistant MFA, per role (SOC 2 evidence).

    Columns: ``role``, ``subjects``, ``covered``.
    """
    require(frame, ("role", "subjects", "covered"))
    figure = base("Phishing-resistant MFA coverage of privileged roles")
    if frame.empty:
        return empty(figure)
    ordered = frame.sort_values("role")
    roles = [str(v) for v in ordered["role"]]
    covered = [int(v) for v in ordered["covered"]]
    uncovered = [
        int(s) - int(c) for s, c in zip(ordered["subjects"], ordered["covered"], strict=True)
    ]
    figure.add_bar(name="phishing-resistant MFA", x=roles, y=covered, marker_color=PALETTE[1])
    figure.add_bar(name="without it", x=roles, y=uncovered, marker_color=PALETTE[2])
    figure.update_layout(barmode="stack", yaxis_title="subjects")
    return figure


def distribution(
    frame: pd.DataFrame, *, label: str, title: str, colours: Mapping[str, str] | None = None
) -> go.Figure:
    """A share-of-total donut (devices, SMS delivery, …). Columns: ``label``, ``count``;
    ``colours`` pins a colour to some labels (the others take the palette's)."""
    require(frame, (label, "count"))
    figure = base(title)
    if frame.empty:
        return empty(figure)
    labels = [str(v) for v in frame[label]]
    palette = [
        (colours or {}).get(name, PALETTE[index % len(PALETTE)])
        for index, name in enumerate(labels)
    ]
    figure.add_pie(
        labels=labels, values=series(frame, "count"), hole=0.5, marker={"colors": palette}
    )
    return figure


_GRANTED_STEPS = frozenset({"approved", "granted", "used", "trusted", "imported"})
_ASKED_STEPS = frozenset({"requested", "invited"})
_REFUSED_COLOURS = ("#dc2626", "#ea580c", "#9333ea", "#ca8a04", "#be185d", "#7c2d12")


def _step_colours(steps: list[str]) -> dict[str, str]:
    """Green for what was granted, blue for what was asked, warm colours (one per reason)
    for what was refused or revoked."""
    colours, refused = {}, 0
    for step in steps:
        kind = step.split(" · ")[0]
        if kind in _GRANTED_STEPS:
            colours[step] = OUTCOME_COLOURS["succeeded"]
        elif kind in _ASKED_STEPS:
            colours[step] = PALETTE[0]
        else:
            colours[step] = _REFUSED_COLOURS[refused % len(_REFUSED_COLOURS)]
            refused += 1
    return colours


def steps_over_time(frame: pd.DataFrame, *, title: str, unit: str) -> go.Figure:
    """Account-lifecycle steps per day, stacked by step (``refused · self_approval``, …).

    Columns: ``day``, ``step``, ``count``.
    """
    require(frame, ("day", "step", "count"))
    figure = base(title)
    if frame.empty:
        return empty(figure)
    colours = _step_colours(sorted(str(s) for s in frame["step"].unique()))
    for step, group in frame.sort_values("day").groupby("step", sort=True):
        figure.add_bar(
            name=str(step),
            x=series(group, "day"),
            y=series(group, "count"),
            marker_color=colours[str(step)],
        )
    figure.update_layout(barmode="stack", yaxis_title=unit)
    figure.update_xaxes(tickformat="%b %d", dtick=86_400_000)
    return figure


def trusted_devices_in_force(frame: pd.DataFrame) -> go.Figure:
    """Trusted devices per tenant as of the period's end: in force, revoked, expired.

    Columns: ``tenant``, ``active``, ``revoked``, ``expired``, ``subjects``.
    """
    require(frame, ("tenant", "active", "revoked", "expired", "subjects"))
    figure = base("Trusted devices as of the period's end")
    if frame.empty:
        return empty(figure)
    ordered = frame.sort_values("tenant")
    tenants = [str(t) for t in ordered["tenant"]]
    for column, colour in (("active", PALETTE[1]), ("revoked", PALETTE[2]), ("expired", "#64748b")):
        figure.add_bar(
            name="in force" if column == "active" else column,
            x=tenants,
            y=series(ordered, column),
            marker_color=colour,
            customdata=series(ordered, "subjects"),
            hovertemplate=f"%{{x}}: %{{y}} {column}"
            + (" (%{customdata} subjects)" if column == "active" else "")
            + "<extra></extra>",
        )
    figure.update_layout(barmode="group", yaxis_title="devices")
    return figure


def invitations(frame: pd.DataFrame) -> go.Figure:
    """Subjects invited to enrol vs enrolled since, per tenant and factor.

    Columns: ``tenant``, ``factor``, ``invited``, ``enrolled``.
    """
    require(frame, ("tenant", "factor", "invited", "enrolled"))
    figure = base("Invitations sent vs enrolled")
    if frame.empty:
        return empty(figure)
    ordered = frame.sort_values(["tenant", "factor"])
    labels = [f"{t} · {f}" for t, f in zip(ordered["tenant"], ordered["factor"], strict=True)]
    figure.add_bar(name="invited", x=labels, y=series(ordered, "invited"), marker_color=PALETTE[0])
    figure.add_bar(
        name="enrolled", x=labels, y=series(ordered, "enrolled"), marker_color=PALETTE[1]
    )
    figure.update_layout(barmode="group", yaxis_title="subjects")
    return figure
