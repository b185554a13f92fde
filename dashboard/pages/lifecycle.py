"""Account lifecycle: the two-person override and temporary access (the auditor's view of
who asked, who approved, and what was refused), trusted devices, migration and bulk
enrolment. Filtered by tenant and period (an override or a trust is no application's)."""

from __future__ import annotations

from typing import Any

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Dash, Output, html

from dashboard import figures
from dashboard.context import DashboardContext
from dashboard.layout import FILTER_INPUTS, filters_of, graph, page_header, register_page

register_page(
    __name__,
    path="/lifecycle",
    name="Lifecycle",
    order=4.7,
    title="Account lifecycle · factorstream",
)

STEPS = (
    (
        "lifecycle-overrides",
        "override_steps",
        "Admin overrides: requests, approvals, refusals",
        "events",
    ),
    (
        "lifecycle-temporary-access",
        "temporary_access_steps",
        "Temporary-access codes: granted, used, refused",
        "events",
    ),
    (
        "lifecycle-devices",
        "device_steps",
        "Trusted devices: trusted, revoked, refused",
        "devices (refusals: events)",
    ),
    (
        "lifecycle-migration",
        "migration",
        "Seeds imported (by source) and invitations sent",
        "subjects",
    ),
)
REQUEST_COLUMNS = (
    ("requested_at", "Requested (UTC)", 2),
    ("tenant", "Tenant", 1),
    ("subject", "Subject", 1),
    ("action", "Action", 1.5),
    ("requested_by", "Requested by", 1),
    ("approved_by", "Approved by", 1),
    ("ticket", "Ticket", 1),
    ("outcome", "Outcome", 1),
    ("refusal_reasons", "Refused attempts", 1.5),
)


def _requests_grid() -> dbc.Card:
    return dbc.Card(
        dbc.CardBody(
            [
                html.H3("Override requests (two-person rule)", className="h6"),
                dag.AgGrid(
                    id="lifecycle-requests",
                    columnDefs=[
                        {"field": field, "headerName": header, "flex": flex}
                        for field, header, flex in REQUEST_COLUMNS
                    ],
                    rowData=[],
                    defaultColDef={"sortable": True, "resizable": True, "filter": True},
                    style={"height": "320px"},
                    className="ag-theme-alpine",
                ),
            ]
        ),
        class_name="chart-card shadow-sm mb-3",
    )


def layout(**_: object) -> html.Div:
    return html.Div(
        [
            page_header(
                "Account lifecycle",
                "Overrides under the two-person rule (admin.override.*), temporary-access "
                "codes (access.temporary.*), trusted devices (device.*), and migration "
                "(imported seeds, bulk invitations).",
            ),
            dbc.Row(
                [
                    dbc.Col(graph("lifecycle-overrides"), md=7),
                    dbc.Col(graph("lifecycle-temporary-access"), md=5),
                ]
            ),
            _requests_grid(),
            dbc.Row(
                [
                    dbc.Col(graph("lifecycle-devices"), md=7),
                    dbc.Col(graph("lifecycle-devices-in-force"), md=5),
                ]
            ),
            dbc.Row(
                [
                    dbc.Col(graph("lifecycle-migration"), md=7),
                    dbc.Col(graph("lifecycle-invitations"), md=5),
                ]
            ),
        ]
    )


def register_callbacks(app: Dash, context: DashboardContext) -> None:
    @app.callback(
        [
            *(Output(graph_id, "figure") for graph_id, *_ in STEPS),
            Output("lifecycle-requests", "rowData"),
            Output("lifecycle-devices-in-force", "figure"),
            Output("lifecycle-invitations", "figure"),
        ],
        FILTER_INPUTS,
    )
    def update(*values: Any) -> list[Any]:
        filters = filters_of(*values)
        frame = context.metrics.frame
        steps = [
            figures.steps_over_time(frame(metric, filters), title=title, unit=unit)
            for _, metric, title, unit in STEPS
        ]
        requests = frame("override_requests", filters)
        return [
            *steps,
            requests.astype(object).where(requests.notna(), None).to_dict("records"),
            figures.trusted_devices_in_force(frame("trusted_devices_in_force", filters)),
            figures.invitations(frame("invitations", filters)),
        ]
