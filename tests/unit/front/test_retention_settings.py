"""The retention settings: safe defaults, refused when a period would delete (almost)
everything unless confirmed, and the topic configs and store values composed from them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from factorstream.retention_config import days, topic_retention_configs
from factorstream.settings import LAKE_MIN_DAYS, RetentionSettings, Settings, environment
from factorstream.stream_config import pipeline_config


def test_the_defaults_bound_every_store_holding_personal_data() -> None:
    policy = RetentionSettings()
    periods = policy.periods()
    assert periods.pop("checkpoints_topic_days") is None  # no personal data: kept
    assert all(value is not None for value in periods.values())
    assert policy.lake_days is not None and policy.lake_days >= LAKE_MIN_DAYS


@pytest.mark.parametrize("name", ["events_topic_days", "lake_days", "outbox_sent_days"])
def test_zero_days_is_refused_even_when_confirmed(name: str) -> None:
    with pytest.raises(ValidationError, match="greater than 0"):
        RetentionSettings(**{name: 0, "allow_short": True})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("events_topic_days", 0.01),
        ("outbox_sent_days", 0.5),
        ("dashboard_sessions_days", 0.04),
        ("ledger_personal_days", 0.9),
        ("lake_days", 30),
    ],
)
def test_a_short_period_needs_explicit_confirmation(name: str, value: float) -> None:
    with pytest.raises(ValidationError, match=f"retention.{name} = .*allow_short"):
        RetentionSettings(**{name: value})
    assert getattr(RetentionSettings(**{name: value, "allow_short": True}), name) == value


def test_the_environment_sets_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACTORSTREAM_RETENTION__OUTBOX_SENT_DAYS", "2")
    monkeypatch.setenv("FACTORSTREAM_RETENTION__LAKE_DAYS", "forever")
    settings = Settings()
    assert settings.retention.outbox_sent_days == 2
    assert settings.retention.lake_days is None


def test_every_topic_holding_events_gets_its_retention() -> None:
    settings = Settings(retention=RetentionSettings(events_topic_days=3, dlq_topic_days=0.5,
                                                    allow_short=True))  # fmt: skip
    wanted = topic_retention_configs(settings)
    three_days = str(3 * 86_400_000)
    for topic in (
        "mfa.events",
        "factorstream-events-ingested",
        "factorstream-events-by-ip",
        "factorstream-events-by-tenant",
    ):
        assert wanted[topic] == {"retention.ms": three_days, "segment.ms": "86400000"}
    assert wanted["mfa.events.dlq"] == {"retention.ms": "43200000", "segment.ms": "43200000"}
    assert wanted["mfa.alerts.dlq"] == wanted["mfa.events.dlq"]
    assert wanted["mfa.lockouts"]["retention.ms"] == str(7 * 86_400_000)
    assert wanted["mfa.audit.checkpoints"] == {"retention.ms": "-1"}


def test_the_sinks_are_given_their_periods() -> None:
    settings = Settings(retention=RetentionSettings(lake_days=None, ledger_personal_days=500))
    config = pipeline_config(settings)
    assert config.lake is not None and config.lake.keep is None
    assert config.ledger is not None and config.ledger.keep_personal == timedelta(days=500)
    assert days(1.5) == timedelta(hours=36) and days(None) is None


def test_a_child_process_reads_back_a_period_kept_for_ever() -> None:
    settings = Settings(retention=RetentionSettings(lake_days=None, outbox_sent_days=3))
    env = environment(settings)
    assert env["FACTORSTREAM_RETENTION__LAKE_DAYS"] == "forever"
    assert env["FACTORSTREAM_RETENTION__OUTBOX_SENT_DAYS"] == "3.0"
    child = Settings.model_validate(
        {"retention": {k.split("__")[1].lower(): v for k, v in env.items() if "RETENTION__" in k}}
    )
    assert child.retention == settings.retention
