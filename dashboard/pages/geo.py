"""Geo & anomalies: sign-ins on a map with impossible-travel arcs, and the anomaly feed."""

from __future__ import annotations

from typing import Any

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Dash, Output, html

from dashboard import figures
from dashboard.context import DashboardContext
from dashboard.layout import FILTER_INPUTS, filters_of, graph, page_header, register_page

register_page(
    __name__, path="/geo", name="Geo & anomalies", order=3, title="Geo & anomalies · factorstream"
)

FEED_COLUMNS = ("time", "tenant", "subject", "detection", "severity", "score", "summary")


def layout(**_: object) -> html.Div:
    return html.Div(
        [
            page_header(
                "Geo & anomalies",
                "Where sign-ins come from; red arcs join the two sign-ins of an impossible "
                "travel detection.",
            ),
            graph("geo-map"),
            dbc.Row(
                [
                    dbc.Col(graph("geo-detections"), md=5),
                    dbc.Col(
                        dbc.Card(
                            dbc.CardBody(
                                [
                                    html.H3("Anomaly feed", className="h6"),
                                    dag.AgGrid(
                                        id="geo-feed",
                                        columnDefs=[
                                            {"field": c, "flex": 3 if c == "summary" else 1}
                                            for c in FEED_COLUMNS
                                        ],
                                        rowData=[],
                                        defaultColDef={"sortable": True, "resizable": True},
                                        style={"height": "300px"},
                                        className="ag-theme-alpine",
                                    ),
                                ]
                            ),
                            class_name="chart-card shadow-sm mb-3",
                        ),
                        md=7,
                    ),
                ]
            ),
        ]
    )


def register_callbacks(app: Dash, context: DashboardContext) -> None:
    @app.callback(
        [
            Output("geo-map", "figure"),
            Output("geo-detections", "figure"),
            Output("geo-feed", "rowData"),
        ],
        FILTER_INPUTS,
    )
    def update(*values: Any) -> list[Any]:
        filters = filters_of(*values)
        frame = context.metrics.frame
        feed = frame("anomaly_feed", filters)
        return [
            figures.sign_in_map(frame("sign_ins_geo", filters), frame("travel_arcs", filters)),
            figures.detections_by_kind(frame("detections", filters)),
            feed.astype(object).where(feed.notna(), None).to_dict("records"),
        ]
