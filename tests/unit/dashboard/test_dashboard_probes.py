"""The dashboard's probes need no session and its ``/metrics`` counts sign-ins by outcome
and reason (``promtool check metrics`` passes on it)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from dashboard.app import create_app
from factorstream.dashboard_config import dashboard_config
from factorstream.settings import Settings
from tests.prometheus import check_metrics, total
from tests.unit.dashboard.conftest import AddUser, Clock, post_login, sign_in


def test_probes_answer_without_a_session_and_sign_ins_are_counted(
    settings: Settings, lake: Path, clock: Clock, add_user: AddUser
) -> None:
    app = create_app(dashboard_config(settings), now=clock, registry=CollectorRegistry())
    account = add_user()
    with app.server.test_client() as client:
        assert client.get("/health").json == {"status": "up"}
        ready = client.get("/ready")
        assert (ready.status_code, ready.json) == (
            200,
            {"ready": True, "checks": {"database": True}},
        )
        refused = post_login(client, name=account.name, password=account.password, code="000000")
        assert refused.status_code == 401
        assert sign_in(client, account, clock.advance(seconds=30)).status_code == 302
        scraped = client.get("/metrics")
        assert client.get("/_dash-layout").status_code == 200  # signed in
    text = scraped.get_data(as_text=True)

    assert scraped.status_code == 200 and scraped.content_type.startswith("text/plain")
    check_metrics(text)
    assert total(text, "factorstream_dashboard_sign_ins_total", outcome="succeeded") == 1
    failed = total(text, "factorstream_dashboard_sign_ins_total", outcome="failed")
    assert failed == 1
    assert account.name not in text
