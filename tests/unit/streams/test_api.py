"""The lockout API's answers (streams/api.py): plain functions of a stored state."""

from __future__ import annotations

from datetime import timedelta

import pytest

from schemas.fields import Factor
from streams.api import canonical_ip, fold_state_of, ip_block_answer, lockout_answer, parse_query
from streams.folds.ipblock import IpBlockState
from streams.topology import IP_BLOCK, LOCKOUT
from tests.factories import T0
from verifiers.lockout import LockoutState


def test_lockout_answer_and_query_parsing_are_plain_functions() -> None:
    state = LockoutState(permanent=True, lock_reason="max_temporary_lockouts").to_dict()
    answer = lockout_answer(state, tenant="t", subject="s", at=T0, factor=Factor.SMS)
    assert (answer["locked"], answer["permanent"], answer["until"]) == (True, True, None)
    assert (answer["factor"], answer["reason"], answer["at"]) == (
        "sms",
        "max_temporary_lockouts",
        T0.isoformat(),
    )
    assert parse_query({"factor": "sms", "at": "2026-11-02T09:30:00Z"}) == (Factor.SMS, T0)
    assert parse_query({}) == (None, None)
    with pytest.raises(ValueError, match="offset"):
        parse_query({"at": "2026-11-02T09:30:00"})
    with pytest.raises(ValueError, match="factor: expected one of"):
        parse_query({"factor": "carrier-pigeon"})


def test_a_temporary_lock_holds_until_its_end() -> None:
    until = T0 + timedelta(minutes=15)
    state = LockoutState(failures=5, locked_until=until, lock_reason="max_failures").to_dict()

    before = lockout_answer(state, tenant="acme", subject="u-1", at=until - timedelta(seconds=1))
    after = lockout_answer(state, tenant="acme", subject="u-1", at=until)

    assert (before["locked"], before["until"], before["scope"]) == (
        True,
        until.isoformat(),
        "subject",
    )
    assert after["locked"] is False


def test_a_subject_never_seen_is_not_locked() -> None:
    answer = lockout_answer(None, tenant="acme", subject="never-seen", at=T0)
    assert answer == {
        "tenant": "acme",
        "subject": "never-seen",
        "factor": None,
        "at": T0.isoformat(),
        "locked": False,
        "until": None,
        "permanent": False,
        "scope": None,
        "reason": None,
    }


def test_ip_block_answer_of_an_ip_never_seen_failing() -> None:
    assert ip_block_answer(None, ip="192.0.2.1", at=T0) == {
        "ip": "192.0.2.1",
        "tenant": None,
        "at": T0.isoformat(),
        "blocked": False,
        "until": None,
        "since": None,
        "reason": None,
        "failures": None,
        "distinct_subjects": None,
    }
    assert ip_block_answer(IpBlockState().to_dict(), ip="192.0.2.1", at=T0)["blocked"] is False


def test_the_api_reads_one_folds_state_out_of_a_stage_tables_value() -> None:
    stored = {"version": 1, "states": {LOCKOUT: {"failures": 1}}, "applied": {"0": 3}}
    assert fold_state_of(stored, LOCKOUT) == {"failures": 1}
    assert fold_state_of(stored, IP_BLOCK) is None
    assert fold_state_of(None, LOCKOUT) is None


def test_the_ips_table_key_is_the_canonical_address() -> None:
    assert canonical_ip("::ffff:198.51.100.23") == "198.51.100.23"
    assert canonical_ip("2001:DB8:0:0::1") == "2001:db8::1"
    with pytest.raises(ValueError, match="ip: expected an IPv4 or IPv6 address"):
        canonical_ip("999.1.1.1")
