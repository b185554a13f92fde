"""The figures' common look: palette, base layout, the empty state, column checks (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

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
        xaxis={"automargin": True},  # long tick labels grow the margin, never get cut
        yaxis={"automargin": True},
        font={"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
    )
    return figure


DAY_MS = 86_400_000
DAY_TICKS = 8
"""At most this many day labels on a per-day axis: "Nov 20" fits ~8 times in a half-width
chart at 1440 px, and more overlap."""


def days_axis(figure: go.Figure, days: Iterable[Any]) -> go.Figure:
    """A per-day x axis labelled "Nov 20", one label every few days so that at most
    :data:`DAY_TICKS` labels show, never overlapping (``days``: the plotted days)."""
    stamps = pd.to_datetime(pd.Series(list(days)), utc=True)
    span = 1 if stamps.empty else (stamps.max() - stamps.min()).days + 1
    step = max(1, -(-span // DAY_TICKS))
    figure.update_xaxes(tickformat="%b %d", dtick=DAY_MS * step, tickangle=0)
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
