"""The dashboard answers while the lake sink writes: no lock error, never a half-written file."""

from __future__ import annotations

import http.cookiejar
import json
import re
import threading
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

import pyotp

from analytics.lake import LakeWriter
from analytics.tables import flatten
from tests.e2e.dashboard.conftest import PASSWORD, Served
from tests.unit.dashboard.demo import demo_events

KPIS = {
    "output": "..kpi-verifications.children...kpi-success_rate.children...kpi-p50.children..."
    "kpi-lockouts.children...kpi-anomalies.children...kpi-sms.children..."
    "overview-daily.figure...overview-devices.figure..",
    "outputs": [
        {"id": i, "property": p}
        for i, p in (
            ("kpi-verifications", "children"),
            ("kpi-success_rate", "children"),
            ("kpi-p50", "children"),
            ("kpi-lockouts", "children"),
            ("kpi-anomalies", "children"),
            ("kpi-sms", "children"),
            ("overview-daily", "figure"),
            ("overview-devices", "figure"),
        )
    ],
    "inputs": [
        {"id": "filter-tenant", "property": "value", "value": "__all__"},
        {"id": "filter-since", "property": "value", "value": None},
        {"id": "filter-until", "property": "value", "value": None},
        {"id": "filter-factor", "property": "value", "value": "__all__"},
        {"id": "filter-application", "property": "value", "value": "__all__"},
    ],
    "changedPropIds": [],
    "state": [],
}


def test_queries_while_the_sink_writes(served: Served) -> None:
    user = served.directory.add("reader-rita", role="soc", password=PASSWORD, now=datetime.now(UTC))
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(served.url + "/login", timeout=30).read().decode()
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token, "the login form carries no token"
    form = urllib.parse.urlencode(
        {
            "csrf": token.group(1),
            "name": "reader-rita",
            "password": PASSWORD,
            "code": pyotp.TOTP(user.secret).now(),
        }
    ).encode()
    opener.open(served.url + "/login", data=form, timeout=30).read()
    assert any(cookie.name == "factorstream_session" for cookie in jar)

    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:  # another copy of the demo, a day per batch, while readers query
        try:
            writer = LakeWriter(served.settings.lake_path())
            later = demo_events(start=datetime(2026, 12, 1, tzinfo=UTC), days=6, seed=11)
            for quarter in range(6 * 4):  # micro-batches of six hours
                start = datetime(2026, 12, 1, tzinfo=UTC) + timedelta(hours=6 * quarter)
                batch = [e for e in later if start <= e.time < start + timedelta(hours=6)]
                if batch:
                    writer.write(flatten(batch))
        except BaseException as error:  # reported by the test
            errors.append(error)
        finally:
            done.set()

    def verifications() -> int:
        request = urllib.request.Request(  # noqa: S310 - our own server
            served.url + "/_dash-update-component",
            data=json.dumps(KPIS).encode(),
            headers={"Content-Type": "application/json"},
        )
        with opener.open(request, timeout=60) as response:
            assert response.status == 200
            answer = json.loads(response.read())["response"]
        return int(answer["kpi-verifications"]["children"].replace(",", ""))

    counts = [verifications()]
    thread = threading.Thread(target=write)
    thread.start()
    while not done.is_set():
        counts.append(verifications())
    thread.join(timeout=60)
    counts.append(verifications())
    assert not errors, errors
    assert counts == sorted(counts), "a reader saw rows disappear (a half-written file?)"
    assert counts[-1] > counts[0] and len(counts) > 2
