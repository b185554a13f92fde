"""Adoption: MFA adoption per factor over time; SMS delivery."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, Output, html

from dashboard import figures
from dashboard.context import DashboardContext
from dashboard.layout import FILTER_INPUTS, filters_of, graph, page_header, register_page
from dashboard.theme import OUTCOME_COLOURS

register_page(__name__, path="/adoption", name="Adoption", order=1, title="Adoption · factorstream")


def layout(**_: object) -> html.Div:
    return html.Div(
        [
            page_header(
                "Adoption",
                "Subjects with a completed enrollment of each factor, over subjects active "
                "so far, by day.",
            ),
            graph("adoption-over-time"),
            dbc.Row(dbc.Col(graph("adoption-sms"), md=6)),
        ]
    )


def register_callbacks(app: Dash, context: DashboardContext) -> None:
    @app.callback(
        [Output("adoption-over-time", "figure"), Output("adoption-sms", "figure")],
        FILTER_INPUTS,
    )
    def update(*values: Any) -> list[Any]:
        filters = filters_of(*values)
        return [
            figures.adoption_over_time(context.metrics.frame("adoption", filters)),
            figures.distribution(
                context.metrics.frame("sms_delivery", filters),
                label="label",
                title="SMS delivery (delivered vs failed)",
                colours=OUTCOME_COLOURS,
            ),
        ]
