"""Figures are pure: the frame's points end up in the figure's traces, nothing else."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from dashboard import figures


def _points(figure: object) -> int:
    total = 0
    for trace in figure.data:  # type: ignore[attr-defined]
        for axis in ("y", "values", "lat"):
            values = getattr(trace, axis, None)
            if values is not None:
                total += len(values)
                break
    return total


def _empty_note(figure: object) -> bool:
    notes = figure.layout.annotations  # type: ignore[attr-defined]
    return any("No data" in (note.text or "") for note in notes)


def test_daily_outcomes_stacks_counts_per_outcome() -> None:
    frame = pd.DataFrame(
        {
            "day": [date(2026, 11, 1), date(2026, 11, 1), date(2026, 11, 2)],
            "outcome": ["succeeded", "failed", "succeeded"],
            "count": [9, 2, 7],
        }
    )
    figure = figures.daily_outcomes(frame)
    by_name = {trace.name: list(trace.y) for trace in figure.data}
    assert by_name == {"failed": [2], "succeeded": [9, 7]}
    assert figure.layout.barmode == "stack"


def test_adoption_is_one_line_per_factor_in_day_order() -> None:
    frame = pd.DataFrame(
        {
            "day": [date(2026, 11, 2), date(2026, 11, 1), date(2026, 11, 1)],
            "factor": ["totp", "totp", "webauthn"],
            "adoption_rate": [0.5, 0.25, 0.1],
        }
    )
    figure = figures.adoption_over_time(frame)
    traces = {trace.name: trace for trace in figure.data}
    assert list(traces["totp"].y) == [0.25, 0.5]
    assert list(traces["webauthn"].y) == [0.1]


def test_success_rates_sorted_best_first_with_attempts() -> None:
    frame = pd.DataFrame(
        {"factor": ["sms", "push"], "success_rate": [0.5, 0.9], "attempts": [10, 20]}
    )
    (bar,) = figures.success_rates(frame, by="factor").data
    assert list(bar.x) == ["push", "sms"] and list(bar.y) == [0.9, 0.5]
    assert list(bar.customdata) == [20, 10]


def test_time_to_complete_in_seconds() -> None:
    frame = pd.DataFrame({"factor": ["push"], "p50_ms": [1500.0], "p95_ms": [9000.0]})
    p50, p95 = figures.time_to_complete(frame).data
    assert list(p50.y) == [1.5] and list(p95.y) == [9.0]


def test_sign_in_map_has_points_and_an_arc_per_travel() -> None:
    points = pd.DataFrame(
        {
            "latitude": [52.5, 35.7],
            "longitude": [13.4, 139.7],
            "country": ["DE", "JP"],
            "outcome": ["succeeded", "succeeded"],
            "count": [10, 1],
        }
    )
    arcs = pd.DataFrame(
        {
            "from_lat": [52.5],
            "from_lon": [13.4],
            "to_lat": [35.7],
            "to_lon": [139.7],
            "label": ["x"],
        }
    )
    figure = figures.sign_in_map(points, arcs)
    kinds = [trace.type for trace in figure.data]
    assert kinds == ["scattergeo", "scattergeo"]
    assert list(figure.data[0].lat) == [52.5, 35.7]
    assert figure.data[0].marker.size[0] > figure.data[0].marker.size[1]
    assert list(figure.data[1].lat) == [52.5, 35.7] and figure.data[1].mode == "lines+markers"


def test_coverage_splits_covered_and_uncovered() -> None:
    frame = pd.DataFrame({"role": ["admin"], "subjects": [5], "covered": [3]})
    covered, uncovered = figures.privileged_coverage(frame).data
    assert list(covered.y) == [3] and list(uncovered.y) == [2]


@pytest.mark.parametrize(
    ("build", "columns"),
    [
        (figures.daily_outcomes, ("day", "outcome", "count")),
        (figures.adoption_over_time, ("day", "factor", "adoption_rate")),
        (figures.time_to_complete, ("factor", "p50_ms", "p95_ms")),
        (figures.failure_reasons, ("reason", "count")),
        (figures.detections_by_kind, ("detection", "severity", "count")),
        (figures.lockouts_over_time, ("day", "scope", "count")),
        (figures.lockout_reasons, ("reason", "count")),
        (figures.privileged_coverage, ("role", "subjects", "covered")),
    ],
)
def test_an_empty_frame_gives_an_empty_figure_that_says_so(
    build: object, columns: tuple[str, ...]
) -> None:
    figure = build(pd.DataFrame({c: [] for c in columns}))  # type: ignore[operator]
    assert _points(figure) == 0 and _empty_note(figure)


def test_missing_columns_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match="missing \\['count'\\]"):
        figures.failure_reasons(pd.DataFrame({"reason": ["x"]}))


def test_figures_are_pure() -> None:
    frame = pd.DataFrame({"reason": ["a", "b"], "count": [1, 2]})
    before = frame.copy()
    assert figures.failure_reasons(frame) == figures.failure_reasons(frame)
    pd.testing.assert_frame_equal(frame, before)
