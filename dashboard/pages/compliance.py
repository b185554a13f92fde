"""Compliance: MFA coverage of privileged roles (SOC 2 evidence) and the policy tiers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, Output, html

from dashboard import figures
from dashboard.context import DashboardContext
from dashboard.layout import FILTER_INPUTS, filters_of, graph, page_header, register_page
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


def layout(**_: object) -> html.Div:
    return html.Div(
        [
            page_header(
                "Compliance",
                "Privileged subjects with a completed MFA enrollment, and the policy tiers "
                "the verifiers and the lockout fold enforce.",
            ),
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
