"""Recovery codes: single use, replaced as a set, never stored in clear."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.unit.verifiers.conftest import raw_dump
from verifiers import recovery_codes
from verifiers.store import Request, VerifierStore
from verifiers.tables import recovery_codes as table

RequestAt = Callable[..., Request]


def test_ten_codes_each_work_once(store: VerifierStore, request_at: RequestAt) -> None:
    codes = recovery_codes.regenerate(store, request_at())
    assert len(codes) == 10 == len(set(codes))
    assert all(len(recovery_codes.normalise(c)) == 12 for c in codes)
    for index, code in enumerate(codes):
        verdict = recovery_codes.redeem(store, request_at(), code=code.lower().replace("-", " "))
        assert verdict.accepted
        assert verdict.event is not None and verdict.event.data.codes_remaining == 9 - index  # type: ignore[attr-defined]
    again = recovery_codes.redeem(store, request_at(), code=codes[0])
    assert (again.accepted, again.reason) == (False, "used_code")


def test_regenerating_invalidates_the_old_set(store: VerifierStore, request_at: RequestAt) -> None:
    old = recovery_codes.regenerate(store, request_at())
    assert recovery_codes.redeem(store, request_at(), code=old[0]).accepted
    new = recovery_codes.regenerate(store, request_at())
    assert set(old).isdisjoint(new)
    start = request_at().now
    for seconds, code in enumerate(old[1:4], start=1):  # spaced: no quick-login lockout
        later = request_at(start + timedelta(seconds=2 * seconds))
        assert recovery_codes.redeem(store, later, code=code).reason == "revoked_code"
    assert recovery_codes.redeem(store, request_at(), code=new[0]).accepted


def test_another_subjects_code_is_unknown(store: VerifierStore, request_at: RequestAt) -> None:
    theirs = recovery_codes.regenerate(store, request_at(subject="u-2"))
    verdict = recovery_codes.redeem(store, request_at(subject="u-1"), code=theirs[0])
    assert verdict.reason == "unknown_code"


@pytest.mark.parametrize("junk", ["", "ABCD", "0000-0000-0000", "ABCD-EFGH-JKLM-N", "✓" * 12])
def test_junk_is_refused_with_a_reason(
    store: VerifierStore, request_at: RequestAt, junk: str
) -> None:
    recovery_codes.regenerate(store, request_at())
    assert recovery_codes.redeem(store, request_at(), code=junk).reason == "malformed_code"


def test_no_code_is_stored_in_clear(store: VerifierStore, request_at: RequestAt) -> None:
    codes = recovery_codes.regenerate(store, request_at())
    dump = raw_dump(store)
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(table)).all()
    assert len(rows) == 10
    for code in codes:
        for form in (code, recovery_codes.normalise(code), code.lower()):
            assert form.encode() not in dump
    assert all(row.code_hash.startswith("scrypt$") for row in rows)
