"""The dashboard in real headless Chromium: sign in with password + TOTP, every page on
demo data, a filter changes the charts, an export downloads; a wrong code is refused."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa

from dashboard.users import NewUser
from tests.e2e.dashboard.axe import console_errors
from tests.e2e.dashboard.conftest import (
    PAGES,
    Served,
    fill_login,
    wait_for,
    wait_for_page_data,
)
from tests.e2e.dashboard.conftest import charts as _charts
from verifiers.tables import lockout_states


def _failures(served: Served, user: NewUser) -> int:
    with served.directory.engine.connect() as connection:
        state = connection.execute(
            sa.select(lockout_states.c.state).where(lockout_states.c.subject == user.user.subject)
        ).scalar_one_or_none()
    return int(state["failures"]) if state else 0


def test_a_wrong_totp_code_is_refused_and_counted(
    browser: Any, served: Served, screenshots: Path
) -> None:
    from selenium.webdriver.common.by import By

    wrong = pyotp.TOTP(served.victim.secret).at(time.time() + 3600)  # a real code, wrong time
    console_errors(browser)
    fill_login(browser, served, served.victim, wrong)
    error = wait_for(lambda: browser.find_elements(By.ID, "login-error"), what="the error")
    assert "refused" in error[0].text
    # the one console error is this test's own: the refused sign-in is answered 401
    (refused,) = console_errors(browser)
    assert refused.startswith(served.url + "/login ") and "status of 401" in refused, refused
    browser.save_screenshot(str(screenshots / "login.png"))
    assert "/login" in browser.current_url
    assert browser.get_cookie("factorstream_session") is None
    browser.get(served.url + "/_dash-layout")
    assert "sign-in required" in browser.page_source
    assert _failures(served, served.victim) == 1


@pytest.fixture(scope="module")
def signed_in(browser: Any, served: Served) -> Any:
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    fill_login(browser, served, served.auditor, pyotp.TOTP(served.auditor.secret).now())
    wait_for(lambda: browser.find_elements(By.ID, "signed-in-user"), what="the dashboard")
    cookie = browser.get_cookie("factorstream_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    return browser


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_shows_data(
    signed_in: Any, served: Served, screenshots: Path, path: str
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    name, expected = PAGES[path]
    console_errors(signed_in)  # drain: only this page's errors count
    signed_in.get(served.url + path)
    found = wait_for_page_data(signed_in, path)
    assert len(found) == expected and all(chart["points"] > 0 for chart in found), found
    if not expected:  # the audit trail: the signed checkpoint, and verify on demand
        checkpoint = signed_in.find_element(By.ID, "audit-checkpoint").text
        assert "Root hash" in checkpoint
        signed_in.find_element(By.ID, "audit-verify").click()
        result = wait_for(
            lambda: signed_in.find_elements(By.ID, "audit-verify-result"), what="verification"
        )
        assert result[0].text.startswith("Verified")
    ActionChains(signed_in).move_to_element(  # no hover toolbar in the picture
        signed_in.find_element(By.CLASS_NAME, "navbar-brand")
    ).perform()
    time.sleep(0.8)  # let plotly finish its transitions before the picture
    signed_in.save_screenshot(str(screenshots / f"{name}.png"))
    assert console_errors(signed_in) == []


def test_changing_the_tenant_filter_changes_the_charts(signed_in: Any, served: Served) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    signed_in.get(served.url + "/")
    before = wait_for(
        lambda: (c := _charts(signed_in)) and all(x["points"] for x in c) and c,
        what="overview charts",
    )
    before_kpi = signed_in.find_element(By.ID, "kpi-verifications").text
    Select(signed_in.find_element(By.ID, "filter-tenant")).select_by_value("globex")
    after_kpi = wait_for(
        lambda: (t := signed_in.find_element(By.ID, "kpi-verifications").text) != before_kpi and t,
        what="the KPI to change",
    )
    after = wait_for(
        lambda: (
            (c := _charts(signed_in))
            and [x["data"] for x in c] != [x["data"] for x in before]
            and c
        ),
        what="the charts to change",
    )
    assert int(after_kpi.replace(",", "")) < int(before_kpi.replace(",", ""))
    assert json.loads(after[0]["data"]) != json.loads(before[0]["data"])


def test_an_auditor_downloads_an_export(signed_in: Any, served: Served) -> None:
    from selenium.webdriver.common.by import By

    signed_in.get(served.url + "/audit")
    button = wait_for(
        lambda: [b for b in signed_in.find_elements(By.ID, "audit-export-jsonl") if b.is_enabled()],
        what="the export button",
    )
    button[0].click()
    files = wait_for(
        lambda: [p for p in served.downloads.glob("*.jsonl") if p.stat().st_size > 0],
        what="the downloaded export",
    )
    lines = files[0].read_text().splitlines()
    assert len(lines) > 10
    assert {"sequence", "event"} <= set(json.loads(lines[0]))


def test_signing_out_ends_the_session(signed_in: Any, served: Served) -> None:
    from selenium.webdriver.common.by import By

    signed_in.get(served.url + "/")
    wait_for(lambda: signed_in.find_elements(By.ID, "signed-in-user"), what="the dashboard")
    signed_in.find_element(By.XPATH, "//button[text()='Sign out']").click()
    wait_for(lambda: "/login" in signed_in.current_url, what="the login page")
    signed_in.get(served.url + "/verification")
    wait_for(lambda: "/login?next=/verification" in signed_in.current_url, what="a redirect")
