"""Routes: which tenants, types, detections and severities go to which destination."""

from __future__ import annotations

import pytest

from alerts.config import AlertsConfig, Destination, GroupingPolicy, Route
from alerts.errors import AlertsError
from alerts.model import Alert, alert_of
from alerts.routes import routed_to
from schemas.fields import RiskLevel
from schemas.payloads import Detection
from tests.unit.alerts.fixtures import ip_block, lockout, risk

SOC = Destination(name="soc", kind="webhook", url="https://soc.example/hook")
SLACK = Destination(name="slack", kind="slack", url="https://hooks.slack.example/T/B/x")
SIEM = Destination(name="siem", kind="syslog", host="siem.example")


def _alert(event: object) -> Alert:
    alert = alert_of(event, GroupingPolicy())  # type: ignore[arg-type]
    assert alert is not None
    return alert


def test_without_routes_every_destination_takes_alerts_of_the_default_severity() -> None:
    config = AlertsConfig(destinations=(SOC, SIEM), default_min_severity="medium")
    assert routed_to(_alert(risk(severity=RiskLevel.MEDIUM)), "siem", config)
    assert not routed_to(_alert(risk(severity=RiskLevel.LOW)), "soc", config)


def test_routes_filter_by_tenant_type_detection_and_severity() -> None:
    config = AlertsConfig(
        destinations=(SOC, SLACK, SIEM),
        routes=(
            Route(destinations=("siem",), min_severity="none"),  # the SIEM takes everything
            Route(
                destinations=("slack",),
                tenants=frozenset({"acme"}),
                types=frozenset({"risk.detected"}),
                detections=frozenset({"push_fatigue"}),
                min_severity="high",
            ),
            Route(destinations=("soc",), types=frozenset({"lockout.applied", "ip.block.applied"})),
        ),
    )
    high_push = _alert(risk())
    assert routed_to(high_push, "slack", config)
    assert routed_to(high_push, "siem", config)
    assert not routed_to(high_push, "soc", config)
    assert not routed_to(_alert(risk(tenant="globex")), "slack", config)
    assert not routed_to(_alert(risk(severity=RiskLevel.MEDIUM)), "slack", config)
    assert not routed_to(_alert(risk(detection=Detection.OTP_GUESSING)), "slack", config)
    assert routed_to(_alert(lockout()), "soc", config)
    assert routed_to(_alert(ip_block()), "soc", config)
    assert not routed_to(_alert(lockout()), "slack", config)


def test_routes_naming_unknown_destinations_types_or_severities_are_refused() -> None:
    with pytest.raises(AlertsError, match="unknown destinations"):
        AlertsConfig(destinations=(SOC,), routes=(Route(destinations=("nope",)),))
    with pytest.raises(AlertsError, match="not alerted"):
        Route(destinations=("soc",), types=frozenset({"mfa.verification.failed"}))
    with pytest.raises(AlertsError, match="severity"):
        Route(destinations=("soc",), min_severity="urgent")  # type: ignore[arg-type]
    with pytest.raises(AlertsError, match="needs a url"):
        Destination(name="x", kind="webhook")
    with pytest.raises(AlertsError, match="repeat"):
        AlertsConfig(destinations=(SOC, SOC))


def test_the_dedup_key_depends_on_the_alert_and_the_destination_only() -> None:
    alert = _alert(risk())
    again = _alert(risk())  # another event: another id
    assert alert.dedup_key("soc") == alert.dedup_key("soc")
    assert alert.dedup_key("soc") != alert.dedup_key("siem")
    assert alert.dedup_key("soc") != again.dedup_key("soc")
