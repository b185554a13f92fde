"""``factorstream clients`` and ``service-keys``: credentials shown once and revocable, a
rotation that keeps the old key published."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_a_client_is_added_listed_without_its_secret_and_revoked(tmp_path: Path) -> None:
    added = factorstream(tmp_path, "clients", "add", "--tenant", "acme", "--label", "login")
    credential = added.stdout.strip()
    client_id, secret = credential.removeprefix("fsc_").split(".")
    assert credential.startswith("fsc_") and len(secret) == 43  # 256 bits, base64url
    assert client_id in added.stderr and secret not in added.stderr

    listed = factorstream(tmp_path, "clients", "list").stdout
    assert client_id in listed and "acme" in listed and secret not in listed
    assert secret.encode() not in (tmp_path / "outbox.db").read_bytes()

    factorstream(tmp_path, "clients", "revoke", client_id)
    again = factorstream(tmp_path, "clients", "revoke", client_id, check=False)
    assert again.returncode == 1 and "no client" in again.stderr
    refused = factorstream(tmp_path, "clients", "add", "--tenant", "a b", check=False)
    assert refused.returncode == 1 and "tenant" in refused.stderr


def test_rotating_the_signing_key_keeps_the_old_one_published(tmp_path: Path) -> None:
    before = json.loads(factorstream(tmp_path, "service-keys", "show").stdout)["keys"]
    factorstream(tmp_path, "service-keys", "rotate")
    after = json.loads(factorstream(tmp_path, "service-keys", "show").stdout)["keys"]
    assert len(before) == 1 and len(after) == 2
    assert after[1] == before[0] and after[0]["kid"] != before[0]["kid"]
    assert (tmp_path / "keys" / "service-signing.pem").stat().st_mode & 0o777 == 0o600


def test_the_service_settings_reach_its_config_and_delivery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from factorstream.service_config import service_config
    from factorstream.settings import Settings
    from verifiers.delivery import HttpSmsProvider, SmtpEmailProvider
    from verifiers.service.server import open_delivery

    for name, value in {
        "DATA_DIR": str(tmp_path),
        "SERVICE__ISSUER": "https://mfa.example:8443",
        "SERVICE__WEBAUTHN_ORIGINS": '["https://login.example.com"]',
        "SERVICE__SMTP_HOST": "smtp.example",
        "SERVICE__SMTP_PORT": "587",
        "SERVICE__SMTP_STARTTLS": "true",
        "SERVICE__SMTP_USERNAME": "mailer",
        "SERVICE__SMTP_PASSWORD": "smtp-secret",
        "SERVICE__SMS_GATEWAY_URL": "https://gw.example/messages",
        "SERVICE__SMS_GATEWAY_TOKEN": "gw-secret",
    }.items():
        monkeypatch.setenv(f"FACTORSTREAM_{name}", value)

    config = service_config(Settings())
    delivery = open_delivery(config)

    assert config.rp_id == "mfa.example"  # no rp id set: the issuer's host
    assert config.origins == ("https://login.example.com",)
    assert "smtp-secret" not in repr(config) and "gw-secret" not in repr(config)
    assert delivery is not None
    smtp, gateway = delivery.providers
    assert isinstance(smtp, SmtpEmailProvider) and isinstance(gateway, HttpSmsProvider)
    assert (smtp.host, smtp.port, smtp.starttls, smtp.username) == (
        "smtp.example",
        587,
        True,
        "mailer",
    )
    assert gateway.url == "https://gw.example/messages"
    monkeypatch.delenv("FACTORSTREAM_SERVICE__SMTP_HOST")
    monkeypatch.delenv("FACTORSTREAM_SERVICE__SMS_GATEWAY_URL")
    monkeypatch.delenv("FACTORSTREAM_SERVICE__WEBAUTHN_ORIGINS")
    bare = service_config(Settings())
    assert open_delivery(bare) is None
    assert bare.origins == ("https://mfa.example:8443",)


def test_sms_costs_shows_a_table_and_refuses_a_bad_one(tmp_path: Path) -> None:
    shown = factorstream(tmp_path, "sms-costs", "factorstream/simulator/sms_costs.toml").stdout
    assert "simsms-primary" in shown and "0.0079" in shown and "prices in EUR" in shown
    assert "15.00" in shown  # a cap of the pumping countries
    bad = tmp_path / "prices.toml"
    bad.write_text('currency = "EUR"\nfallback = 0.5\n')
    refused = factorstream(tmp_path, "sms-costs", str(bad), check=False)
    assert refused.returncode == 1 and "decimal strings" in refused.stderr
    served = subprocess.run(  # noqa: S603 - our interpreter, our CLI
        [sys.executable, "-m", "factorstream.cli", "serve", "--port", "1"],
        env={
            **os.environ,
            "FACTORSTREAM_DATA_DIR": str(tmp_path),
            "FACTORSTREAM_SERVICE__SMS_COSTS_FILE": str(bad),
        },
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert served.returncode == 1 and "SMS costs file" in served.stderr
