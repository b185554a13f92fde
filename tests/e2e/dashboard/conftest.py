"""The dashboard served on a free port over a demo lake and ledger, and headless Chromium."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from analytics.lake import LakeWriter
from analytics.tables import flatten
from audit.checkpoints import load_signing_key
from audit.database import ledger_engine
from audit.ledger import Ledger
from audit.shredding import load_master_key
from dashboard.app import create_app, open_directory
from dashboard.users import NewUser, UserDirectory
from factorstream.dashboard_config import dashboard_config
from factorstream.settings import Settings
from tests.support import missing, wait_for
from tests.unit.dashboard.demo import demo_events

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PASSWORD = "e2e passphrase, long enough"
DEMO_START = datetime(2026, 11, 20, tzinfo=UTC)
WIDTH, HEIGHT = 1440, 900
"""The auditor's screen (issue 22): every screenshot and check is taken at this size."""


PAGES = {  # path: (screenshot name, charts expected)
    "/": ("overview", 2),
    "/adoption": ("adoption", 2),
    "/verification": ("verification", 4),
    "/geo": ("geo", 2),
    "/lockouts": ("lockouts", 2),
    "/sms": ("sms", 5),
    "/lifecycle": ("lifecycle", 6),
    "/audit": ("audit", 0),
    "/compliance": ("compliance", 2),
}
CHART_POINTS = """
return Array.from(document.querySelectorAll('.js-plotly-plot')).map(function (g) {
  var n = 0;
  (g.data || []).forEach(function (t) { n += (t.y || t.values || t.lat || []).length; });
  var holder = g.closest('.dash-graph');
  return {id: holder ? holder.id : '', points: n, data: JSON.stringify(g.data || [])};
});
"""


def charts(driver: Any) -> list[dict[str, Any]]:
    charts: list[dict[str, Any]] = driver.execute_script(CHART_POINTS)
    return charts


def wait_for_page_data(driver: Any, path: str) -> list[dict[str, Any]]:
    """Wait until the open page ``path`` shows data: its expected number of charts, each
    with data points (their descriptions are returned), or, on the audit trail, ledger
    rows in the grid."""
    from selenium.webdriver.common.by import By

    expected = PAGES[path][1]
    if not expected:
        wait_for(
            lambda: len(driver.find_elements(By.CSS_SELECTOR, "#audit-grid .ag-row")) > 5,
            what="ledger rows in the grid",
        )
        return []
    found: list[dict[str, Any]] = wait_for(
        lambda: (
            (c := charts(driver)) and len(c) == expected and all(x["points"] > 0 for x in c) and c
        ),
        what=f"{expected} charts with data on {path}",
    )
    return found


@dataclass
class Served:
    url: str
    settings: Settings
    directory: UserDirectory
    auditor: NewUser
    victim: NewUser
    downloads: Path


def demo_ledger(settings: Settings) -> Ledger:
    """The served ledger, opened with its keys (as the worker's ledger sink opens it)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Ledger(
        ledger_engine(settings.ledger_database_url()),
        signing_key=load_signing_key(
            settings.key_file(settings.ledger.signing_key_file, "ledger-signing.pem")
        ),
        master_key=load_master_key(
            settings.key_file(settings.ledger.master_key_file, "ledger-master.key")
        ),
        checkpoint_every=100,
    )


def _demo_ledger(settings: Settings) -> None:
    ledger = demo_ledger(settings)
    ledger.migrate()
    ledger.append(demo_events(start=DEMO_START), now=datetime.now(UTC))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("dashboard-e2e")
    settings = Settings(data_dir=root / "data")
    LakeWriter(settings.lake_path()).write(flatten(demo_events(start=DEMO_START)))
    _demo_ledger(settings)
    directory = open_directory(dashboard_config(settings))
    now = datetime.now(UTC)
    auditor = directory.add("auditor-ann", role="auditor", password=PASSWORD, now=now)
    victim = directory.add("victim-vic", role="auditor", password=PASSWORD, now=now)
    app = create_app(dashboard_config(settings))
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    downloads = root / "downloads"
    downloads.mkdir()
    try:
        yield Served(
            f"http://127.0.0.1:{server.server_port}",
            settings,
            directory,
            auditor,
            victim,
            downloads,
        )
    finally:
        server.shutdown()
        thread.join(timeout=10)


@contextlib.contextmanager
def chromium(downloads: Path) -> Iterator[Any]:
    """Headless Debian Chromium through Debian's chromedriver (no Selenium Manager),
    downloading into ``downloads``."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        missing("chromium", f"{CHROMIUM} and {CHROMEDRIVER} are needed (apt: chromium-driver)")
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={WIDTH},{HEIGHT}",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console errors
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    try:
        driver = webdriver.Chrome(
            service=Service(executable_path=str(CHROMEDRIVER)), options=options
        )
    except WebDriverException as error:
        missing("chromium", f"chromedriver did not start: {error.msg}")
    driver.execute_cdp_cmd(  # the screenshots' size, whatever the window decorations take
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    try:
        yield driver
    finally:
        driver.quit()


def fill_login(driver: Any, served: Served, user: NewUser, code: str) -> None:
    """Open the dashboard, get redirected to /login, and submit ``user``'s sign-in."""
    from selenium.webdriver.common.by import By

    driver.get(served.url + "/")
    wait_for(lambda: "/login" in driver.current_url, what="the redirect to /login")
    driver.find_element(By.ID, "name").send_keys(user.user.name)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "code").send_keys(code)
    driver.find_element(By.ID, "sign-in").click()


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[object]:
    with chromium(served.downloads) as driver:
        yield driver


README_SCREENSHOTS = Path(__file__).resolve().parents[3] / "dashboard" / "screenshots"


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where each page's screenshot goes: a temporary directory, or the README's
    (``dashboard/screenshots``) when ``UPDATE_SCREENSHOTS=1`` — a test run leaves the
    checkout as it was unless asked."""
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        README_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return README_SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")
