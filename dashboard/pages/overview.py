"""Overview: the headline numbers, verifications per day, devices."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
import pandas as pd
from dash import Dash, Output, dcc, html

from dashboard import figures
from dashboard.context import DashboardContext
from dashboard.exports import rows_href
from dashboard.layout import FILTER_INPUTS, filters_of, graph, page_header, register_page

register_page(__name__, path="/", name="Overview", order=0, title="Overview · factorstream")

VERIFICATIONS = ("mfa.verification.succeeded", "mfa.verification.failed")
KPIS = (  # key, label, the event types of the rows behind the number
    ("verifications", "Verifications", VERIFICATIONS),
    ("success_rate", "Success rate", VERIFICATIONS),
    ("p50", "Time to complete (p50)", ("mfa.verification.succeeded",)),
    ("lockouts", "Lockouts applied", ("lockout.applied", "ip.block.applied")),
    ("anomalies", "Anomalies (high risk)", ("risk.detected",)),
    (
        "sms",
        "SMS delivery failures",
        ("mfa.challenge.delivery_failed", "mfa.challenge.delivery_reported"),
    ),
)
"""Each tile links to its rows in the audit trail (under the same shared filters)."""


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _rate(value: Any) -> str:
    number = _number(value)
    return "–" if number is None else f"{number:.1%}"


def kpi_values(row: dict[str, Any]) -> dict[str, str]:
    """The KPI cards' texts from ``overview_kpis``' one row (pure)."""
    p50 = _number(row.get("p50_time_to_complete_ms"))
    anomalies = int(_number(row.get("risk_detections")) or 0)
    high = int(_number(row.get("high_risk_detections")) or 0)
    return {
        "verifications": f"{int(_number(row.get('verifications')) or 0):,}",
        "success_rate": _rate(row.get("success_rate")),
        "p50": "–" if p50 is None else f"{p50 / 1000:.1f} s",
        "lockouts": f"{int(_number(row.get('lockouts_applied')) or 0):,}",
        "anomalies": f"{anomalies:,} ({high:,})",
        "sms": _rate(row.get("sms_delivery_failure_rate")),
    }


def _card(key: str, label: str, types: tuple[str, ...]) -> dbc.Col:
    return dbc.Col(
        dcc.Link(
            dbc.Card(
                dbc.CardBody(
                    [
                        html.Div(label, className="kpi-label"),
                        html.Div("…", id=f"kpi-{key}", className="kpi-value"),
                        html.Div("Show the rows →", className="kpi-more"),
                    ]
                ),
                class_name="kpi-card shadow-sm h-100",
            ),
            href=rows_href(types),
            id=f"kpi-{key}-rows",
            className="kpi-link h-100",
            title=f"{label}: the {', '.join(types)} events in the audit trail",
        ),
        md=2,
    )


def layout(**_: object) -> html.Div:
    return html.Div(
        [
            page_header("Overview", "Verifications, adoption and incidents under the filters."),
            dbc.Row([_card(*kpi) for kpi in KPIS], class_name="g-3 mb-3"),
            dbc.Row(
                [
                    dbc.Col(graph("overview-daily"), md=8),
                    dbc.Col(graph("overview-devices"), md=4),
                ]
            ),
        ]
    )


def register_callbacks(app: Dash, context: DashboardContext) -> None:
    outputs = [Output(f"kpi-{key}", "children") for key, *_ in KPIS]

    @app.callback(
        [*outputs, Output("overview-daily", "figure"), Output("overview-devices", "figure")],
        FILTER_INPUTS,
    )
    def update(*values: Any) -> list[Any]:
        filters = filters_of(*values)
        kpis = context.metrics.frame("kpis", filters)
        texts = kpi_values(kpis.iloc[0].to_dict() if not kpis.empty else {})
        return [
            *(texts[key] for key, *_ in KPIS),
            figures.daily_outcomes(context.metrics.frame("daily_outcomes", filters)),
            figures.distribution(
                context.metrics.frame("devices", filters),
                label="label",
                title="Verifications by device kind",
            ),
        ]
