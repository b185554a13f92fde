"""Audit trail: the ledger in a grid, its latest signed checkpoint, verify, exports."""

from __future__ import annotations

import json
import threading
from typing import Any

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, dcc, html, no_update

from audit.rows import LedgerRow
from dashboard.context import DashboardContext
from dashboard.exports import (
    FORMATS,
    ExportRefused,
    event_types,
    export_bytes,
    export_filter,
    grid_row,
    readable_time,
    send_bytes,
    shown_count,
)
from dashboard.filters import ALL
from dashboard.gate import current_user
from dashboard.layout import (
    FILTER_INPUTS,
    ROW_PICK,
    filters_of,
    grid_column,
    page_header,
    register_page,
    sized_grid,
)
from dashboard.ledger import EntryProof
from dashboard.users import may_export
from schemas.registry import EVENT_TYPES

register_page(
    __name__, path="/audit", name="Audit trail", order=5, title="Audit trail · factorstream"
)

GRID_COLUMNS = [
    grid_column("sequence", "#"),
    grid_column("recorded_at", "Recorded (UTC)"),
    grid_column("time", "Event time (UTC)"),
    grid_column("type", "Type"),
    grid_column("tenant", "Tenant"),
    grid_column("subject", "Subject"),
    grid_column("erased", "Erased"),
    grid_column("correlationid", "Correlation id", flex=1, min_width=80),
    grid_column("source", "Source", flex=1, min_width=80),
]
GRID_LIMIT = 500
FILTER_STATES = [State(i.component_id, i.component_property) for i in FILTER_INPUTS]


def type_options(selected: frozenset[str]) -> list[dict[str, str]]:
    """The type filter's choices: any, each event type, and ``selected`` when it is several
    (a tile's link asks for the rows of several types) (pure)."""
    joined = ",".join(sorted(selected))
    several = (
        [{"label": " or ".join(sorted(selected)), "value": joined}] if len(selected) > 1 else []
    )
    return [
        {"label": "Any event type", "value": ALL},
        *several,
        *({"label": t.name, "value": t.name} for t in EVENT_TYPES),
    ]


def _controls(selected: frozenset[str]) -> dbc.Row:
    can_export = may_export(current_user().role)
    buttons = [
        dbc.Button(
            f"Export {fmt.upper()}",
            id=f"audit-export-{fmt}",
            color="primary",
            outline=True,
            size="sm",
            class_name="me-2",
            disabled=not can_export,
        )
        for fmt in FORMATS
    ]
    return dbc.Row(
        [
            dbc.Col(
                [
                    dbc.Label("Subject", html_for="audit-subject", class_name="visually-hidden"),
                    dbc.Input(
                        id="audit-subject", placeholder="Subject", debounce=True, type="text"
                    ),
                ],
                md=3,
            ),
            dbc.Col(
                [
                    dbc.Label("Event type", html_for="audit-type", class_name="visually-hidden"),
                    dbc.Select(
                        id="audit-type",
                        options=type_options(selected),
                        value=",".join(sorted(selected)) or ALL,
                    ),
                ],
                md=3,
            ),
            dbc.Col(buttons + [dcc.Download(id="audit-download")], md=6),
        ],
        class_name="g-2 mb-2 align-items-center",
    )


