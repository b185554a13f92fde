"""Acceptance (issue 22): axe-core finds no serious or critical violation, and the browser
logs no console error, on the sign-in page and on every page the dashboard registers
(``dash.page_registry``, so a new page is covered without editing this test); the
keyboard reaches the content, the grids and the charts' numbers' rows."""

from __future__ import annotations

from typing import Any

import dash
import pyotp
import pytest

from tests.e2e.dashboard.axe import axe_source, console_errors, run_axe
from tests.e2e.dashboard.conftest import PAGES, Served, fill_login, wait_for_page_data
from tests.support import wait_for

SETTLED = """
return !!document.querySelector('#_pages_content h1')
  && !document.querySelector('[data-dash-is-loading="true"]')
  && !document.querySelector('._dash-loading');
"""


@pytest.fixture(scope="module")
def axe() -> str:
    return axe_source()


def settle(driver: Any, path: str) -> None:
    """Wait until the open page has rendered its data (its charts or rows when known)."""
    if path in PAGES:
        wait_for_page_data(driver, path)
    wait_for(lambda: driver.execute_script(SETTLED), what=f"{path} to settle")


def test_the_sign_in_page_passes_axe_without_console_errors(
    browser: Any, served: Served, axe: str
) -> None:
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    console_errors(browser)  # drain what earlier tests logged
    browser.get(served.url + "/login")
    wait_for(lambda: browser.find_elements(By.ID, "sign-in"), what="the sign-in form")
    violations = run_axe(browser, axe, "/login")
    assert not violations, "\n".join(str(v) for v in violations)
    assert console_errors(browser) == []


def test_the_checks_catch_a_planted_violation_and_console_error(
    browser: Any, served: Served, axe: str
) -> None:
    """The harness can fail: an unlabelled input, grey-on-grey text and a console error
    planted in the sign-in page are each reported."""
    browser.get(served.url + "/login")
    console_errors(browser)
    browser.execute_script(
        "var f = document.createElement('div');"
        "f.innerHTML = '<input type=text><p style=\"color:#ddd;background:#fff\">faint</p>';"
        "document.querySelector('main').appendChild(f); console.error('planted');"
    )
    rules = {v.rule for v in run_axe(browser, axe, "/login")}
    assert {"label", "color-contrast"} <= rules
    assert any("planted" in m for m in console_errors(browser))


@pytest.fixture(scope="module")
def signed_in(browser: Any, served: Served) -> Any:
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    fill_login(browser, served, served.auditor, pyotp.TOTP(served.auditor.secret).now())
    wait_for(lambda: browser.find_elements(By.ID, "signed-in-user"), what="the dashboard")
    return browser


def registered_paths() -> list[str]:
    return [page["relative_path"] for page in dash.page_registry.values()]


def test_every_registered_page_passes_axe_without_console_errors(
    signed_in: Any, served: Served, axe: str
) -> None:
    paths = registered_paths()
    assert set(PAGES) <= set(paths), "a page the screenshots expect is not registered"
    problems: list[str] = []
    for path in paths:
        console_errors(signed_in)
        signed_in.get(served.url + path)
        settle(signed_in, path)
        problems += [str(v) for v in run_axe(signed_in, axe, path)]
        problems += [f"{path}: console error: {m}" for m in console_errors(signed_in)]
    assert not problems, "\n".join(problems)


def test_a_tile_s_number_opens_the_rows_behind_it(signed_in: Any, served: Served) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    signed_in.get(served.url + "/")
    wait_for_page_data(signed_in, "/")
    signed_in.find_element(By.ID, "kpi-lockouts-rows").click()
    wait_for(lambda: "/audit?type=" in signed_in.current_url, what="the audit trail")
    wait_for(lambda: signed_in.find_elements(By.CSS_SELECTOR, "#audit-grid .ag-row"), what="rows")
    chosen = Select(signed_in.find_element(By.ID, "audit-type")).first_selected_option
    assert chosen.text == "ip.block.applied or lockout.applied"
    types = {
        cell.text
        for cell in signed_in.find_elements(By.CSS_SELECTOR, "#audit-grid [col-id='type']")
    }
    assert types - {"Type"} == {"lockout.applied"}  # the demo's lockouts, nothing else


def _tab_until(driver: Any, found: Any, *, presses: int = 80) -> Any:
    from selenium.webdriver.common.keys import Keys

    for _ in range(presses):
        driver.switch_to.active_element.send_keys(Keys.TAB)
        if element := found(driver.switch_to.active_element):
            return element
    raise AssertionError(f"{presses} presses of Tab did not reach it")


def test_the_keyboard_skips_to_the_content_and_opens_a_grid_entry(
    signed_in: Any, served: Served, axe: str
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    signed_in.get(served.url + "/audit")
    settle(signed_in, "/audit")
    skip = _tab_until(signed_in, lambda e: e.text == "Skip to the content" and e, presses=1)
    skip.send_keys(Keys.ENTER)
    assert signed_in.switch_to.active_element.get_attribute("id") == "content"
    cell = _tab_until(signed_in, lambda e: "ag-cell" in (e.get_attribute("class") or "") and e)
    cell.send_keys(Keys.SPACE)  # pick the focused row: its full event opens
    title = wait_for(
        lambda: signed_in.find_elements(By.ID, "audit-entry-title"), what="the entry's panel"
    )
    assert title[0].text.startswith("Entry ")
    wait_for(lambda: signed_in.find_elements(By.ID, "audit-proof-status"), what="the proof")
    violations = run_axe(signed_in, axe, "/audit, an entry open")  # the dialog too
    assert not violations, "\n".join(str(v) for v in violations)


def test_a_picked_detection_reads_whole_beside_the_feed(
    signed_in: Any, served: Served, axe: str
) -> None:
    from selenium.webdriver.common.by import By

    signed_in.get(served.url + "/geo")
    settle(signed_in, "/geo")
    summary = wait_for(
        lambda: signed_in.find_elements(By.CSS_SELECTOR, "#geo-feed .ag-row [col-id='summary']"),
        what="the feed's rows",
    )[0]
    whole = summary.get_attribute("title")  # the value on hover
    assert whole and whole.startswith(summary.text.rstrip("…").rstrip("."))
    summary.click()
    wait_for(
        lambda: whole in signed_in.find_element(By.ID, "geo-feed-detail").text,
        what="the detection in the detail panel",
    )
    violations = run_axe(signed_in, axe, "/geo, a detection picked")
    assert not violations, "\n".join(str(v) for v in violations)
