"""Golden tests: every metric query returns the hand-computed answer on a fixed dataset.

The dataset and the reasoning behind each number are in ``golden.py``. It is written in
three micro-batches through the lake writer, and checked both as written and compacted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from analytics import queries as q
from analytics.compaction import compact
from analytics.lake import LakeWriter
from analytics.views import connect
from schemas import payloads as p
from schemas.fields import RiskLevel
from tests.unit.analytics.golden import D1, D2, SYDNEY, at, ev, golden_events
from verifiers import policy

DAY1, DAY2 = pd.Timestamp(D1), pd.Timestamp(D2)  # DuckDB DATE → pandas datetime64
ALL = q.Filters()


@pytest.fixture(scope="module", params=["as-written", "compacted"])
def con(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[duckdb.DuckDBPyConnection]:
    lake = tmp_path_factory.mktemp("golden") / "lake"
    events = golden_events()
    writer = LakeWriter(lake)
    for start in range(0, len(events), 13):
        writer.write_events(events[start : start + 13])
    if request.param == "compacted":
        assert compact(lake, min_files=2)
    connection = connect(lake)
    yield connection
    connection.close()


def rows(frame: pd.DataFrame) -> list[tuple[object, ...]]:
    """Rows as plain tuples; floats rounded to 4 places, missing values as None."""
    out = []
    for row in frame.astype(object).itertuples(index=False):
        out.append(
            tuple(
                None
                if v is None or v is pd.NA or (isinstance(v, float) and v != v)
                else round(v, 4)
                if isinstance(v, float)
                else v
                for v in row
            )
        )
    return out


def test_every_query_is_registered_by_its_name() -> None:
    assert set(q.QUERIES) == {
        "overview_kpis",
        "mfa_adoption",
        "verification_success_rate",
        "time_to_complete",
        "failure_reasons",
        "device_distribution",
        "sign_in_geography",
        "anomalies",
        "impossible_travel_arcs",
        "lockouts_over_time",
        "sms_delivery_failure_rate",
        "sms_spend",
        "sms_delivery_health",
        "sms_pumping_spend",
        "push_fatigue_incidents",
        "privileged_role_coverage",
        "policy_tiers",
        "lifecycle_over_time",
        "override_requests",
        "active_trusted_devices",
        "migration_over_time",
        "invitation_conversion",
    }
    assert all(q.QUERIES[name].__name__ == name for name in q.QUERIES)


def test_the_role_and_factor_lists_match_the_policy() -> None:
    assert set(q.PRIVILEGED_ROLES) == set(policy.PRIVILEGED_ROLES)
    assert set(q.PHISHING_RESISTANT) == {str(f) for f in policy.PHISHING_RESISTANT}


def test_mfa_adoption_over_time(con: duckdb.DuckDBPyConnection) -> None:
    # D1 active: alice, bob, carol; totp enrolled: alice, bob (carol's push comes on D2,
    # dave has webauthn but does not sign in on D1).
    # D2 active: alice, bob, carol, dave, erin; bob removed totp on D2, frank is not active.
    assert rows(q.mfa_adoption(con, ALL)) == [
        (DAY1, "push", 0, 3, 0.0),
        (DAY1, "totp", 2, 3, 0.6667),
        (DAY1, "webauthn", 0, 3, 0.0),
        (DAY2, "push", 1, 5, 0.2),
        (DAY2, "totp", 1, 5, 0.2),
        (DAY2, "webauthn", 1, 5, 0.2),
    ]
    d2_acme = q.Filters(tenant="acme", since=at(D2, "00:00:00"), factor="totp")
    assert rows(q.mfa_adoption(con, d2_acme)) == [(DAY2, "totp", 1, 4, 0.25)]


def test_verification_success_rate_by_tenant_application_factor(
    con: duckdb.DuckDBPyConnection,
) -> None:
    assert rows(q.verification_success_rate(con, ALL)) == [
        ("acme", "crm", "totp", 1, 1, 0, 1.0),
        ("acme", "payroll", "push", 4, 3, 1, 0.75),
        ("acme", "payroll", "totp", 2, 1, 1, 0.5),
        ("acme", "payroll", "webauthn", 1, 1, 0, 1.0),
        ("globex", "payroll", "totp", 1, 0, 1, 0.0),
    ]
    assert rows(q.verification_success_rate(con, q.Filters(tenant="globex"))) == [
        ("globex", "payroll", "totp", 1, 0, 1, 0.0)
    ]
    assert rows(q.verification_success_rate(con, q.Filters(application="crm"))) == [
        ("acme", "crm", "totp", 1, 1, 0, 1.0)
    ]


def test_time_to_complete_p50_p95_by_factor(con: duckdb.DuckDBPyConnection) -> None:
    # push: 4 000, 6 000, 10 000 → p50 6 000; p95 at rank 1.9: 6 000 + 0.9 × 4 000 = 9 600
    # totp: 8 000, 20 000 (from mfa.required) → p50 14 000; p95 8 000 + 0.95 × 12 000
    assert rows(q.time_to_complete(con, ALL)) == [
        ("push", 3, 6000.0, 9600.0),
        ("totp", 2, 14000.0, 19400.0),
        ("webauthn", 1, 2000.0, 2000.0),
    ]
    until_d2 = q.Filters(factor="push", until=at(D2, "00:00:00"))
    assert rows(q.time_to_complete(con, until_d2)) == [("push", 1, 4000.0, 4000.0)]


def test_failure_reasons(con: duckdb.DuckDBPyConnection) -> None:
    assert rows(q.failure_reasons(con, ALL)) == [
        ("push", "user_rejected", 1, 0.3333),
        ("totp", "expired", 1, 0.3333),
        ("totp", "invalid_code", 1, 0.3333),
    ]


def test_device_distribution(con: duckdb.DuckDBPyConnection) -> None:
    # Berlin desktop: alice 3, bob 3, dave 2; Sydney mobile: alice 2, carol 5; erin none
    assert rows(q.device_distribution(con, ALL)) == [
        ("desktop", "Linux", 8, 3),
        ("mobile", "iOS", 7, 2),
        ("unknown", "unknown", 1, 1),
    ]


def test_sign_in_geography(con: duckdb.DuckDBPyConnection) -> None:
    assert rows(q.sign_in_geography(con, ALL)) == [
        ("DE", 52.5, 13.4, 8, 1, 3),
        ("AU", -33.9, 151.2, 7, 1, 2),
    ]


def test_anomalies_feed_and_impossible_travel_arcs(con: duckdb.DuckDBPyConnection) -> None:
    feed = q.anomalies(con, ALL)
    assert list(feed["detection"]) == ["push_fatigue", "impossible_travel"]
    assert list(feed["severity"]) == ["medium", "high"]
    assert list(feed["subject"]) == ["carol", "alice"]
    assert list(feed["country"].astype(object).where(feed["country"].notna(), None)) == [
        None,
        "AU",
    ]
    arcs = q.impossible_travel_arcs(con, ALL)
    assert rows(arcs.drop(columns=["time", "id"])) == [
        ("acme", "alice", "DE", 52.52, 13.405, "AU", -33.87, 151.21, 700.0, "high")
    ]
    assert q.impossible_travel_arcs(con, q.Filters(tenant="globex")).empty


def test_an_arc_starts_where_the_evidence_says_and_needs_no_event(tmp_path: Path) -> None:
    """A detection with the start's coordinates in its evidence is drawn from them alone:
    its previous sign-in is not in the lake (erased, or older than the lake)."""
    lake = tmp_path / "lake"
    evidence = {
        "speed_kmh": 1200.0,
        "from_country": "FR",
        "from_latitude": 48.86,
        "from_longitude": 2.35,
    }
    detected = ev(
        p.RiskDetected(
            detection=p.Detection.IMPOSSIBLE_TRAVEL,
            severity=RiskLevel.HIGH,
            score=72,
            summary="Paris to Sydney",
            evidence=evidence,
            related_event_ids=[
                "0190a000-0000-7000-8000-00000000dead",
                "0190a000-0000-7000-8000-00000000beef",
            ],
            client=SYDNEY,
        ),
        "alice",
        at(D2, "09:00:06"),
        "k9",
    )
    LakeWriter(lake).write_events([detected])
    with connect(lake) as connection:
        arcs = q.impossible_travel_arcs(connection, ALL)
    assert rows(arcs.drop(columns=["time"])) == [
        (detected.id, "acme", "alice", "FR", 48.86, 2.35, "AU", -33.87, 151.21, 1200.0, "high")
    ]


def test_lockouts_over_time(con: duckdb.DuckDBPyConnection) -> None:
    assert rows(q.lockouts_over_time(con, ALL)) == [
        (DAY1, "subject", 1, 1, 1),
        (DAY2, "factor", 1, 0, 1),
    ]
    assert rows(q.lockouts_over_time(con, q.Filters(factor="sms"))) == [(DAY2, "factor", 1, 0, 1)]


def test_sms_delivery_failure_rate(con: duckdb.DuckDBPyConnection) -> None:
    assert rows(q.sms_delivery_failure_rate(con, ALL)) == [(DAY2, "twilio", 2, 1, 0.5)]


def test_push_fatigue_incidents(con: duckdb.DuckDBPyConnection) -> None:
    incidents = q.push_fatigue_incidents(con, ALL)
    assert rows(incidents.drop(columns=["time", "id"])) == [
        ("acme", "carol", "medium", 60, 3, 0, None, "3 pushes rejected")
    ]


def test_privileged_role_coverage(con: duckdb.DuckDBPyConnection) -> None:
    coverage = q.privileged_role_coverage(con, ALL)
    assert rows(coverage.drop(columns=["last_seen"])) == [
        ("acme", "frank", "administrator", "business", False, "totp", 0, 0),
        ("acme", "dave", "admin", "admin", True, "webauthn", 1, 0),
    ]
    assert [t.isoformat() for t in coverage["last_seen"]] == [
        "2026-11-03T14:00:00+00:00",
        "2026-11-03T11:00:03+00:00",
    ]


def test_policy_tiers(con: duckdb.DuckDBPyConnection) -> None:
    assert rows(q.policy_tiers(con, ALL)) == [
        ("business", 13, 3),
        ("admin", 2, 1),
        ("unknown", 1, 1),
    ]


def test_overview_kpis(con: duckdb.DuckDBPyConnection) -> None:
    # successes with a time to complete: 2 000, 4 000, 6 000, 8 000, 10 000, 20 000 → 7 000
    assert rows(q.overview_kpis(con, ALL)) == [(37, 6, 9, 0.6667, 7000.0, 2, 2, 1, 0.5)]
    assert list(q.overview_kpis(con, ALL).columns) == [
        "events",
        "active_subjects",
        "verifications",
        "success_rate",
        "p50_time_to_complete_ms",
        "lockouts_applied",
        "risk_detections",
        "high_risk_detections",
        "sms_delivery_failure_rate",
    ]


HOSTILE = "acme'; DROP VIEW events; --"


@pytest.mark.parametrize("name", sorted(q.QUERIES))
def test_filter_values_are_bound_not_pasted(con: duckdb.DuckDBPyConnection, name: str) -> None:
    hostile = q.Filters(tenant=HOSTILE, factor=HOSTILE, application=HOSTILE)
    frame = q.QUERIES[name](con, hostile)
    if name == "overview_kpis":  # one row of zero counts
        assert frame.loc[0, "events"] == 0 and frame.loc[0, "verifications"] == 0
    else:
        assert frame.empty
    assert con.execute("SELECT count(*) FROM events").fetchone() == (37,)


def test_filters_refuse_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        q.Filters(since=at(D1, "00:00:00").replace(tzinfo=None))
