"""Settings: read from the environment, nested groups with ``__``, typos reported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from factorstream.settings import Settings, setting_fields, unknown_environment


def test_environment_overrides_nested_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACTORSTREAM_KAFKA_BOOTSTRAP", "kafka:9092")
    monkeypatch.setenv("FACTORSTREAM_TOPICS__EVENTS", "x.events")
    monkeypatch.setenv("FACTORSTREAM_RELAY__BATCH_SIZE", "7")
    settings = Settings()
    assert (settings.kafka_bootstrap, settings.topics.events, settings.relay.batch_size) == (
        "kafka:9092",
        "x.events",
        7,
    )


def test_unknown_factorstream_variables_are_named() -> None:
    names = {name for name, _ in setting_fields()}
    assert "FACTORSTREAM_TOPICS__EVENTS" in names and "FACTORSTREAM_RELAY__BATCH_SIZE" in names
    environ = {
        "FACTORSTREAM_KAFKA_BOOTSTRAP": "x",
        "FACTORSTREAM_KAFAK_BOOTSTRAP": "typo",
        "FACTORSTREAM_TOPICS__EVENT": "typo",
        "PATH": "/bin",
    }
    assert unknown_environment(environ) == [
        "FACTORSTREAM_KAFAK_BOOTSTRAP",
        "FACTORSTREAM_TOPICS__EVENT",
    ]


def test_the_cli_warns_about_a_mistyped_setting() -> None:
    env = {**os.environ, "FACTORSTREAM_KAFAK_BOOTSTRAP": "broker:9092"}
    result = subprocess.run(
        [sys.executable, "-m", "factorstream.cli", "schemas", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "FACTORSTREAM_KAFAK_BOOTSTRAP is not a factorstream setting" in result.stderr


def test_settings_pass_to_a_child_process_through_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What the demo and the benchmarks hand to the worker they start reads back equal."""
    from factorstream.settings import DetectionSettings, Settings, StreamSettings, environment

    original = Settings(
        data_dir=tmp_path,
        kafka_bootstrap="127.0.0.1:1234",
        stream=StreamSettings(app_id="child", store="memory://", commit_interval_s=0.5),
        detections=DetectionSettings(sms_premium_countries=["CU", "LV"]),
    )
    variables = environment(original)
    assert variables["FACTORSTREAM_STREAM__APP_ID"] == "child"
    assert variables["FACTORSTREAM_DETECTIONS__SMS_PREMIUM_COUNTRIES"] == '["CU", "LV"]'
    for name in list(os.environ):
        if name.startswith("FACTORSTREAM_"):
            monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert Settings() == original
