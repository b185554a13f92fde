"""Personal data retention on SQLite and a real PostgreSQL server: keys rotate, old
entries are shredded, recent ones stay readable, the tree still verifies."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.factories import T0, sample_event
from tests.unit.audit.ledger_support import open_test_ledger

DAY = timedelta(days=1)


def test_old_personal_data_is_shredded_and_recent_data_stays(
    ledger_url: str, tmp_path: Path
) -> None:
    ledger = open_test_ledger(tmp_path, ledger_url, every=1)
    days = (0, 20, 45, 400, 470)
    events = {day: sample_event(subject="u-1", now=T0 + day * DAY) for day in days}
    for day, event in events.items():
        ledger.append([event], now=T0 + day * DAY)
    with ledger.engine.connect() as connection:
        keys = connection.exec_driver_sql("SELECT count(*) FROM ledger_subject_keys").scalar()
    assert keys == 4  # days 0 and 20 share the first key (30-day rotation)
    assert ledger.shred_older_than(timedelta(days=400), now=T0 + 480 * DAY) == 2
    erased = {row.event["id"]: bool(row.erased) for row in ledger.rows()}
    assert [day for day, e in events.items() if erased[e.id]] == [0, 20, 45]
    assert ledger.oldest_readable_key() == T0 + 400 * DAY
    assert ledger.shred_older_than(timedelta(days=400), now=T0 + 480 * DAY) == 0
    assert ledger.verify().ok
    ledger.engine.dispose()
