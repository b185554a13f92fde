"""The shell around every page: navbar, sidebar, the shared filters, the page container."""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, dcc, html

from dashboard.filters import ALL, DashboardFilters, from_inputs
from dashboard.users import User, may_export

FACTORS = ("totp", "webauthn", "sms", "voice", "email", "push", "recovery_code")

GRAPH_CONFIG: dcc.Graph.Config = {"displayModeBar": False, "topojsonURL": "/assets/topojson/"}
"""Maps draw from the bundled Natural Earth topojson (``assets/topojson``), never a CDN."""

FILTER_INPUTS = [
    Input("filter-tenant", "value"),
    Input("filter-dates", "start_date"),
    Input("filter-dates", "end_date"),
    Input("filter-factor", "value"),
    Input("filter-application", "value"),
]
"""Every page callback takes these first (in this order), then its own inputs."""


def register_page(module: str, **options: Any) -> None:
    """``dash.register_page`` (typed): every page module calls it with its ``__name__``."""
    dash.register_page(module, **options)  # type: ignore[no-untyped-call]


def filters_of(
    tenant: Any, start: Any, end: Any, factor: Any, application: Any
) -> DashboardFilters:
    return from_inputs(tenant, (start, end), factor, application)


def _choices(values: list[str], every: str) -> list[dict[str, str]]:
    return [{"label": every, "value": ALL}] + [{"label": v, "value": v} for v in values]


def _filter_dropdown(component_id: str, values: list[str], every: str) -> dcc.Dropdown:
    """A filter of the bar: ``every`` (all) or one of ``values``, kept for the session."""
    return dcc.Dropdown(
        id=component_id,
        options=_choices(values, every),
        value=ALL,
        clearable=False,
        persistence=True,
        persistence_type="session",
    )


def filter_bar(*, tenants: list[str], applications: list[str]) -> dbc.Card:
    def labelled(label: str, control: Any, width: int) -> dbc.Col:
        return dbc.Col([dbc.Label(label, class_name="filter-label"), control], md=width)

    return dbc.Card(
        dbc.CardBody(
            dbc.Row(
                [
                    labelled(
                        "Tenant",
                        _filter_dropdown("filter-tenant", tenants, "All tenants"),
                        3,
                    ),
                    labelled(
                        "Date range (UTC)",
                        dcc.DatePickerRange(
                            id="filter-dates",
                            clearable=True,
                            display_format="YYYY-MM-DD",
                            persistence=True,
                            persistence_type="session",
                        ),
                        3,
                    ),
                    labelled(
                        "Factor",
                        _filter_dropdown("filter-factor", list(FACTORS), "All factors"),
                        3,
                    ),
                    labelled(
                        "Application",
                        _filter_dropdown("filter-application", applications, "All applications"),
                        3,
                    ),
                ],
                class_name="g-3",
            )
        ),
        class_name="filter-bar shadow-sm mb-3",
    )


def navbar(user: User | None) -> dbc.Navbar:
    name, role = (user.name, str(user.role)) if user is not None else ("", "")
    rights = "read + export" if user is not None and may_export(user.role) else "read only"
    return dbc.Navbar(
        dbc.Container(
            [
                dbc.NavbarBrand(
                    [html.Span("factorstream", className="brand"), " · MFA audit"], href="/"
                ),
                html.Div(
                    [
                        html.Span(name, id="signed-in-user", className="me-2 text-white"),
                        dbc.Badge(f"{role} · {rights}", color="light", text_color="dark"),
                        html.Form(
                            html.Button("Sign out", className="btn btn-sm btn-outline-light ms-3"),
                            action="/logout",
                            method="post",
                            className="d-inline",
                        ),
                    ],
                    className="d-flex align-items-center",
                ),
            ],
            fluid=True,
        ),
        color="dark",
        dark=True,
        class_name="mb-0",
    )


def sidebar() -> html.Nav:
    pages = sorted(dash.page_registry.values(), key=lambda page: page["order"] or 0)
    return html.Nav(
        dbc.Nav(
            [
                dbc.NavLink(page["name"], href=page["relative_path"], active="exact")
                for page in pages
            ],
            vertical=True,
            pills=True,
        ),
        className="sidebar",
    )


def shell(user: User | None, *, tenants: list[str], applications: list[str]) -> html.Div:
    return html.Div(
        [
            navbar(user),
            html.Div(
                [
                    sidebar(),
                    html.Main(
                        [
                            filter_bar(tenants=tenants, applications=applications),
                            dash.page_container,
                        ],
                        className="content",
                    ),
                ],
                className="body-row",
            ),
        ]
    )


def graph(graph_id: str, *, height: int | None = None) -> dbc.Card:
    """A chart in a card; callbacks fill ``figure``."""
    style = {"height": f"{height}px"} if height else None
    return dbc.Card(
        dbc.CardBody(
            dcc.Loading(
                dcc.Graph(id=graph_id, config=GRAPH_CONFIG, style=style),
                type="dot",
            )
        ),
        class_name="chart-card shadow-sm mb-3",
    )


def page_header(title: str, lead: str) -> html.Div:
    return html.Div(
        [html.H2(title, className="h4 mb-1"), html.P(lead, className="text-muted mb-3")],
        className="page-header",
    )
