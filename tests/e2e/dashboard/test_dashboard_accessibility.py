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
return !!document.querySelector('.page-header')
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
