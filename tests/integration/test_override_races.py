"""The two-person override on SQLite and a real PostgreSQL server, raced: a single-use
temporary-access code used by many callers at once lets exactly one in; two administrators
approving one request at once make exactly one approval and one code."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from tests.integration.test_verifier_races import START, _all_at_once, _store, store_url
from tests.unit.verifiers.override_support import (
    ALICE,
    BOB,
    approved,
    lock,
    requested,
    sign_in_request,
    staged,
)
from verifiers import temporary_access
from verifiers.override import Admin, list_overrides
from verifiers.tables import temporary_access as grants

__all__ = ["store_url"]  # the fixture: SQLite and PostgreSQL
DAVE = Admin("dave", is_admin=True)
RACERS = 8


def test_a_single_use_code_used_at_once_by_many_lets_exactly_one_in(store_url: str) -> None:
    store = _store(store_url)
    lock(store, START)
    request = requested(store, START, action="temporary_access", valid_for=timedelta(hours=1))
    assert request.override is not None
    grant = approved(store, request.override.id, START + timedelta(seconds=6)).grant
    assert grant is not None
    at = sign_in_request(START + timedelta(seconds=7))

    verdicts = _all_at_once(RACERS, lambda: temporary_access.redeem(store, at, code=grant.code))

    assert Counter(v.reason for v in verdicts) == {None: 1, "used_code": RACERS - 1}
    kinds = Counter(e.type for e in staged(store) if e.type.startswith("access.temporary."))
    assert kinds == {
        "access.temporary.granted": 1,
        "access.temporary.used": 1,
        "access.temporary.refused": RACERS - 1,
    }
    with store.engine.connect() as connection:
        assert connection.execute(grants.select()).one().uses == 1
    store.engine.dispose()


def test_a_multi_use_code_counts_every_concurrent_use(store_url: str) -> None:
    store = _store(store_url)
    request = requested(
        store, START, action="temporary_access", valid_for=timedelta(hours=2), single_use=False
    )
    assert request.override is not None
    grant = approved(store, request.override.id, START).grant
    assert grant is not None
    at = sign_in_request(START + timedelta(minutes=1))

    verdicts = _all_at_once(RACERS, lambda: temporary_access.redeem(store, at, code=grant.code))

    assert all(v.accepted for v in verdicts)
    counts = sorted(v.event.data.uses for v in verdicts if v.event)  # type: ignore[union-attr]
    assert counts == list(range(1, RACERS + 1))  # each use saw its own count
    store.engine.dispose()


def test_two_administrators_approving_at_once_make_one_approval(store_url: str) -> None:
    store = _store(store_url)
    lock(store, START)
    request = requested(store, START, action="temporary_access", valid_for=timedelta(hours=1))
    assert request.override is not None
    request_id = request.override.id
    approvers = iter([BOB, DAVE, BOB, DAVE])

    def approve():  # type: ignore[no-untyped-def]
        return approved(store, request_id, START + timedelta(seconds=30), by=next(approvers))

    outcomes = _all_at_once(4, approve)

    assert Counter(o.reason for o in outcomes) == {None: 1, "already_approved": 3}
    kinds = Counter(e.type for e in staged(store) if e.type.startswith(("admin.", "access.")))
    assert kinds == {
        "admin.override.requested": 1,
        "admin.override.approved": 1,
        "access.temporary.granted": 1,
        "admin.override.refused": 3,
    }
    with store.engine.connect() as connection:
        assert len(connection.execute(grants.select()).all()) == 1
    (listed,) = list_overrides(store)
    assert listed.approved_by in {"bob", "dave"}
    store.engine.dispose()


def test_an_approved_unlock_lifts_the_lock_and_a_self_approval_does_not(store_url: str) -> None:
    store = _store(store_url)
    lock(store, START)
    request = requested(store, START + timedelta(seconds=10))
    assert request.override is not None
    at = START + timedelta(seconds=20)
    assert approved(store, request.override.id, at, by=ALICE).reason == "self_approval"
    assert store.lockout(sign_in_request(at)).locked
    assert approved(store, request.override.id, at, by=BOB).accepted
    assert not store.lockout(sign_in_request(at)).locked
    store.engine.dispose()
