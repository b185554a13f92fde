"""Compliance: the evidence packs' controls and their status, a pack per framework to
download (auditors and admins), MFA coverage of privileged roles and the policy tiers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, dcc, html, no_update

from compliance.controls import FRAMEWORKS
from compliance.pack import PackError
from dashboard import figures
from dashboard.context import DashboardContext
from dashboard.evidence import PackRefused, control_rows, pack_zip, period_of
from dashboard.exports import send_bytes
from dashboard.gate import current_user
from dashboard.layout import FILTER_INPUTS, filters_of, graph, page_header, register_page
from dashboard.users import may_export
from schemas.fields import PolicyTier
from verifiers.policy import TIERS, TierPolicy

register_page(
    __name__, path="/compliance", name="Compliance", order=6, title="Compliance · factorstream"
)

TIER_COLUMNS = (
    "Tier",
    "Required factors",
    "Fallbacks",
    "Failures before lockout",
    "First lockout",
    "Longest lockout",
    "Code lifetime",
    "Permanent after",
)


def _duration(value: timedelta) -> str:
    minutes = value.total_seconds() / 60
    return f"{minutes / 60:g} h" if minutes >= 60 else f"{minutes:g} min"


def tier_rows(tiers: Mapping[PolicyTier, TierPolicy] = TIERS) -> list[list[str]]:
    """The policy tiers in force, one row each (pure)."""
    return [
        [
            str(policy.tier),
            ", ".join(policy.required_factors),
            ", ".join(policy.fallback_factors),
            str(policy.max_failures),
            _duration(policy.lockout_duration),
            _duration(policy.max_wait),
            _duration(policy.code_lifetime),
            (
                f"{policy.max_temporary_lockouts} temporary lockouts"
                if policy.max_temporary_lockouts
                else "never"
            ),
        ]
        for policy in tiers.values()
    ]


def _tier_table() -> dbc.Table:
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th(c) for c in TIER_COLUMNS])),
            html.Tbody([html.Tr([html.Td(v) for v in row]) for row in tier_rows()]),
        ],
        id="compliance-tiers",
        bordered=False,
        hover=True,
        responsive=True,
        size="sm",
        class_name="mb-0",
    )


CONTROL_COLUMNS = ("Framework", "Control", "Title", "Status", "Exceptions", "Rows")
FILTER_STATES = [State(i.component_id, i.component_property) for i in FILTER_INPUTS]


def _packs_card() -> dbc.Card:
    allowed = may_export(current_user().role)
    buttons = [
        dbc.Button(
            f"Download {framework.upper()} pack",
            id=f"compliance-pack-{framework}",
            color="primary",
            outline=True,
            size="sm",
            class_name="me-2",
            disabled=not allowed,
        )
        for framework in FRAMEWORKS
    ]
    return dbc.Card(
        dbc.CardBody(
            [
                html.H3("Evidence packs", className="h6"),
                html.P(
                    "The controls for the period and tenant of the filters, answered from the "
                    "ledger. A pack holds every row with its inclusion proof and a verify.py "
                    "that checks it offline; `factorstream evidence` also records the pack's "
                    "digest in the ledger.",
                    className="text-muted small",
                ),
                html.Div(buttons + [dcc.Download(id="compliance-pack-download")], className="mb-2"),
                dcc.Loading(html.Div(id="compliance-pack-status")),
                html.Div(id="compliance-controls"),
            ]
        ),
        class_name="chart-card shadow-sm mb-3",
    )


def _controls_table(rows: list[list[str]]) -> dbc.Table:
    status = {"met": "status-ok", "not met": "status-bad"}
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th(c) for c in CONTROL_COLUMNS])),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(v, className=status.get(v, "") if i == 3 else "")
                            for i, v in enumerate(row)
                        ]
                    )
                    for row in rows
                ]
            ),
        ],
        id="compliance-controls-table",
        bordered=False,
        hover=True,
        responsive=True,
        size="sm",
        class_name="mb-0",
    )


def layout(**_: object) -> html.Div:
    return html.Div(
        [
            page_header(
                "Compliance",
                "Privileged subjects with a completed MFA enrollment, and the policy tiers "
                "the verifiers and the lockout fold enforce.",
            ),
            _packs_card(),
            dbc.Row(
                [
                    dbc.Col(graph("compliance-coverage"), md=6),
                    dbc.Col(graph("compliance-tier-usage"), md=6),
                ]
            ),
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Card(
                            dbc.CardBody(
                                [html.H3("Policy tiers in force", className="h6"), _tier_table()]
                            ),
                            class_name="chart-card shadow-sm mb-3",
                        ),
                        md=12,
                    ),
                ]
            ),
        ]
    )


def register_callbacks(app: Dash, context: DashboardContext) -> None:
    @app.callback(
        [Output("compliance-coverage", "figure"), Output("compliance-tier-usage", "figure")],
        FILTER_INPUTS,
    )
    def update(*values: Any) -> list[Any]:
        filters = filters_of(*values)
        return [
            figures.privileged_coverage(context.metrics.frame("privileged_coverage", filters)),
            figures.distribution(
                context.metrics.frame("policy_tiers", filters),
                label="label",
                title="Sign-ins by policy tier",
            ),
        ]

    @app.callback(Output("compliance-controls", "children"), FILTER_INPUTS)
    def controls(*values: Any) -> Any:
        filters = filters_of(*values)
        ledger = context.ledger
        if ledger is None:
            return html.P("No ledger database yet.", className="text-muted mb-0")
        period = period_of(filters, now=context.now())
        rows = [
            row
            for framework in FRAMEWORKS
            for row in control_rows(framework, ledger.controls(framework, period, filters.tenant))
        ]
        return _controls_table(rows)

    @app.callback(
        [Output("compliance-pack-download", "data"), Output("compliance-pack-status", "children")],
        [Input(f"compliance-pack-{framework}", "n_clicks") for framework in FRAMEWORKS],
        FILTER_STATES,
        prevent_initial_call=True,
    )
    def download(*values: Any) -> list[Any]:
        framework = str(dash.ctx.triggered_id).removeprefix("compliance-pack-")
        filters = filters_of(*values[len(FRAMEWORKS) :])
        ledger = context.ledger
        if ledger is None:
            return [no_update, dbc.Alert("No ledger database yet.", color="warning")]
        now = context.now()
        try:
            name, content, digest = pack_zip(
                current_user(), ledger, framework, period_of(filters, now=now), filters.tenant,
                now=now,
            )  # fmt: skip
        except PackRefused as refused:
            return [no_update, dbc.Alert(str(refused), color="danger", id="compliance-refused")]
        except (PackError, ValueError) as error:
            return [no_update, dbc.Alert(str(error), color="warning")]
        note = dbc.Alert(f"{name}: SHA-256 of its manifest {digest}.", color="success")
        return [send_bytes(content, name), note]