def layout(type: str | None = None, **_: object) -> html.Div:  # noqa: A002 - the query
    """The page; ``?type=a,b`` (a tile's link) opens it on the rows of those types."""
    return html.Div(
        [
            page_header(
                "Audit trail",
                "Every event in the Merkle-tree ledger, newest first, each with its full "
                "event and inclusion proof on click; signed checkpoints and a full "
                "verification on demand.",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Card(
                            dbc.CardBody(
                                [
                                    html.H2("Latest signed checkpoint", className="h6"),
                                    html.Div(id="audit-checkpoint"),
                                ]
                            ),
                            class_name="chart-card shadow-sm mb-3",
                        ),
                        md=7,
                    ),
                    dbc.Col(
                        dbc.Card(
                            dbc.CardBody(
                                [
                                    html.H2("Verification", className="h6"),
                                    dbc.Button(
                                        "Verify the ledger now",
                                        id="audit-verify",
                                        size="sm",
                                        color="secondary",
                                        disabled=not may_export(current_user().role),
                                    ),
                                    dcc.Loading(
                                        html.Div(id="audit-verify-status", className="mt-2")
                                    ),
                                ]
                            ),
                            class_name="chart-card shadow-sm mb-3",
                        ),
                        md=5,
                    ),
                ]
            ),
            dbc.Card(
                dbc.CardBody(
                    [
                        _controls(event_types(type)),
                        html.Div(id="audit-export-status"),
                        html.Div(id="audit-count", className="text-muted small mb-1"),
                        dag.AgGrid(
                            id="audit-grid",
                            rowData=[],
                            getRowId="params.data.sequence",
                            style={"height": "520px"},
                            **sized_grid(
                                GRID_COLUMNS,
                                dashGridOptions={
                                    "pagination": True,
                                    "paginationPageSize": 20,
                                    "rowSelection": ROW_PICK,
                                },
                            ),
                        ),
                        html.P(
                            "Click an entry (or move to it with the arrow keys and press Space) "
                            "for its full event and its inclusion proof.",
                            className="text-muted small mt-1 mb-0",
                        ),
                    ]
                ),
                class_name="chart-card shadow-sm",
            ),
            dbc.Modal(
                [
                    dbc.ModalHeader(dbc.ModalTitle(id="audit-entry-title")),
                    dbc.ModalBody(id="audit-entry"),
                ],  # fmt: skip
                id="audit-entry-modal",
                labelledby="audit-entry-title",  # the dialog's name for screen readers
                size="xl",
                scrollable=True,
                is_open=False,
            ),
        ]
    )


def _json_block(value: Any, component_id: str) -> html.Pre:
    return html.Pre(
        json.dumps(value, indent=2, sort_keys=True, default=str),
        id=component_id,
        className="mono small bg-light p-2 mb-0",
        style={"maxHeight": "60vh", "overflow": "auto"},
    )


def entry_view(row: LedgerRow, proof: EntryProof) -> list[Any]:
    """An entry's full event beside its inclusion proof, the proof's check on top."""
    status = html.Div(
        [
            html.Span(
                "Proof verified" if proof.ok else "No verified proof",
                className="status-ok" if proof.ok else "status-bad",
            ),
            html.Span(f" · {proof.summary}"),
        ],
        id="audit-proof-status",
        className="mb-2",
    )
    erased = (
        [html.P(f"Erased (subject's key destroyed): {', '.join(row.erased)}", className="small")]
        if row.erased
        else []
    )
    proof_block = (
        _json_block(proof.document, "audit-entry-proof")
        if proof.document is not None
        else html.P(
            "The ledger sink signs a checkpoint every N entries or T seconds; the proof is "
            "available once one covers this entry.",
            id="audit-entry-proof",
            className="text-muted small",
        )
    )
    return [
        status,
        *erased,
        dbc.Row(
            [
                dbc.Col(
                    [html.H4("Event", className="h6"), _json_block(row.event, "audit-entry-event")],
                    md=6,
                ),
                dbc.Col([html.H4("Inclusion proof", className="h6"), proof_block], md=6),
            ]
        ),
    ]


def _checkpoint_card(context: DashboardContext) -> Any:
    if context.ledger is None:
        return html.P("No ledger database yet.", className="text-muted mb-0")
    checkpoint = context.ledger.latest_checkpoint()
    if checkpoint is None:
        return html.P(
            f"{context.ledger.size():,} entries, no signed checkpoint yet.",
            className="text-muted mb-0",
        )
    return html.Dl(
        [
            html.Dt("Tree size"),
            html.Dd(f"{checkpoint.tree_size:,} of {context.ledger.size():,} entries"),
            html.Dt("Root hash"),
            html.Dd(checkpoint.root_hash.hex(), className="mono"),
            html.Dt("Signed at"),
            html.Dd(f"{readable_time(checkpoint.time)} UTC"),
            html.Dt("Key id"),
            html.Dd(checkpoint.key_id, className="mono"),
        ],
        className="mb-0",
    )


