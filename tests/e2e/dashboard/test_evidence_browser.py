"""Acceptance (issue 20): an auditor in headless Chromium downloads an evidence pack from
the Compliance page, checks it offline with its own ``verify.py`` in a Python that has only
``cryptography``, and opens an entry's proof on the Audit trail page: the very entry that
records the download (``audit.evidence.downloaded``, relayed to the ledger), so the pack
handed out is provable. Screenshots: ``evidence-download.png``, ``audit-proof.png``."""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa

from schemas import decode
from schemas.payloads import EvidenceDownloaded
from tests.e2e.dashboard.conftest import Served, demo_ledger, fill_login
from tests.offline_python import run_verify
from tests.support import wait_for
from verifiers.publish import outbox_events


@pytest.fixture(scope="module")
def auditor(browser: Any, served: Served) -> Any:
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    fill_login(browser, served, served.auditor, pyotp.TOTP(served.auditor.secret).now())
    wait_for(lambda: browser.find_elements(By.ID, "signed-in-user"), what="the dashboard")
    return browser


def _downloaded_events(served: Served) -> list[bytes]:
    """The dashboard outbox's ``audit.evidence.downloaded`` events, as the relay sends them."""
    with served.directory.engine.connect() as connection:
        query = sa.select(outbox_events.c.value).where(
            outbox_events.c.event_type == "audit.evidence.downloaded"
        )
        return [bytes(value) for value in connection.scalars(query)]


def test_an_auditor_downloads_a_pack_verifies_it_and_opens_its_record_s_proof(
    auditor: Any, served: Served, screenshots: Path, bare_python: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    # the Compliance page: the controls' status, then the SOC 2 pack downloaded
    auditor.get(served.url + "/compliance")
    wait_for(lambda: auditor.find_elements(By.ID, "compliance-controls-table"), what="the controls")
    link = auditor.find_element(By.ID, "compliance-pack-soc2")
    assert link.tag_name == "a" and "/evidence/soc2.zip" in link.get_attribute("href")
    link.click()
    (archive,) = wait_for(
        lambda: [
            p
            for p in served.downloads.glob("factorstream-evidence-soc2-*.zip")
            if p.stat().st_size > 0
        ],
        what="the downloaded pack",
    )
    ActionChains(auditor).move_to_element(
        auditor.find_element(By.CLASS_NAME, "navbar-brand")
    ).perform()
    time.sleep(0.8)  # plotly's transitions, before the picture
    auditor.save_screenshot(str(screenshots / "evidence-download.png"))

    # offline, as the auditor would: unzip, then the pack's own script, cryptography alone
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(tmp_path / "unzipped")
    (pack,) = (tmp_path / "unzipped").iterdir()
    result = run_verify(bare_python, pack)
    assert result.returncode == 0, result.stderr
    assert "the evidence pack verifies" in result.stdout
    digest = hashlib.sha256((pack / "manifest.json").read_bytes()).hexdigest()

    # the download was recorded with that digest; the relay and the worker's ledger sink
    # carry it into the ledger (done here by appending it as the sink does, then signing)
    (value,) = _downloaded_events(served)
    recorded = decode(value)
    assert isinstance(recorded.data, EvidenceDownloaded)
    assert recorded.data.manifest_sha256 == digest
    assert recorded.subject == served.auditor.user.subject
    ledger = demo_ledger(served.settings)
    ledger.append([value], now=recorded.time)
    ledger.tick(now=recorded.time, force=True)

    # the Audit trail: how many entries, then the newest (the record) opened with its proof
    auditor.get(served.url + "/audit")
    count = wait_for(
        lambda: [
            e.text for e in auditor.find_elements(By.ID, "audit-count") if "entries" in e.text
        ],
        what="the entry count",
    )[0]
    assert f"of the ledger's {ledger.size():,} entries" in count
    first = wait_for(
        lambda: auditor.find_elements(
            By.CSS_SELECTOR, "#audit-grid .ag-row[row-index='0'] [col-id='type']"
        ),
        what="the newest entry in the grid",
    )
    assert first[0].text == "audit.evidence.downloaded"
    first[0].click()
    status = wait_for(
        lambda: [e for e in auditor.find_elements(By.ID, "audit-proof-status") if e.is_displayed()],
        what="the entry's proof",
    )
    assert status[0].text.startswith("Proof verified"), status[0].text
    event = json.loads(auditor.find_element(By.ID, "audit-entry-event").text)
    assert event["id"] == recorded.id and event["data"]["manifest_sha256"] == digest
    proof = json.loads(auditor.find_element(By.ID, "audit-entry-proof").text)
    assert proof["event_id"] == recorded.id
    assert proof["checkpoint"]["tree_size"] == ledger.size()
    time.sleep(0.5)  # the modal's fade-in, before the picture
    auditor.save_screenshot(str(screenshots / "audit-proof.png"))
