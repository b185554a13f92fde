"""Verification: success rates by factor and application, time to complete, failures."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, Output, html

from dashboard import figures
from dashboard.context import DashboardContext
from dashboard.layout import FILTER_INPUTS, filters_of, graph, page_header, register_page

register_page(
    __name__,
    path="/verification",
    name="Verification",
    order=2,
    title="Verification · factorstream",
)


def layout(**_: object) -> html.Div:
    return html.Div(
        [
            page_header(
                "Verification",
                "Success rates, and time from challenge to verification (p50 / p95).",
            ),
            dbc.Row(
                [
                    dbc.Col(graph("verification-by-factor"), md=6),
                    dbc.Col(graph("verification-by-application"), md=6),
                ]
            ),
            dbc.Row(
                [
                    dbc.Col(graph("verification-time"), md=6),
                    dbc.Col(graph("verification-failures"), md=6),
                ]
            ),
        ]
    )


def register_callbacks(app: Dash, context: DashboardContext) -> None:
    @app.callback(
        [
            Output("verification-by-factor", "figure"),
            Output("verification-by-application", "figure"),
            Output("verification-time", "figure"),
            Output("verification-failures", "figure"),
        ],
        FILTER_INPUTS,
    )
    def update(*values: Any) -> list[Any]:
        filters = filters_of(*values)
        frame = context.metrics.frame
        return [
            figures.success_rates(frame("success_by_factor", filters), by="factor"),
            figures.success_rates(frame("success_by_application", filters), by="application"),
            figures.time_to_complete(frame("time_to_complete", filters)),
            figures.failure_reasons(frame("failure_reasons", filters)),
        ]
