"""``factorstream alerts test|destinations`` against a real receiver, and bad settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from factorstream.localkafka import free_port
from tests.integration.alerts.receivers import ROOT, UdpSyslog, webhook_receiver
from tests.support import wait_for


def _cli(tmp_path: Path, *args: str, **settings: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORSTREAM_")}
    env["FACTORSTREAM_DATA_DIR"] = str(tmp_path / "data")
    for name, value in settings.items():
        env[f"FACTORSTREAM_ALERTS__{name.upper()}"] = json.dumps(value)
    return subprocess.run(
        [sys.executable, "-m", "factorstream.cli", "alerts", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_alerts_test_sends_a_signed_test_alert_to_a_webhook_and_to_syslog(tmp_path: Path) -> None:
    secret = tmp_path / "soc.key"
    secret.write_bytes(b"soc-secret")
    with (
        UdpSyslog() as syslog,
        webhook_receiver(free_port(), tmp_path / "got.jsonl", secret) as soc,
    ):
        destinations = [
            {"name": "soc", "kind": "webhook", "url": soc.url, "secret_file": str(secret)},
            {"name": "siem", "kind": "syslog", "host": "127.0.0.1", "port": syslog.port},
        ]
        done = _cli(tmp_path, "test", "soc", "--severity", "high", destinations=destinations)
        assert done.returncode == 0, done.stderr
        assert "soc: delivered after 1 attempt" in done.stdout
        body = soc.received()[0]["body"]
        assert (body["kind"], body["severity"], body["tenant"]) == (
            "test",
            "high",
            "factorstream-test",
        )
        done = _cli(tmp_path, "test", "siem", destinations=destinations)
        assert done.returncode == 0, done.stderr
        wait_for(lambda: syslog.messages, what="the test alert over syslog")
        listed = _cli(tmp_path, "destinations", destinations=destinations)
        assert "soc webhook alert" in listed.stdout and "(signed)" in listed.stdout
        assert f"udp://127.0.0.1:{syslog.port}" in listed.stdout


def test_alerts_test_fails_when_the_destination_does_not_take_it(tmp_path: Path) -> None:
    dead = [{"name": "soc", "kind": "webhook", "url": f"http://127.0.0.1:{free_port()}/"}]
    done = _cli(tmp_path, "test", "soc", "--give-up-after-s", "1", destinations=dead)
    assert done.returncode == 1 and "NOT delivered" in done.stdout


def test_bad_alert_settings_are_one_line_each(tmp_path: Path) -> None:
    done = _cli(tmp_path, "test", "soc")
    assert done.returncode == 1 and "no destination" in done.stderr
    soc = [{"name": "soc", "kind": "webhook", "url": "https://soc.example/"}]
    done = _cli(tmp_path, "test", "soc", destinations=soc, routes=[{"destinations": ["nope"]}])
    assert done.returncode == 1 and "unknown destinations" in done.stderr
    done = _cli(tmp_path, "test", "soc", destinations=[{"name": "soc", "kind": "pager"}])
    assert done.returncode == 1 and "FACTORSTREAM_ALERTS__DESTINATIONS" in done.stderr
    assert "Traceback" not in done.stderr
