"""SMS and voice: spend over time by country, tenant and provider, delivery success from
providers' receipts, and the spend SMS-pumping detections flagged vs the caps stopped."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, Output, html

from dashboard import figures
from dashboard.context import DashboardContext
from dashboard.layout import FILTER_INPUTS, filters_of, graph, page_header, register_page

register_page(__name__, path="/sms", name="SMS", order=4.5, title="SMS · factorstream")

SPEND = (
    ("sms-spend-country", "sms_spend_country", "country", "SMS and voice spend by country"),
    ("sms-spend-tenant", "sms_spend_tenant", "tenant", "Spend by tenant"),
    ("sms-spend-provider", "sms_spend_provider", "provider", "Spend by provider"),
)


def layout(**_: object) -> html.Div:
    return html.Div(
        [
            page_header(
                "SMS",
                "What SMS and voice codes cost (mfa.challenge.sent), whether they arrived "
                "(providers' receipts), and the pumping spend the country caps stopped.",
            ),
            dbc.Row([dbc.Col(graph("sms-spend-country"), md=12)]),
            dbc.Row(
                [
                    dbc.Col(graph("sms-spend-tenant"), md=6),
                    dbc.Col(graph("sms-spend-provider"), md=6),
                ]
            ),
            dbc.Row(
                [
                    dbc.Col(graph("sms-delivery-health"), md=6),
                    dbc.Col(graph("sms-pumping-spend"), md=6),
                ]
            ),
        ]
    )


def register_callbacks(app: Dash, context: DashboardContext) -> None:
    @app.callback(
        [
            *(Output(graph_id, "figure") for graph_id, *_ in SPEND),
            Output("sms-delivery-health", "figure"),
            Output("sms-pumping-spend", "figure"),
        ],
        FILTER_INPUTS,
    )
    def update(*values: Any) -> list[Any]:
        filters = filters_of(*values)
        frame = context.metrics.frame
        spend = [
            figures.spend_over_time(frame(metric, filters), by=by, title=title)
            for _, metric, by, title in SPEND
        ]
        return [
            *spend,
            figures.delivery_health(frame("sms_delivery_health", filters)),
            figures.pumping_spend(frame("sms_pumping_spend", filters)),
        ]