def register_callbacks(app: Dash, context: DashboardContext) -> None:
    verifying = threading.Lock()

    @app.callback(
        [
            Output("audit-grid", "rowData"),
            Output("audit-checkpoint", "children"),
            Output("audit-count", "children"),
        ],
        [*FILTER_INPUTS, Input("audit-subject", "value"), Input("audit-type", "value")],
    )
    def update(*values: Any) -> list[Any]:
        filters, (subject, event_type) = filters_of(*values[:5]), values[5:]
        if context.ledger is None:
            return [[], _checkpoint_card(context), ""]
        where = export_filter(filters, subject=subject, event_type=event_type)
        rows = context.ledger.recent(where, limit=GRID_LIMIT)
        count = shown_count(len(rows), context.ledger.size(), limit=GRID_LIMIT)
        return [[grid_row(r) for r in rows], _checkpoint_card(context), count]

    @app.callback(
        [
            Output("audit-entry-modal", "is_open"),
            Output("audit-entry-title", "children"),
            Output("audit-entry", "children"),
        ],
        [Input("audit-grid", "cellClicked"), Input("audit-grid", "selectedRows")],
        prevent_initial_call=True,
    )
    def open_entry(clicked: Any, selected: Any) -> list[Any]:
        ledger = context.ledger
        by_keyboard = "audit-grid.selectedRows" in dash.ctx.triggered_prop_ids
        picked = (selected or [{}])[0] if by_keyboard else (clicked or {})
        try:
            sequence = int(str(picked.get("sequence" if by_keyboard else "rowId")))
        except (TypeError, ValueError):
            return [no_update, no_update, no_update]
        row = None if ledger is None else ledger.entry(sequence)
        if ledger is None or row is None:
            return [True, f"Entry {sequence}", html.P("No such entry.", className="text-muted")]
        title = f"Entry {row.sequence:,} · {row.event.get('type')}"
        return [True, title, entry_view(row, ledger.proof(str(row.event.get("id"))))]

    @app.callback(
        Output("audit-verify-status", "children"),
        Input("audit-verify", "n_clicks"),
        prevent_initial_call=True,
    )
    def verify(_clicks: Any) -> Any:
        if not may_export(current_user().role):  # the callback answers any signed-in post
            return html.Span(
                "Verifying the whole ledger is for auditors and admins.", className="text-muted"
            )
        if context.ledger is None:
            return html.Span("No ledger database yet.", className="text-muted")
        if not verifying.acquire(blocking=False):  # it reads every entry: one at a time
            return html.Span(
                "A verification is running already; try again when it has finished.",
                className="text-muted",
                id="audit-verify-busy",
            )
        try:
            result = context.ledger.verify()
        finally:
            verifying.release()
        status = "Verified" if result.ok else "FAILED"
        return html.Div(
            [
                html.Span(status, className="status-ok" if result.ok else "status-bad"),
                html.Span(f" · {result.summary}"),
            ],
            id="audit-verify-result",
        )

    @app.callback(
        [Output("audit-download", "data"), Output("audit-export-status", "children")],
        [Input(f"audit-export-{fmt}", "n_clicks") for fmt in FORMATS],
        [*FILTER_STATES, State("audit-subject", "value"), State("audit-type", "value")],
        prevent_initial_call=True,
    )
    def export(*values: Any) -> list[Any]:
        trigger = dash.ctx.triggered_id
        fmt = str(trigger).removeprefix("audit-export-")
        states = values[len(FORMATS) :]
        filters, (subject, event_type) = filters_of(*states[:5]), states[5:]
        if context.ledger is None:
            return [no_update, dbc.Alert("No ledger database yet.", color="warning")]
        try:
            name, content, records = export_bytes(
                current_user(),
                context.ledger,
                export_filter(filters, subject=subject, event_type=event_type),
                fmt=fmt,  # type: ignore[arg-type]  # checked by export_bytes
                now=context.now(),
            )
        except ExportRefused as refused:
            return [no_update, dbc.Alert(str(refused), color="danger", id="audit-export-refused")]
        except ValueError as error:
            return [no_update, dbc.Alert(str(error), color="danger")]
        note = dbc.Alert(f"Exported {records:,} records as {name}.", color="success", duration=6000)
        return [send_bytes(content, name), note]
