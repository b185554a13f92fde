"""Personal data retention in the ledger: a subject's data key seals new entries for one
rotation period, so destroying the keys made before ``now - keep - rotation`` shreds the
personal fields of old entries only, the way erasure does (entries, hashes and proofs
stay). Time is a parameter throughout."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from audit.checkpoints import public_pem
from audit.ledger import KEY_ROTATION, Ledger, LedgerError
from audit.verify import check_proof_document
from schemas import Event
from tests.factories import T0, sample_event
from tests.unit.audit.ledger_support import flat, open_test_ledger, run_cli, settings_env

DAY = timedelta(days=1)
KEEP = timedelta(days=400)


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return open_test_ledger(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}", every=1)


def _sign_in(subject: str, at_day: int, **overrides: object) -> Event:
    return sample_event(
        "mfa.verification.failed",
        subject=subject,
        now=T0 + at_day * DAY,
        correlationid=f"login-{subject}-{at_day}",
        **overrides,
    )


def _erased(ledger: Ledger) -> dict[str, bool]:
    """Event id → whether its personal fields are shredded."""
    return {row.event["id"]: bool(row.erased) for row in ledger.rows()}


def test_a_subject_gets_a_new_key_each_rotation(ledger: Ledger) -> None:
    first, same, later = _sign_in("u-1", 0), _sign_in("u-1", 10), _sign_in("u-1", 31)
    ledger.append([first], now=T0)
    ledger.append([same], now=T0 + 10 * DAY)
    ledger.append([later], now=T0 + 31 * DAY)
    keys = {row.event["id"]: row.event["data"] for row in ledger.rows()}
    assert len(keys) == 3
    with ledger.engine.connect() as connection:
        count = connection.exec_driver_sql("SELECT count(*) FROM ledger_subject_keys").scalar()
    assert count == 2  # days 0 and 10 share a key; day 31 is past the 30-day rotation


def test_old_entries_are_shredded_recent_ones_stay_and_every_proof_verifies(
    ledger: Ledger,
) -> None:
    """Entries recorded on days 0, 100, 380 and 420 (each on a key of its own); retention
    of 400 days applied on day 460 reaches only day 0's key (made before day 460 - 400 -
    30); on day 560 day 100's as well; days 380 and 420 stay readable."""
    at = {0: _sign_in("u-a", 0), 100: _sign_in("u-a", 100), 380: _sign_in("u-b", 380)}
    at[420] = _sign_in("u-a", 420)
    for day, event in at.items():
        ledger.append([event], now=T0 + day * DAY)
    assert ledger.shred_older_than(KEEP, now=T0 + 460 * DAY) == 1
    assert [day for day, e in at.items() if _erased(ledger)[e.id]] == [0]
    now = T0 + 560 * DAY
    assert ledger.shred_older_than(KEEP, now=now) == 1
    erased = _erased(ledger)
    assert erased[at[0].id] and erased[at[100].id]
    assert not erased[at[380].id] and not erased[at[420].id]
    assert ledger.shred_older_than(KEEP, now=now) == 0  # idempotent
    assert ledger.verify().ok
    proof = ledger.prove(at[0].id)
    pems = [public_pem(key) for key in ledger.public_keys().values()]
    assert at[0].id in check_proof_document(json.dumps(proof), public_keys=pems).summary
    assert ledger.oldest_readable_key() == T0 + 380 * DAY


def test_nothing_younger_than_the_period_is_ever_shredded(ledger: Ledger) -> None:
    """A key is destroyed only once every entry it may have sealed is past the period:
    whatever day retention runs on, an entry recorded less than ``keep`` ago still opens."""
    recorded = {day: _sign_in("u-c", day) for day in range(0, 120, 7)}
    for day, event in recorded.items():
        ledger.append([event], now=T0 + day * DAY)
    keep = timedelta(days=40)
    for run in range(40, 200, 9):
        now = T0 + run * DAY
        ledger.shred_older_than(keep, now=now)
        erased = _erased(ledger)
        for day, event in recorded.items():
            if T0 + day * DAY > now - keep:
                assert not erased[event.id], (run, day)
            if T0 + day * DAY < now - keep - KEY_ROTATION:
                assert erased[event.id], (run, day)


def test_a_future_dated_event_is_shredded_by_when_it_was_recorded(ledger: Ledger) -> None:
    """An attacker dates an event years ahead: its key is dated by the ledger's clock, so
    it expires with everything recorded that day, not in 2030."""
    ahead = _sign_in("u-f", 3 * 365)
    ledger.append([ahead], now=T0)
    ledger.shred_older_than(KEEP, now=T0 + 431 * DAY)
    assert _erased(ledger)[ahead.id]


def test_shredding_without_key_rotation_is_refused(tmp_path: Path) -> None:
    ledger = open_test_ledger(tmp_path, f"sqlite:///{tmp_path / 'l.db'}")
    ledger.keys.rotate_after = None
    with pytest.raises(LedgerError, match="needs key rotation"):
        ledger.shred_older_than(KEEP, now=T0)


def test_erase_says_how_long_the_topics_keep_the_subject(tmp_path: Path) -> None:
    """Erasure cannot reach records already on Kafka: the command says which topics keep
    them and for how long (the retention policy in force)."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    open_test_ledger(tmp_path, url).append([_sign_in("u-e", 0)], now=T0)
    env = settings_env(tmp_path, url, FACTORSTREAM_RETENTION__EVENTS_TOPIC_DAYS="3")
    result = run_cli(env, "erase", "acme", "u-e", "--requested-by", "dpo", "--yes", "--no-publish")
    assert result.exit_code == 0, result.output
    said = flat(result)
    assert "the Kafka topics keep the subject's records until their retention" in said
    assert "mfa.events 3 days" in said and "factorstream-events-ingested 3 days" in said
    assert "mfa.audit.checkpoints for ever" in said
