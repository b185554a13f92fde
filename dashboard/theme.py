"""The figures' common look: palette, base layout, the empty state, column checks (pure)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

PALETTE = ("#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04")
OUTCOME_COLOURS = {"succeeded": "#16a34a", "failed": "#dc2626", "delivered": "#16a34a"}
SEVERITY_COLOURS = {
    "none": "#64748b",
    "low": "#0891b2",
    "medium": "#ca8a04",
    "high": "#ea580c",
    "critical": "#dc2626",
}


def base(title: str, *, height: int = 340) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 15}},
        template="plotly_white",
        colorway=list(PALETTE),
        height=height,
        margin={"l": 48, "r": 16, "t": 48, "b": 40},
        legend={"orientation": "h", "y": -0.18},
        font={"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
    )
    return figure


def empty(figure: go.Figure) -> go.Figure:
    figure.add_annotation(
        text="No data for these filters",
        showarrow=False,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        font={"size": 14, "color": "#64748b"},
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return figure


def require(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    if missing := [c for c in columns if c not in frame.columns]:
        raise ValueError(f"expected columns {list(columns)}, missing {missing}")


def series(frame: pd.DataFrame, column: str) -> list[object]:
    return list(frame[column].tolist())
