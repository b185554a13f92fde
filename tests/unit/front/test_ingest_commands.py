"""``factorstream ingest credentials``: shown once, stored hashed in the ingest's own
database, revocable; the ingest settings reach its configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from factorstream.ingest_config import ingest_server_config
from factorstream.settings import Settings
from sources.credentials import ingest_credentials

ROOT = Path(__file__).parents[3]


def factorstream(
    data_dir: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our interpreter, our CLI
        [sys.executable, "-m", "factorstream.cli", *args],
        env={**os.environ, "FACTORSTREAM_DATA_DIR": str(data_dir), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=check,
        timeout=60,
    )


def test_an_ingest_credential_is_added_listed_without_its_secret_and_revoked(
    tmp_path: Path,
) -> None:
    added = factorstream(tmp_path, "ingest", "credentials", "add", "--tenant", "acme")
    credential = added.stdout.strip()
    client_id, secret = credential.removeprefix("fsc_").split(".")
    assert client_id in added.stderr and secret not in added.stderr
    listed = factorstream(tmp_path, "ingest", "credentials", "list").stdout
    assert client_id in listed and "acme" in listed and secret not in listed
    database = tmp_path / "ingest.db"
    assert secret.encode() not in database.read_bytes()
    store = ingest_credentials(f"sqlite:///{database}")
    client = store.authenticate(credential)
    assert client is not None and client.tenant == "acme"
    assert not (tmp_path / "outbox.db").exists()  # not the MFA service's credentials

    factorstream(tmp_path, "ingest", "credentials", "revoke", client_id)
    assert ingest_credentials(f"sqlite:///{database}").authenticate(credential) is None
    again = factorstream(tmp_path, "ingest", "credentials", "revoke", client_id, check=False)
    assert again.returncode == 1 and "no ingest credential" in again.stderr
    refused = factorstream(tmp_path, "ingest", "credentials", "add", "--tenant", "a b", check=False)
    assert refused.returncode == 1 and "tenant" in refused.stderr
    store.engine.dispose()


def test_the_ingest_settings_reach_its_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "DATA_DIR": str(tmp_path),
        "KAFKA_BOOTSTRAP": "broker-1:9092,broker-2:9092",
        "INGEST__EVENTS_TOPIC": "tenant.events",
        "INGEST__MAX_BATCH_EVENTS": "50",
        "INGEST__SIGNING_SECRET": "s3cret",
        "INGEST__SIGNATURE_WINDOW_S": "60",
        "INGEST__DELIVERY_TIMEOUT_S": "2.5",
        "STREAM__MAX_AHEAD_S": "30",
    }.items():
        monkeypatch.setenv(f"FACTORSTREAM_{name}", value)

    config = ingest_server_config(Settings())

    assert config.topic == "tenant.events"
    assert config.kafka["bootstrap_servers"] == ["broker-1:9092", "broker-2:9092"]
    assert config.app.max_batch_events == 50
    assert config.app.signing_secret == b"s3cret"
    assert config.app.signature_window == timedelta(seconds=60)
    assert config.app.max_ahead == timedelta(seconds=30)
    assert config.delivery_timeout_s == 2.5
    assert config.database_url == f"sqlite:///{(tmp_path / 'ingest.db').resolve()}"
    assert len(config.app.control_keys) == 1  # this data_dir's own control key
    assert "s3cret" not in repr(config)
