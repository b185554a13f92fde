"""Metric reshaping (pure) and the queries over a demo lake, with hostile filter values."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from dash import Dash

from dashboard import data
from dashboard.data import METRICS, LakeMetrics
from dashboard.filters import ALL, DashboardFilters, from_inputs
from tests.unit.dashboard.conftest import AddUser, Clock, callback_body, sign_in
from tests.unit.dashboard.demo import PUMPED, SMS_PRICES

HOSTILE = (
    "acme' OR '1'='1",
    "x'; DROP TABLE lake_events; --",
    'globex"; SELECT 1; --',
)


def test_success_by_rolls_up_counts_not_rates() -> None:
    frame = pd.DataFrame(
        {
            "tenant": ["a", "a"],
            "application": ["x", "y"],
            "factor": ["totp", "totp"],
            "verifications": [10, 90],
            "succeeded": [0, 90],
            "failed": [10, 0],
            "success_rate": [0.0, 1.0],
        }
    )
    rolled = data.success_by(frame, "factor")
    assert rolled.to_dict("records") == [{"factor": "totp", "success_rate": 0.9, "attempts": 100}]


def test_geo_points_split_sign_ins_by_outcome() -> None:
    frame = pd.DataFrame(
        {
            "country": ["DE"],
            "latitude": [52.5],
            "longitude": [13.4],
            "sign_ins": [10],
            "failures": [3],
            "subjects": [4],
        }
    )
    points = data.geo_points(frame)
    assert dict(zip(points["outcome"], points["count"], strict=True)) == {
        "succeeded": 7,
        "failed": 3,
    }


def test_filters_from_the_controls() -> None:
    filters = from_inputs(ALL, ("2026-11-01", "2026-11-03T00:00:00"), "totp", [])
    assert filters == DashboardFilters(
        factor="totp", since=date(2026, 11, 1), until=date(2026, 11, 3)
    )
    assert from_inputs("acme", ("not a date", None), ALL, "crm").since is None


def test_every_metric_answers_on_the_demo_lake(lake: Path) -> None:
    metrics = LakeMetrics(lake)
    for metric in METRICS:
        assert not metrics.frame(metric, DashboardFilters()).empty, metric
    acme = metrics.frame("kpis", DashboardFilters(tenant="acme"))["verifications"].iloc[0]
    every = metrics.frame("kpis", DashboardFilters())["verifications"].iloc[0]
    assert 0 < acme < every
    assert metrics.options("tenants") == ["acme", "globex"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_filter_values_are_bound_no_error_no_rows(lake: Path, value: str) -> None:
    metrics = LakeMetrics(lake)
    for field in ("tenant", "factor", "application"):
        filters = DashboardFilters(**{field: value})  # type: ignore[arg-type]
        for metric in METRICS:
            if metric in ("kpis",):
                row = metrics.frame(metric, filters).iloc[0]
                if field != "factor":  # overview_kpis does not filter by factor
                    assert row["verifications"] == 0
                if field == "tenant":
                    assert row["events"] == 0
                continue
            frame = metrics.frame(metric, filters)
            if field == "tenant":
                assert frame.empty, (metric, value)
    assert metrics.options("tenants") == ["acme", "globex"]  # nothing was dropped


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_filter_through_the_callback(
    app: Dash, add_user: AddUser, clock: Clock, value: str
) -> None:
    with app.server.test_client() as client:
        sign_in(client, add_user(), clock())
        body = callback_body(app, "overview-daily", {"filter-tenant.value": value})
        response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200
    answer = response.get_json()["response"]
    assert answer["kpi-verifications"]["children"] == "0"
    assert all(not trace.get("y") for trace in answer["overview-daily"]["figure"]["data"])


def test_the_sms_page_data_shows_spend_per_country_and_the_pumping_the_cap_stopped(
    lake: Path,
) -> None:
    metrics = LakeMetrics(lake)
    every = DashboardFilters()
    by_country = metrics.frame("sms_spend_country", every)
    spend = by_country.groupby("country")["cost_micros"].sum().to_dict()
    assert set(spend) == {"DE", "US", "JP", "BR", "NG"}
    days = sorted(by_country["day"].unique())
    assert len(days) == 5  # every day of the demo
    # each day: PUMPED paid sends to NG flagged, four refused by the cap, none after it
    pumping = metrics.frame("sms_pumping_spend", every)
    per_kind = pumping.groupby("kind")[["sends", "cost"]].sum().to_dict("index")
    assert per_kind["paid while flagged"] == {"sends": 5 * PUMPED, "cost": pytest.approx(9.6)}
    assert per_kind["stopped by the cap"]["sends"] == 5 * 4
    assert spend["NG"] == 5 * PUMPED * SMS_PRICES["NG"]  # nothing past the cap was paid
    health = metrics.frame("sms_delivery_health", every)
    assert set(health["label"]) == {f"twilio · {c}" for c in ("DE", "US", "JP", "BR")}
    rates = list(health["delivery_rate"])
    assert all(0 < rate <= 1 for rate in rates) and min(rates) < 1  # some undelivered
    globex = metrics.frame("sms_pumping_spend", DashboardFilters(tenant="globex"))
    assert globex.empty


def test_the_sms_page_renders_through_its_callback(
    app: Dash, add_user: AddUser, clock: Clock
) -> None:
    with app.server.test_client() as client:
        sign_in(client, add_user(), clock())
        body = callback_body(app, "sms-pumping-spend", {"filter-tenant.value": "acme"})
        response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.data
    answer = response.get_json()["response"]
    traces = answer["sms-pumping-spend"]["figure"]["data"]
    assert {trace["name"] for trace in traces} == {"paid while flagged", "stopped by the cap"}
    country = answer["sms-spend-country"]["figure"]["data"]
    assert "NG" in {trace["name"] for trace in country}
