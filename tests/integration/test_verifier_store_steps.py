"""The store's one-statement paths on SQLite and a real PostgreSQL server: a gated step's
read comes back with its lock (``Step.rows``), and a guarded change writes its event in
the same statement (``Step.emit_if``). On PostgreSQL the read may see a row as it was
before a step that held the lock committed; the guards must still decide right."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pyotp
import sqlalchemy as sa

from schemas.fields import Factor
from schemas.payloads import VerificationFailed, VerificationSucceeded
from tests.integration.test_verifier_races import START, _request, _store, enrolled, store_url
from tests.unit.verifiers.test_totp import _events as _outbox
from verifiers import totp
from verifiers.store import Verdict, VerifierStore
from verifiers.tables import enrollments, lockout_states

__all__ = ["enrolled", "store_url"]  # the fixtures, shared with the race tests

_ACTIVE_IDS = sa.select(enrollments.c.id).where(
    enrollments.c.tenant == sa.bindparam("tenant"),
    enrollments.c.subject == sa.bindparam("subject"),
    enrollments.c.status == "active",
)
_GUARDED = (
    enrollments.update()
    .where(enrollments.c.id == sa.bindparam("b_id"), enrollments.c.last_step < sa.bindparam("s"))
    .values(last_step=sa.bindparam("s"))
)


def _enrollment_id(store: VerifierStore) -> str:
    with store.engine.connect() as connection:
        return str(connection.execute(sa.select(enrollments.c.id)).scalar_one())


def test_a_gated_steps_read_comes_back_with_the_lock(store_url: str) -> None:
    store = _store(store_url)
    with store.step(_request(START, "nobody"), factor=Factor.TOTP, read=_ACTIVE_IDS) as step:
        assert list(step.rows) == []  # nothing enrolled: no row, not a row of NULLs
    totp.begin_enrollment(store, _request(START, "u-2"), account_name="u-2", issuer="Acme")
    with store.step(_request(START, "u-2"), factor=Factor.TOTP, read=_ACTIVE_IDS) as step:
        assert list(step.rows) == []  # pending is not active
    with store.engine.connect() as connection:
        claimed = connection.execute(sa.select(lockout_states.c.subject)).scalars().all()
    assert sorted(claimed) == ["nobody", "u-2"]  # each gated step created its lockout row


def test_a_guarded_change_and_its_event_commit_together_in_order(
    enrolled: tuple[VerifierStore, str],
) -> None:
    store, _ = enrolled
    enrollment_id = _enrollment_id(store)
    before = _outbox(store)
    with store.step(_request(START), factor=Factor.TOTP) as step:
        step.emit(VerificationFailed(factor=Factor.TOTP, reason="invalid_code"))
        changed = step.emit_if(
            _GUARDED,
            {"b_id": enrollment_id, "s": 10**12},
            VerificationSucceeded(factor=Factor.TOTP, enrollment_id=enrollment_id),
        )
        refused = step.emit_if(
            _GUARDED,
            {"b_id": enrollment_id, "s": 10**12},  # the guard now refuses the same step
            VerificationSucceeded(factor=Factor.TOTP, enrollment_id=enrollment_id),
        )
        assert changed is not None and refused is None
        assert [e.type for e in step.events] == [
            "mfa.verification.failed",
            "mfa.verification.succeeded",
        ]
        # only what was recorded is folded: one failure, then the success resets it
        assert step.state.failures == 0
    assert _outbox(store)[len(before) :] == [
        ("mfa.verification.failed", "invalid_code"),
        ("mfa.verification.succeeded", None),
    ]
    with store.engine.connect() as connection:
        last_step = connection.execute(sa.select(enrollments.c.last_step)).scalar_one()
    assert last_step == 10**12


def _while_the_lock_is_held(
    store: VerifierStore, change: Callable[[sa.Connection], None], attempt: Callable[[], Verdict]
) -> Verdict:
    """Run ``attempt`` in a thread while another gated step of the subject holds its lock
    and makes ``change``; the step commits once ``attempt`` has waited for the lock."""
    verdicts: list[Verdict] = []
    with store.step(_request(START), factor=Factor.TOTP) as holder:
        change(holder.connection)
        thread = threading.Thread(target=lambda: verdicts.append(attempt()))
        thread.start()
        _waits_for_the_lock(store, thread)
    thread.join(timeout=30)
    assert verdicts, "the attempt did not finish"
    return verdicts[0]


def _waits_for_the_lock(store: VerifierStore, thread: threading.Thread) -> None:
    if store.engine.dialect.name != "postgresql":
        time.sleep(0.5)  # SQLite: the attempt waits in BEGIN IMMEDIATE (busy_timeout)
        assert thread.is_alive()
        return
    deadline = time.monotonic() + 10
    with store.engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).scalar_one()
            if waiting:
                return
            connection.rollback()  # a new statistics snapshot for the next look
            time.sleep(0.02)
    raise AssertionError("the attempt never waited for the subject's lock")


def test_a_step_accepted_while_the_verifier_waited_for_the_lock_is_replayed(
    enrolled: tuple[VerifierStore, str],
) -> None:
    store, secret = enrolled
    code = pyotp.TOTP(secret).at(START)
    accepted_step = int(START.timestamp()) // 30
    enrollment_id = _enrollment_id(store)

    def accept_the_step(connection: sa.Connection) -> None:
        connection.execute(
            enrollments.update()
            .where(enrollments.c.id == enrollment_id)
            .values(last_step=accepted_step)
        )

    verdict = _while_the_lock_is_held(
        store, accept_the_step, lambda: totp.verify(store, _request(START), code=code)
    )
    assert (verdict.accepted, verdict.reason) == (False, "replayed")
    assert ("mfa.verification.succeeded", None) not in _outbox(store)[-1:]


def test_an_enrollment_removed_while_the_verifier_waited_is_not_accepted(
    enrolled: tuple[VerifierStore, str],
) -> None:
    store, secret = enrolled
    later = START + timedelta(minutes=2)
    code = pyotp.TOTP(secret).at(later)

    def remove(connection: sa.Connection) -> None:
        connection.execute(enrollments.update().values(status="removed", secret=None))

    verdict = _while_the_lock_is_held(
        store, remove, lambda: totp.verify(store, _request(later), code=code)
    )
    assert not verdict.accepted
    # SQLite reads after the lock (nothing active); PostgreSQL's read may still see the
    # row active, and the guard, re-checked on the removed row, refuses the step
    assert verdict.reason in {"not_enrolled", "invalid_code"}
    assert _outbox(store)[-1] == ("mfa.verification.failed", verdict.reason)
