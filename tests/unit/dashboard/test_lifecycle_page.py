"""The Lifecycle page: its reshaping (pure), its metrics on the demo lake, its callback."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from dash import Dash

from dashboard import data, figures
from dashboard.data import LakeMetrics
from dashboard.filters import DashboardFilters
from tests.unit.dashboard.conftest import DEMO_START, AddUser, Clock, callback_body, sign_in

DEMO = DashboardFilters(until=(DEMO_START + timedelta(days=4)).date())
"""The five demo days (``until`` is the last day shown): trusts are judged as of their end."""


def test_lifecycle_steps_name_each_refusal_and_count_devices_for_revocations() -> None:
    day = pd.Timestamp("2026-11-02")
    frame = pd.DataFrame(
        {
            "day": [day] * 5,
            "ceremony": ["override", "override", "trusted_device", "trusted_device", "override"],
            "status": ["requested", "refused", "revoked", "trust_refused", "refused"],
            "reason": [None, "self_approval", "subject_erased", "wrong_device", "self_approval"],
            "events": [2, 1, 1, 4, 2],
            "devices": [2, 1, 3, 4, 2],
        }
    )
    overrides = data.lifecycle_steps(frame, "override")
    assert overrides.to_dict("records") == [
        {"day": day, "step": "refused · self_approval", "count": 3},
        {"day": day, "step": "requested", "count": 2},
    ]
    devices = data.lifecycle_steps(frame, "trusted_device")
    assert dict(zip(devices["step"], devices["count"], strict=True)) == {
        "revoked · subject_erased": 3,  # one erasure ended three devices
        "trust_refused · wrong_device": 4,
    }
    assert data.lifecycle_steps(frame, "temporary_access").empty
    migration = pd.DataFrame(
        {
            "day": [day] * 3,
            "tenant": ["acme", "globex", "acme"],
            "kind": ["imported", "imported", "invited"],
            "source": ["csv", "csv", None],
            "factor": ["totp"] * 3,
            "count": [2, 1, 5],
        }
    )
    assert data.migration_steps(migration).to_dict("records") == [
        {"day": day, "step": "imported · csv", "count": 3},
        {"day": day, "step": "invited", "count": 5},
    ]


def test_the_lifecycle_metrics_on_the_demo_lake(lake: Path) -> None:
    metrics = LakeMetrics(lake)
    overrides = metrics.frame("override_steps", DEMO)
    assert set(overrides["step"]) == {"requested", "approved", "refused · self_approval"}
    (ovr1,) = [
        r
        for r in metrics.frame("override_requests", DEMO).to_dict("records")
        if r["request_id"] == "ovr-1"
    ]
    assert (ovr1["requested_by"], ovr1["approved_by"], ovr1["ticket"], ovr1["outcome"]) == (
        "ann",
        "ben",
        "SEC-101",
        "approved",
    )
    assert ovr1["refusal_reasons"] == "self_approval"
    temporary = metrics.frame("temporary_access_steps", DEMO)
    assert set(temporary["step"]) == {"granted", "used", "refused · used_code"}
    devices = metrics.frame("device_steps", DEMO)
    assert set(devices["step"]) == {
        "trusted",
        "revoked · subject_request",
        "revoked · presented_from_other_device",
        "trust_refused · wrong_device",
    }
    in_force = metrics.frame("trusted_devices_in_force", DEMO)
    assert in_force[["tenant", "trusted", "revoked", "active"]].to_dict("records") == [
        {"tenant": "acme", "trusted": 3, "revoked": 2, "active": 1},
        {"tenant": "globex", "trusted": 1, "revoked": 0, "active": 1},
    ]
    migration = metrics.frame("migration", DEMO)
    assert dict(zip(migration["step"], migration["count"], strict=True)) == {
        "imported · csv": 1,
        "imported · otpauth": 2,
        "invited": 2,
    }
    invitations = metrics.frame("invitations", DEMO)
    assert invitations[["tenant", "factor", "invited", "enrolled"]].to_dict("records") == [
        {"tenant": "acme", "factor": "webauthn", "invited": 2, "enrolled": 1}
    ]
    globex = DashboardFilters(tenant="globex", until=DEMO.until)
    assert metrics.frame("override_requests", globex).empty
    assert list(metrics.frame("trusted_devices_in_force", globex)["tenant"]) == ["globex"]


@pytest.mark.parametrize(("tenant", "rows"), [("acme", 2), ("acme' OR '1'='1", 0)])
def test_the_lifecycle_page_renders_through_its_callback(
    app: Dash, add_user: AddUser, clock: Clock, tenant: str, rows: int
) -> None:
    with app.server.test_client() as client:
        sign_in(client, add_user(), clock())
        body = callback_body(
            app,
            "lifecycle-requests",
            {"filter-tenant.value": tenant, "filter-until.value": str(DEMO.until)},
        )
        response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.data
    answer = response.get_json()["response"]
    requests = answer["lifecycle-requests"]["rowData"]
    assert len(requests) == rows
    if rows:
        assert {r["outcome"] for r in requests} == {"approved"}
        assert {(r["requested_by"], r["approved_by"]) for r in requests} == {
            ("ann", "ben"),
            ("ben", "ann"),
        }
        traces = answer["lifecycle-overrides"]["figure"]["data"]
        assert "refused · self_approval" in {trace["name"] for trace in traces}
        forced = answer["lifecycle-devices-in-force"]["figure"]["data"]
        assert {trace["name"] for trace in forced} == {"in force", "revoked", "expired"}
    else:
        overrides = answer["lifecycle-overrides"]["figure"]["data"]
        assert overrides == []


def test_refusals_are_drawn_apart_from_grants_and_an_empty_period_says_so() -> None:
    day = pd.Timestamp("2026-11-02")
    frame = pd.DataFrame(
        {
            "day": [day] * 4,
            "step": ["approved", "requested", "refused · self_approval", "refused · not_admin"],
            "count": [1, 2, 1, 1],
        }
    )
    figure = figures.steps_over_time(frame, title="Overrides", unit="events")
    colours = {trace.name: trace.marker.color for trace in figure.data}
    assert colours["approved"] == "#16a34a"
    refusals = {colours["refused · self_approval"], colours["refused · not_admin"]}
    assert len(refusals) == 2 and colours["approved"] not in refusals
    assert colours["requested"] not in refusals
    empty = figures.steps_over_time(
        data.lifecycle_steps(pd.DataFrame(), "override"), title="x", unit="y"
    )
    assert not empty.data and empty.layout.annotations[0].text == "No data for these filters"
    with pytest.raises(ValueError, match="missing"):
        figures.trusted_devices_in_force(pd.DataFrame({"tenant": []}))
