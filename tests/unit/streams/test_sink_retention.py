"""The processes' own retention passes: the ledger sink shreds old personal data on its
timer (logged and counted), the dashboard's session retention runs at most hourly."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from audit.ledger import Ledger
from dashboard.gate import SessionRetention
from dashboard.users import metadata as dashboard_metadata
from dashboard.users import sessions
from streams.metrics import StreamMetrics
from streams.sinks import LedgerSink
from tests.factories import T0, sample_event
from tests.unit.audit.ledger_support import open_test_ledger

DAY = timedelta(days=1)


def test_the_ledger_sink_shreds_old_personal_data_and_counts_it(tmp_path: Path) -> None:
    ledger: Ledger = open_test_ledger(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    old, new = sample_event(subject="u-old", now=T0), sample_event(subject="u-new", now=T0)
    ledger.append([old], now=T0)
    ledger.append([new], now=T0 + 300 * DAY)
    clock = [T0 + 500 * DAY]
    sink = LedgerSink(ledger, send=None, clock=lambda: clock[0], keep_personal=200 * DAY)
    registry = CollectorRegistry()
    sink.metrics = StreamMetrics(registry)
    asyncio.run(sink.apply_retention())
    asyncio.run(sink.apply_retention())  # idempotent
    erased = {row.event["subject"]: bool(row.erased) for row in ledger.rows()}
    assert erased == {"u-old": True, "u-new": False}
    assert sink.shredded == 1
    value = registry.get_sample_value("factorstream_retention_removed_total", {"store": "ledger"})
    assert value == 1.0


def test_a_sink_without_a_period_keeps_everything(tmp_path: Path) -> None:
    ledger = open_test_ledger(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.append([sample_event(subject="u-1", now=T0)], now=T0)
    sink = LedgerSink(ledger, send=None, clock=lambda: T0 + 9000 * DAY)
    asyncio.run(sink.apply_retention())
    assert [bool(row.erased) for row in ledger.rows()] == [False]


def test_session_retention_runs_at_most_hourly(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dashboard.db'}")
    dashboard_metadata.create_all(engine, tables=[sessions])

    def session(name: str, ended_days: int) -> None:
        ended = T0 + ended_days * DAY
        with engine.begin() as connection:
            connection.execute(
                sessions.insert().values(
                    id=name, name="a", created_at=ended, expires_at=ended, ended_at=ended
                )
            )

    session("s-1", 0)
    retention = SessionRetention(30 * DAY)
    assert retention.run_if_due(engine, now=T0 + 31 * DAY) == 1
    session("s-2", 0)
    assert retention.run_if_due(engine, now=T0 + 31 * DAY + timedelta(minutes=30)) == 0
    assert retention.run_if_due(engine, now=T0 + 31 * DAY + timedelta(hours=1)) == 1
    assert SessionRetention(None).run_if_due(engine, now=T0 + 900 * DAY) == 0


def test_the_dashboard_counts_the_sessions_it_expired(tmp_path: Path) -> None:
    from dashboard.probes import DashboardMetrics

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'dashboard.db'}")
    dashboard_metadata.create_all(engine, tables=[sessions])
    with engine.begin() as connection:
        connection.execute(
            sessions.insert().values(id="s", name="a", created_at=T0, expires_at=T0, ended_at=T0)
        )
    registry = CollectorRegistry()
    metrics = DashboardMetrics(registry)
    retention = SessionRetention(DAY, on_expired=metrics.sessions_expired)
    assert retention.run_if_due(engine, now=T0 + 2 * DAY) == 1
    assert registry.get_sample_value("factorstream_dashboard_sessions_expired_total") == 1.0
