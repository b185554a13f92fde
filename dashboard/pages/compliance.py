"""Compliance: the evidence packs' controls and their status, a pack per framework to
download (auditors and admins), MFA coverage of privileged roles and the policy tiers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, Output, html
from dash.development.base_component import Component

from compliance.controls import FRAMEWORKS
from dashboard import figures
from dashboard.context import DashboardContext
from dashboard.evidence import control_rows, pack_url, period_of
from dashboard.filters import DashboardFilters
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


def _pack_link(framework: str, *, allowed: bool) -> Component:
    label = f"Download {framework.upper()} pack"
    link: Component
    if not allowed:  # the server refuses the URL too (403): this only says so up front
        link = dbc.Button(label, color="primary", outline=True, size="sm", class_name="me-2",
                          disabled=True, id=f"compliance-pack-{framework}")  # fmt: skip
        return link
    link = html.A(
        label,
        id=f"compliance-pack-{framework}",
        href=pack_url(framework, DashboardFilters()),
        className="btn btn-outline-primary btn-sm me-2",
    )
    return link


def _packs_card() -> dbc.Card:
    allowed = may_export(current_user().role)
    note = (
        "The controls for the period and tenant of the filters, answered from the ledger as "
        "far as its newest signed checkpoint. A pack holds every row with its inclusion "
        "proof and a verify.py that checks it offline; each download is recorded as an "
        "audit.evidence.downloaded event with the pack's digest (relayed to the ledger)."
    )
    if not allowed:
        note += " Packs are for auditors and admins."
    return dbc.Card(
        dbc.CardBody(
            [
                html.H2("Evidence packs", className="h6"),
                html.P(note, className="text-muted small"),
                html.Div([_pack_link(f, allowed=allowed) for f in FRAMEWORKS], className="mb-2"),
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
                                [html.H2("Policy tiers in force", className="h6"), _tier_table()]
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
        [Output(f"compliance-pack-{framework}", "href") for framework in FRAMEWORKS],
        FILTER_INPUTS,
    )
    def pack_links(*values: Any) -> list[str]:
        filters = filters_of(*values)
        return [pack_url(framework, filters) for framework in FRAMEWORKS]
