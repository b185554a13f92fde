"""SMS cost in the simulation, through the real verifiers into a lake and the dashboard's
metrics: a simulated month shows spend per country; a pumping burst is refused by the
country caps before it costs more than them, and the SMS page's data shows it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from analytics.lake import LakeWriter
from dashboard.data import LakeMetrics
from dashboard.filters import DashboardFilters
from factorstream.simulator.delivery import SMS_COSTS
from schemas import Event, decode
from streams.folds.pumping import SmsPumpingState, fold_sms_pumping
from streams.folds.thresholds import DetectionThresholds
from tests.unit.simulator.conftest import run_verifiers
from verifiers.sendcaps import load_send_charges

PUMPED = ("NG", "VN", "RU", "CN")


def _with_detections(events: list[Event]) -> list[Event]:
    """``events`` and what the stream's SMS-pumping fold derives from them, per tenant."""
    thresholds, states = DetectionThresholds(), {}
    derived: list[Event] = []
    for event in sorted(events, key=lambda e: e.time):
        state = states.get(event.tenant, SmsPumpingState())
        states[event.tenant], found = fold_sms_pumping(state, event, thresholds)
        derived.extend(found)
    return events + derived


def _metrics(tmp_path: Path, events: list[Event]) -> LakeMetrics:
    lake = tmp_path / "lake"
    LakeWriter(lake).write_events(events)
    return LakeMetrics(lake)


def test_a_simulated_month_shows_spend_per_country(tmp_path: Path) -> None:
    values, _ = run_verifiers(tmp_path / "month.db", users=30, days=30, seed=5)
    events = [decode(value) for value in values]
    metrics = _metrics(tmp_path, events)
    spend = metrics.frame("sms_spend_country", DashboardFilters())
    per_country = spend.groupby("country")["cost_micros"].sum()
    assert len(per_country) >= 3 and (per_country > 0).all(), per_country
    days = spend["day"]
    assert days.nunique() >= 5 and (days.max() - days.min()).days >= 14  # over the month
    assert set(spend["currency"]) == {"EUR"}
    sent = [e for e in events if e.type == "mfa.challenge.sent" and e.data.channel == "sms"]
    assert sum(spend["cost_micros"]) == sum(e.data.cost_micros for e in sent)
    receipts = Counter(
        str(e.data.delivery_status) for e in events if e.type == "mfa.challenge.delivery_reported"
    )
    assert receipts["delivered"] > 0 and sum(receipts.values()) == len(sent)


def test_a_pumping_burst_is_refused_by_the_cap_and_the_dashboard_shows_it(
    tmp_path: Path,
) -> None:
    values, _ = run_verifiers(tmp_path / "pump.db", scenarios=("sms_pumping",))
    events = _with_detections([decode(value) for value in values])
    caps = load_send_charges(SMS_COSTS).caps
    paid: Counter[str] = Counter()
    for event in events:
        if event.type == "mfa.challenge.sent" and event.data.destination_country in PUMPED:
            paid[event.data.destination_country] += event.data.cost_micros
    for country in PUMPED:  # each country's bill stayed within its cap
        cap = caps.cap_for(country)
        assert cap.spend is not None and 0 < paid[country] <= cap.spend, country
    refused = [e for e in events if getattr(e.data, "reason", None) == "country_cap"]
    assert refused and {e.data.destination_country for e in refused} <= set(PUMPED)
    assert any(e.type == "risk.detected" and e.data.detection == "sms_pumping" for e in events)
    metrics = _metrics(tmp_path, events)
    pumping = metrics.frame("sms_pumping_spend", DashboardFilters())
    kinds = pumping.groupby("kind")[["sends", "cost"]].sum()
    assert kinds.loc["stopped by the cap", "sends"] == len(refused)
    assert kinds.loc["stopped by the cap", "cost"] > 0
    assert kinds.loc["paid while flagged", "cost"] > 0
