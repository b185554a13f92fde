"""Locks an identity provider reports (``idp.lock.reported``) become the pipeline's own, and
only the provider's own locks are lifted by its unlocks — attacked as a service that may
write the events topic would try: forge an unlock to free an account we locked, replay a
stale unlock, report a lock that ended already or one that would shorten ours."""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas import Event
from schemas import payloads as p
from schemas.fields import Factor, LockoutScope
from tests.factories import T0
from tests.unit.verifiers.test_lockout import MINUTE, Log, policy, replay
from verifiers.lockout import REPORTED_REASON, REPORTED_UNLOCK, LockoutState, lockout_status

HOUR = timedelta(hours=1)


def report(log: Log, at: datetime, **fields: object) -> Event:
    values: dict[str, object] = {"provider": "okta", "scope": LockoutScope.SUBJECT}
    values |= {"reason": "locked_out"} | fields
    return log.event(p.IdpLockReported(**values), at)  # type: ignore[arg-type]


def unreport(log: Log, at: datetime, **fields: object) -> Event:
    values: dict[str, object] = {"provider": "okta", "scope": LockoutScope.SUBJECT}
    values |= {"reason": "unlocked"} | fields
    return log.event(p.IdpUnlockReported(**values), at)  # type: ignore[arg-type]


def kinds(derived: list[Event]) -> list[tuple[str, str]]:
    return [(e.type, e.data.reason) for e in derived]  # type: ignore[attr-defined]


def test_a_reported_subject_lock_without_an_end_lasts_the_tiers_longest_wait() -> None:
    log, rules = Log(), policy()
    lock = report(log, T0)
    state, derived = replay([lock], rules)
    assert kinds(derived) == [("lockout.applied", REPORTED_REASON)]
    applied = derived[0].data
    assert isinstance(applied, p.LockoutApplied)
    assert applied.locked_until == T0 + rules.max_wait
    assert applied.trigger_event_id == lock.id
    assert applied.failures == 0  # nothing the provider did not say is counted
    gate = lockout_status(state, now=T0 + rules.max_wait - MINUTE)
    assert (gate.locked, gate.reason) == (True, REPORTED_REASON)
    assert not lockout_status(state, now=T0 + rules.max_wait).locked


def test_the_providers_end_is_kept_and_an_ended_lock_locks_nothing() -> None:
    log = Log()
    state, derived = replay([report(log, T0, locked_until=T0 + 3 * HOUR)], policy())
    assert derived[0].data.locked_until == T0 + 3 * HOUR  # type: ignore[attr-defined]
    assert lockout_status(state, now=T0 + 2 * HOUR).locked
    state, derived = replay([report(Log(), T0, locked_until=T0 - MINUTE)], policy())
    assert (state, derived) == (LockoutState(), [])


def test_a_report_never_shortens_a_lock_in_force() -> None:
    log, rules = Log(), policy(permanent_lockout=True)
    failures = [log.login(T0 + i * MINUTE) for i in range(rules.max_failures)]
    state, _ = replay(failures, rules)
    assert state.permanent
    after, derived = replay([report(log, T0 + HOUR, locked_until=T0 + 2 * HOUR)], rules, state)
    assert (after, derived) == (state, [])


def test_a_reported_factor_lock_locks_that_factor_only_if_it_has_a_gate() -> None:
    log, rules = Log(), policy()
    sms = report(log, T0, scope=LockoutScope.FACTOR, factor=Factor.SMS)
    state, derived = replay([sms], rules)
    assert kinds(derived) == [("lockout.applied", REPORTED_REASON)]
    assert lockout_status(state, now=T0 + MINUTE, factor=Factor.SMS).locked
    assert not lockout_status(state, now=T0 + MINUTE, factor=Factor.TOTP).locked
    assert not lockout_status(state, now=T0 + rules.otp_lockout, factor=Factor.SMS).locked
    for other in (
        report(log, T0, scope=LockoutScope.FACTOR, factor=Factor.WEBAUTHN),
        report(log, T0, scope=LockoutScope.FACTOR, factor=Factor.UNKNOWN),
        report(log, T0, scope=LockoutScope.IP, ip="203.0.113.9"),  # the per-IP fold's
    ):
        assert replay([other], rules) == (LockoutState(), [])


def test_the_providers_unlock_lifts_the_lock_it_reported() -> None:
    log = Log()
    state, derived = replay([report(log, T0), unreport(log, T0 + MINUTE)], policy())
    assert kinds(derived) == [
        ("lockout.applied", REPORTED_REASON),
        ("lockout.cleared", REPORTED_UNLOCK),
    ]
    assert not lockout_status(state, now=T0 + 2 * MINUTE).locked


def test_a_forged_unlock_does_not_free_an_account_we_locked_from_our_own_evidence() -> None:
    log, rules = Log(), policy()
    failures = [log.login(T0 + i * 10 * MINUTE) for i in range(rules.max_failures)]
    state, derived = replay(failures, rules)
    assert lockout_status(state, now=failures[-1].time).locked
    after, more = replay([unreport(log, failures[-1].time + timedelta(seconds=10))], rules, state)
    assert (after, more) == (state, [])


def test_a_stale_unlock_does_not_lift_a_newer_reported_lock() -> None:
    log = Log()
    stale = unreport(log, T0 - MINUTE)  # re-sent from before the lock
    state, derived = replay([report(log, T0), stale], policy())
    assert kinds(derived) == [("lockout.applied", REPORTED_REASON)]
    assert lockout_status(state, now=T0 + MINUTE).locked


def test_a_reported_lock_survives_its_state_round_trip() -> None:
    state, _ = replay([report(Log(), T0)], policy())
    assert state.locked_at == T0
    assert LockoutState.from_dict(state.to_dict()) == state


def test_a_repeated_report_without_an_end_does_not_extend_the_lock() -> None:
    """Keycloak reports its lock again at each refused attempt: an attacker hammering a
    locked account must not keep it locked for ever through us."""
    log, rules = Log(), policy()
    repeats = [report(log, T0 + i * MINUTE) for i in range(10)]
    state, derived = replay(repeats, rules)
    assert len(derived) == 1
    assert state.locked_until == T0 + rules.max_wait
    sms = [
        report(log, T0 + i * MINUTE, scope=LockoutScope.FACTOR, factor=Factor.SMS) for i in (0, 1)
    ]
    _, factor_derived = replay(sms, rules)
    assert len(factor_derived) == 1
    later = report(log, T0 + 2 * MINUTE, locked_until=T0 + 2 * HOUR)  # the provider says longer
    state, more = replay([later], rules, state)
    assert (len(more), state.locked_until) == (1, T0 + 2 * HOUR)


def test_a_report_extending_our_own_lock_cannot_be_used_to_lift_it() -> None:
    """A holder of a write credential reports a slightly longer lock, then an unlock: our
    brute-force lock must not end early through that."""
    log, rules = Log(), policy()
    failures = [log.login(T0 + i * 10 * MINUTE) for i in range(rules.max_failures)]
    state, _ = replay(failures, rules)
    ours = state.locked_until
    assert ours is not None and state.lock_reason == "max_failures"
    at = failures[-1].time + timedelta(seconds=5)
    longer = report(log, at, locked_until=ours + MINUTE)
    lifted = unreport(log, at + timedelta(seconds=1))
    state, derived = replay([longer, lifted], rules, state)
    assert kinds(derived) == [("lockout.applied", REPORTED_REASON)]  # extended, not lifted
    assert lockout_status(state, now=ours - timedelta(seconds=1)).locked
