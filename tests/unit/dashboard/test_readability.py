"""What an auditor reads at 1440×900 (issue 22): per-day axes whose labels cannot overlap,
detections named whole, times to the second, every tile's number a link to its rows (and
those links open exactly those rows), the picked detection shown whole."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime, timedelta
from types import ModuleType
from typing import Any

import dash
import pandas as pd
import pytest
from dash import Dash

from dashboard import figures
from dashboard.exports import KNOWN_TYPES, event_types, readable_time, rows_href
from dashboard.theme import DAY_MS, DAY_TICKS
from tests.unit.dashboard.conftest import AddUser, Clock, callback_body, sign_in


def _daily(days: int) -> pd.DataFrame:
    start = date(2026, 11, 1)
    return pd.DataFrame(
        {
            "day": [start + timedelta(days=d) for d in range(days)],
            "outcome": ["succeeded"] * days,
            "count": [3] * days,
        }
    )


@pytest.mark.parametrize("days", [1, 5, 8, 9, 31, 90])
def test_a_per_day_axis_shows_at_most_a_readable_number_of_labels(days: int) -> None:
    figure = figures.daily_outcomes(_daily(days))
    step = figure.layout.xaxis.dtick
    assert step % DAY_MS == 0 and step >= DAY_MS  # whole days: never two labels for one day
    labels = -(-days // (step // DAY_MS))
    assert labels <= DAY_TICKS, (days, step)
    assert figure.layout.xaxis.tickformat == "%b %d" and figure.layout.xaxis.automargin


def test_detections_read_whole_on_a_horizontal_axis() -> None:
    name = "impossible_travel_between_two_continents"
    frame = pd.DataFrame({"detection": [name, "sms_pumping"], "severity": ["high"] * 2,
                          "count": [4, 1]})  # fmt: skip
    figure = figures.detections_by_kind(frame)
    (trace,) = figure.data
    assert trace.orientation == "h" and name in list(trace.y)
    assert figure.layout.yaxis.automargin  # the margin grows to the longest name


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("2026-11-20T08:15:02.123456Z", "2026-11-20 08:15:02"),
        ("2026-11-20T09:15:02+01:00", "2026-11-20 08:15:02"),
        (datetime(2026, 11, 20, 8, 15, 2, 999, tzinfo=UTC), "2026-11-20 08:15:02"),
        ("not a time", "not a time"),
        (None, ""),
    ],
)
def test_grid_times_read_to_the_second_in_utc(value: object, shown: str) -> None:
    assert readable_time(value) == shown


def test_the_type_filter_keeps_only_event_types() -> None:
    assert event_types("lockout.applied, ip.block.applied") == {
        "lockout.applied",
        "ip.block.applied",
    }
    assert event_types("lockout.applied,'; DROP TABLE x; --,nope") == {"lockout.applied"}
    assert event_types(None) == frozenset() == event_types("__all__")


def _page(path: str) -> ModuleType:
    page = next(p for p in dash.page_registry.values() if p["path"] == path)
    return sys.modules[page["module"]]


def _links(component: Any) -> dict[str, str]:
    """``{id: href}`` of the links in a layout."""
    found: dict[str, str] = {}
    if isinstance(component, list | tuple):
        for child in component:
            found |= _links(child)
    elif hasattr(component, "to_plotly_json"):
        props = component.to_plotly_json()["props"]
        if "href" in props and "id" in props:
            found[props["id"]] = props["href"]
        found |= _links(props.get("children"))
    return found


def test_every_tile_links_to_the_rows_of_known_event_types(app: Dash) -> None:
    overview = _page("/")
    links = _links(overview.layout())
    for key, _label, types in overview.KPIS:
        assert links[f"kpi-{key}-rows"] == rows_href(types)
        assert set(types) <= KNOWN_TYPES and event_types(",".join(types)) == set(types)


def test_a_tile_s_link_opens_exactly_its_rows(
    audit_app: Dash, add_user: AddUser, clock: Clock
) -> None:
    overview, audit = _page("/"), _page("/audit")
    (types,) = [types for key, _label, types in overview.KPIS if key == "lockouts"]
    choice = rows_href(types).split("type=", 1)[1]
    assert {o["value"] for o in audit.type_options(event_types(choice))} >= {choice}
    with audit_app.server.test_client() as client:
        sign_in(client, add_user("ada", role="auditor"), clock())
        body = callback_body(audit_app, "audit-grid", {"audit-type.value": choice})
        response = client.post("/_dash-update-component", json=body)
    rows = json.loads(response.data)["response"]["audit-grid"]["rowData"]
    assert rows and {row["type"] for row in rows} <= set(types)  # the demo's other types: out


def test_the_picked_detection_is_shown_whole(app: Dash) -> None:
    geo = _page("/geo")
    summary = "codes sent to unusual destinations " * 8
    row = {"time": "2026-11-24 03:00:00", "tenant": "acme", "subject": "acme-u1",
           "detection": "sms_pumping", "severity": "high", "score": 75,
           "summary": summary}  # fmt: skip
    shown = json.dumps(geo.feed_detail(row).to_plotly_json(), default=str)
    assert summary.strip() in shown and "sms_pumping" in shown and "75" in shown
    assert "press Space" in json.dumps(geo.feed_detail(None).to_plotly_json())
