"""Geo & anomalies: sign-ins on a map with impossible-travel arcs, and the anomaly feed."""

from __future__ import annotations

from typing import Any

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, html

from dashboard import figures
from dashboard.context import DashboardContext
from dashboard.layout import (
    FILTER_INPUTS,
    ROW_PICK,
    aria_label,
    filters_of,
    graph,
    grid_column,
    page_header,
    register_page,
    sized_grid,
)

register_page(
    __name__, path="/geo", name="Geo & anomalies", order=3, title="Geo & anomalies · factorstream"
)

FEED_COLUMNS = [
    grid_column("time", "Time (UTC)"),
    grid_column("tenant", "Tenant"),
    grid_column("subject", "Subject"),
    grid_column("detection", "Detection"),
    grid_column("severity", "Severity"),
    grid_column("score", "Score"),
    grid_column("summary", "Summary", flex=1, min_width=220),
]
FEED_HINT = (
    "Click a detection (or move to it with the arrow keys and press Space) to read it whole."
)


def feed_detail(row: dict[str, Any] | None) -> html.P | html.Dl:
    """The picked detection, every field in full (pure)."""
    if not row:
        return html.P(FEED_HINT, className="text-muted small mb-0")
    fields = [(c["headerName"], row.get(c["field"])) for c in FEED_COLUMNS]
    return html.Dl(
        [
            part
            for name, value in fields
            for part in (html.Dt(name), html.Dd("–" if value in (None, "") else str(value)))
        ],
        className="row-cols-1 mb-0",
    )


def layout(**_: object) -> html.Div:
    return html.Div(
        [
            page_header(
                "Geo & anomalies",
                "Where sign-ins come from; red arcs join the two sign-ins of an impossible "
                "travel detection.",
            ),
            dbc.Row(
                [
                    dbc.Col(graph("geo-map"), md=7),
                    dbc.Col(graph("geo-detections"), md=5),
                ]
            ),
            dbc.Card(
                dbc.CardBody(
                    [
                        html.H2("Anomaly feed", className="h6", id="anomaly-feed"),
                        dag.AgGrid(
                            id="geo-feed",
                            rowData=[],
                            style={"height": "300px"},
                            **sized_grid(FEED_COLUMNS, dashGridOptions={"rowSelection": ROW_PICK}),
                        ),
                        html.Section(
                            feed_detail(None),
                            id="geo-feed-detail",
                            className="feed-detail mt-2",
                            **aria_label("The detection", live=True),
                        ),
                    ]
                ),
                class_name="chart-card shadow-sm mb-3",
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

    @app.callback(Output("geo-feed-detail", "children"), Input("geo-feed", "selectedRows"))
    def detail(selected: Any) -> html.P | html.Dl:
        return feed_detail(selected[0] if selected else None)
