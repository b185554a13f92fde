"""Lockouts: applied per day by scope, and by reason."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, Output, html

from dashboard import figures
from dashboard.context import DashboardContext
from dashboard.layout import FILTER_INPUTS, filters_of, graph, page_header, register_page

register_page(__name__, path="/lockouts", name="Lockouts", order=4, title="Lockouts · factorstream")


def layout(**_: object) -> html.Div:
    return html.Div(
        [
            page_header(
                "Lockouts",
                "Subject, factor and IP lockouts the stream applied (lockout.applied, "
                "ip.block.applied).",
            ),
            dbc.Row(
                [
                    dbc.Col(graph("lockouts-daily"), md=8),
                    dbc.Col(graph("lockouts-reasons"), md=4),
                ]
            ),
        ]
    )


def register_callbacks(app: Dash, context: DashboardContext) -> None:
    @app.callback(
        [Output("lockouts-daily", "figure"), Output("lockouts-reasons", "figure")],
        FILTER_INPUTS,
    )
    def update(*values: Any) -> list[Any]:
        filters = filters_of(*values)
        return [
            figures.lockouts_over_time(context.metrics.frame("lockouts_daily", filters)),
            figures.lockout_reasons(context.metrics.frame("lockout_reasons", filters)),
        ]
