"""``factorstream demo`` from outside: it starts Kafka, the worker, the simulator and the
dashboard on an empty data dir; every attack scenario reaches the lake (what the
dashboard's anomaly feed and lockout pages show), and the worker's and the dashboard's
/metrics show what went through; the demo auditor signs in (password and TOTP) and every
page shows data in headless Chromium; SIGINT leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from analytics.queries import QUERIES, Filters
from analytics.views import connect, fetch
from factorstream.demo import read_demo_auditor
from factorstream.localkafka import free_port
from factorstream.settings import Settings
from factorstream.simulator.scenarios import EXPECTED
from tests.e2e.dashboard.conftest import PAGES, chromium, wait_for, wait_for_page_data
from tests.prometheus import check_metrics, scrape, total

ROOT = Path(__file__).resolve().parents[2]


def _ours(data_dir: Path) -> list[str]:
    """Processes whose command line or environment names ``data_dir``."""
    found = []
    needle = str(data_dir).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (
                needle in (entry / "cmdline").read_bytes()
                or needle in (entry / "environ").read_bytes()
            ):
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def test_the_demo_runs_the_pipeline_and_sigint_stops_everything(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTORSTREAM_")}
    env.update(
        FACTORSTREAM_DATA_DIR=str(data_dir),
        FACTORSTREAM_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}",
        FACTORSTREAM_KAFKA_PORT=str(port),
        FACTORSTREAM_DASHBOARD__PORT=str(free_port()),
        FACTORSTREAM_STREAM__WEB_PORT=str(free_port()),
        COLUMNS="200",
    )
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "factorstream.cli", "demo", "--users", "12", "--days", "2"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 600
        while "ready in" not in log.read_text(errors="replace"):
            assert demo.poll() is None, log.read_text()[-5000:]
            assert time.monotonic() < deadline, log.read_text()[-5000:]
            time.sleep(1)
        dashboard = f"http://127.0.0.1:{env['FACTORSTREAM_DASHBOARD__PORT']}/login"
        with urllib.request.urlopen(dashboard, timeout=10) as response:  # noqa: S310
            assert response.status == 200
            assert response.headers["Server"] == "factorstream"  # waitress, not Flask's dev server
        assert _ours(data_dir), "the demo's children should be running now"

        # what the dashboard shows: every scenario's detection in the anomaly feed, the
        # lockouts and IP blocks on the lockouts page
        con = connect(data_dir / "lake")
        until = datetime.now(UTC)
        feed = QUERIES["anomalies"](con, Filters(until=until))
        seen = {f"risk.detected/{d}" for d in feed["detection"]}
        types = set(fetch(con, "SELECT DISTINCT type FROM lockouts")["type"])
        missing = {
            name: sorted(expected - seen - types)
            for name, expected in EXPECTED.items()
            if expected - seen - types
        }
        assert not missing, (missing, sorted(seen), sorted(types))

        # the SRE's view: the worker's /metrics counts what went through (docs/metrics.md),
        # at least every event the lake holds by now
        in_lake = int(fetch(con, "SELECT count(*) AS n FROM events")["n"][0])
        worker = f"http://127.0.0.1:{env['FACTORSTREAM_STREAM__WEB_PORT']}/metrics"
        scraped = scrape(worker)
        check_metrics(scraped)
        settings = Settings(data_dir=data_dir)
        ingested = total(
            scraped, "factorstream_worker_records_consumed_total", topic=settings.topics.events
        )
        assert ingested > 0, "the worker counted the events it ingested"
        derived = total(scraped, "factorstream_worker_derived_events_total", type="risk.detected")
        assert derived >= len(seen), "the worker counted its detections"
        assert total(scraped, "factorstream_ledger_appended_events_total") >= ingested
        assert total(scraped, "factorstream_lake_written_events_total") >= in_lake > 0

        # every page shows data to the demo auditor, signed in with password and TOTP
        auditor = read_demo_auditor(Settings(data_dir=data_dir))
        assert auditor is not None
        url = dashboard.removesuffix("/login")
        with chromium(tmp_path / "downloads") as browser:
            browser.get(url + "/login")
            for field, value in (
                ("name", auditor.name),
                ("password", auditor.password),
                ("code", auditor.code(datetime.now(UTC))),
            ):
                browser.find_element("id", field).send_keys(value)
            browser.find_element("id", "sign-in").click()
            wait_for(lambda: browser.find_elements("id", "signed-in-user"), what="the dashboard")
            for path in PAGES:
                browser.get(url + path)
                try:
                    wait_for_page_data(browser, path)
                except AssertionError:  # what the page showed instead, kept with the test
                    browser.save_screenshot(str(tmp_path / "page-without-data.png"))
                    raise
        signed_in = scrape(url + "/metrics")
        check_metrics(signed_in)
        assert total(signed_in, "factorstream_dashboard_sign_ins_total", outcome="succeeded") >= 1
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
            demo.wait(timeout=120)
    assert "nothing the demo started is left running" in log.read_text()
    left = _ours(data_dir)
    assert not left, left
