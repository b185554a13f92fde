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
    Input("filter-since", "value"),
    Input("filter-until", "value"),
    Input("filter-factor", "value"),
    Input("filter-application", "value"),
]
"""Every page callback takes these first (in this order), then its own inputs."""

INDEX_PAGE = """<!DOCTYPE html>
<html lang="en">
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>"""
"""Dash's index page, in English (``lang``: screen readers and axe need it)."""


def grid_column(field: str, header: str, *, flex: int = 0, min_width: int = 0) -> dict[str, Any]:
    """A grid column: the whole value on hover; ``flex``: takes the width the sized-to-content
    columns leave (at least ``min_width``), cut with an ellipsis."""
    column: dict[str, Any] = {"field": field, "headerName": header, "tooltipField": field}
    if flex:
        column.update(flex=flex, minWidth=min_width or 120)
    return column


ROW_PICK = {"mode": "singleRow", "checkboxes": False, "enableClickSelection": True}
"""A grid row picked by a click, or by Space on the focused row (the keyboard's way)."""


def sized_grid(columns: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    """``dag.AgGrid`` arguments sizing every column without ``flex`` to its content when the
    first rows show (AG Grid's ``fitCellContents``; later rows keep those widths)."""
    fitted = [c["field"] for c in columns if not c.get("flex")]
    grid_options = {
        "enableBrowserTooltips": True,
        "autoSizeStrategy": {"type": "fitCellContents", "colIds": fitted},
        "autoSizePadding": 2,  # beyond the cells' own padding (AG Grid's default: 20 px)
        **options.pop("dashGridOptions", {}),
    }
    return {
        "columnDefs": columns,
        "defaultColDef": {"sortable": True, "resizable": True, "suppressHeaderMenuButton": True},
        "dashGridOptions": grid_options,
        "className": "ag-theme-alpine",
        **options,
    }


def aria_label(text: str, *, live: bool = False) -> dict[str, Any]:
    """``aria-label`` (and ``aria-live``: read out when it changes) for a Dash html
    component: ``**aria_label("…")``."""
    return {"aria-label": text, **({"aria-live": "polite"} if live else {})}


def register_page(module: str, **options: Any) -> None:
    """``dash.register_page`` (typed): every page module calls it with its ``__name__``."""
    dash.register_page(module, **options)  # type: ignore[no-untyped-call]


def filters_of(
    tenant: Any, start: Any, end: Any, factor: Any, application: Any
) -> DashboardFilters:
    return from_inputs(tenant, (start, end), factor, application)


def _choices(values: list[str], every: str) -> list[dict[str, str]]:
    return [{"label": every, "value": ALL}] + [{"label": v, "value": v} for v in values]


def _filter_select(component_id: str, values: list[str], every: str) -> dbc.Select:
    """A filter of the bar: ``every`` (all) or one of ``values``, kept for the session; a
    native ``<select>``: labelled, keyboard-operable and read by screen readers as is."""
    return dbc.Select(
        id=component_id,
        options=_choices(values, every),
        value=ALL,
        persistence=True,
        persistence_type="session",
    )


def _filter_day(component_id: str) -> dbc.Input:
    """A day of the date range (a native date input, ``YYYY-MM-DD``), kept for the session."""
    return dbc.Input(
        id=component_id, type="date", persistence=True, persistence_type="session", size="md"
    )


def filter_bar(*, tenants: list[str], applications: list[str]) -> dbc.Card:
    """The shared filters; the callbacks take them as :data:`FILTER_INPUTS`."""

    def labelled(label: str, control: Any, width: int) -> dbc.Col:
        return dbc.Col(
            [dbc.Label(label, html_for=control.id, class_name="filter-label"), control], md=width
        )

    return dbc.Card(
        dbc.CardBody(
            dbc.Row(
                [
                    labelled("Tenant", _filter_select("filter-tenant", tenants, "All tenants"), 3),
                    labelled("From (UTC)", _filter_day("filter-since"), 2),
                    labelled("Until (UTC, inclusive)", _filter_day("filter-until"), 2),
                    labelled(
                        "Factor", _filter_select("filter-factor", list(FACTORS), "All factors"), 2
                    ),
                    labelled(
                        "Application",
                        _filter_select("filter-application", applications, "All applications"),
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
        **aria_label("Pages"),
    )


def shell(user: User | None, *, tenants: list[str], applications: list[str]) -> html.Div:
    return html.Div(
        [
            html.A("Skip to the content", href="#content", className="visually-hidden-focusable"),
            navbar(user),
            html.Div(
                [
                    sidebar(),
                    html.Main(
                        [
                            filter_bar(tenants=tenants, applications=applications),
                            dash.page_container,
                        ],
                        id="content",
                        className="content",
                        tabIndex="-1",
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
        [html.H1(title, className="h4 mb-1"), html.P(lead, className="text-muted mb-3")],
        className="page-header",
    )
