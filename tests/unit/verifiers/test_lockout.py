"""The lockout fold against Keycloak's documented brute-force semantics, case by case.

Sources cited below: Keycloak's server-admin guide, "Brute force attacks"
(docs/documentation/server_admin/topics/threat/brute-force.adoc, Keycloak 26) — "the guide";
``DefaultBruteForceProtector.failure`` (Keycloak 26.0) — "the code".
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import Event, decode, encode, new_event, uuid7
from schemas import payloads as p
from schemas.fields import Factor, LockoutScope, Outcome, PolicyTier
from tests.factories import PAYLOADS, T0, sample_event
from verifiers.lockout import (
    OTP_FACTORS,
    SOURCE,
    LockoutPolicy,
    LockoutState,
    LockoutStrategy,
    fold_lockout,
    lockout_status,
)
from verifiers.policy import TIERS, lockout_policy

GOLDEN = Path(__file__).parent / "golden"
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
MS = timedelta(milliseconds=1)
CONSUMED = {
    "auth.login.attempted",
    "mfa.verification.failed",
    "mfa.verification.succeeded",
    "mfa.recovery.failed",
    "mfa.recovery.succeeded",
    "admin.override.approved",
    "idp.lock.reported",
    "idp.unlock.reported",
}


class Log:
    """Builds a subject's events with deterministic ids (a counter as the random bits)."""

    def __init__(self, tier: PolicyTier | None = PolicyTier.BUSINESS) -> None:
        self.serial = 0
        self.tier = tier

    def event(self, payload: p.Payload, at: datetime) -> Event:
        self.serial += 1
        return new_event(
            payload,
            source="https://login.example.com/mfa",
            tenant="acme",
            subject="u-1001",
            correlationid=f"login-{self.serial}",
            now=at,
            traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            event_id=uuid7(at, random_bits=self.serial),
        )

    def login(self, at: datetime, *, ok: bool = False, mfa_required: bool | None = None) -> Event:
        outcome = Outcome.SUCCESS if ok else Outcome.FAILURE
        reason = None if ok else "invalid_password"
        data = p.LoginAttempted(
            outcome=outcome,
            method="password",
            reason=reason,
            mfa_required=mfa_required,
            policy_tier=self.tier,
        )
        return self.event(data, at)

    def code(self, at: datetime, factor: Factor = Factor.TOTP, *, ok: bool = False) -> Event:
        if ok:
            return self.event(p.VerificationSucceeded(factor=factor, policy_tier=self.tier), at)
        data = p.VerificationFailed(factor=factor, reason="invalid_code", policy_tier=self.tier)
        return self.event(data, at)

    def recovery(self, at: datetime, *, ok: bool = False) -> Event:
        if ok:
            return self.event(p.RecoverySucceeded(codes_remaining=9, policy_tier=self.tier), at)
        return self.event(p.RecoveryFailed(reason="unknown_code", policy_tier=self.tier), at)

    def unlock(self, at: datetime, *, action: str = "unlock") -> Event:
        data = p.AdminOverrideApproved(request_id="req-1", approved_by="admin-9", action=action)
        return self.event(data, at)


def replay(
    events: Iterable[Event], policy: LockoutPolicy, state: LockoutState | None = None
) -> tuple[LockoutState, list[Event]]:
    """``functools.reduce`` of the fold over ``events``: the final state, all derived events."""

    def step(
        acc: tuple[LockoutState, list[Event]], event: Event
    ) -> tuple[LockoutState, list[Event]]:
        state, derived = fold_lockout(acc[0], event, policy)
        return state, acc[1] + derived

    start: tuple[LockoutState, list[Event]] = (state or LockoutState(), [])
    return functools.reduce(step, events, start)


def applied(event: Event) -> p.LockoutApplied:
    assert isinstance(event.data, p.LockoutApplied), event.type
    return event.data


def kinds(derived: list[Event]) -> list[tuple[str, str, str]]:
    """(type, scope, reason) of each derived event."""
    return [
        (e.type, str(getattr(e.data, "scope", "")), getattr(e.data, "reason", "")) for e in derived
    ]


def policy(**changes: Any) -> LockoutPolicy:
    """Keycloak's documented example: 5 failures, 30 s increment; no quick-login effect."""
    settings_: dict[str, Any] = {
        "max_failures": 5,
        "wait_increment": 30 * SECOND,
        "max_wait": timedelta(hours=1),
        "quick_login_check": timedelta(0),
        "otp_max_failures": 50,
    }
    return LockoutPolicy(**(settings_ | changes))


def waits(strategy: LockoutStrategy, count: int) -> list[timedelta]:
    """The lock after each of ``count`` failures, each made after the previous lock ended."""
    log, state, at, result = Log(), LockoutState(), T0, []
    for _ in range(count):
        at += 10 * MINUTE
        state, _derived = fold_lockout(state, log.login(at), policy(strategy=strategy))
        status = lockout_status(state, now=at)
        result.append(status.until - at if status.until else timedelta(0))
    return result


# -- the guide's "Strategies to set Wait Time" tables (5 failures, 30 s increment) --------


@pytest.mark.parametrize(
    ("strategy", "expected_seconds"),
    [
        (LockoutStrategy.MULTIPLE, [0, 0, 0, 0, 30, 30, 30, 30, 30, 60]),
        (LockoutStrategy.LINEAR, [0, 0, 0, 0, 30, 60, 90, 120, 150, 180]),
    ],
)
def test_wait_follows_the_guides_strategy_tables(
    strategy: LockoutStrategy, expected_seconds: list[int]
) -> None:
    assert waits(strategy, 10) == [s * SECOND for s in expected_seconds]


def test_max_wait_caps_the_wait() -> None:
    """The guide: "Temporarily disable the user for the smallest of wait and Max Wait"."""
    log, state, at = Log(), LockoutState(), T0
    capped = policy(strategy=LockoutStrategy.LINEAR, max_wait=100 * SECOND)
    seen = []
    for _ in range(9):
        at += 10 * MINUTE
        state, _ = fold_lockout(state, log.login(at), capped)
        until = lockout_status(state, now=at).until
        seen.append((until - at).seconds if until else 0)
    assert seen == [0, 0, 0, 0, 30, 60, 90, 100, 100]


@pytest.mark.parametrize(
    ("gap", "locks"),
    [
        (timedelta(hours=12), True),  # the code: reset only if deltaTime > maxDelta
        (timedelta(hours=12) + SECOND, False),
    ],
)
def test_failure_reset_time_runs_from_the_last_failure(gap: timedelta, locks: bool) -> None:
    """The guide: "If the time between this failure and the last failure is greater than
    Failure Reset Time, reset count"."""
    log = Log()
    events = [log.login(T0 + i * MINUTE) for i in range(4)]
    events.append(log.login(T0 + 3 * MINUTE + gap))
    state, derived = replay(events, policy())
    assert lockout_status(state, now=events[-1].time).locked is locks
    assert state.failures == (5 if locks else 1)
    assert state.consecutive_failures == 5  # the NIST counter ignores windows


@pytest.mark.parametrize(
    ("gap", "quick"),
    [(999 * timedelta(milliseconds=1), True), (SECOND, False), (-SECOND, True)],
)
def test_quick_login_check_locks_for_the_minimum_wait(gap: timedelta, quick: bool) -> None:
    """The guide: "If wait is less than or equals to 0 and the time between this failure and
    the last failure is less than Quick Login Check Milliseconds, set wait to Minimum Quick
    Login Wait". A clock that runs backwards counts as quick, as in the code."""
    log = Log()
    rules = policy(quick_login_check=SECOND, min_quick_login_wait=MINUTE)
    state, derived = replay([log.login(T0), log.login(T0 + gap)], rules)
    status = lockout_status(state, now=T0 + gap)
    assert status.locked is quick
    if quick:
        assert status.until == T0 + gap + MINUTE
        assert status.reason == "quick_login"
        assert kinds(derived) == [("lockout.applied", "subject", "quick_login")]
    assert state.temporary_lockouts == 0  # a quick-login lock is not a temporary lockout


def test_the_first_failure_is_never_quick() -> None:
    """The code: the quick check needs ``last > 0``; a success clears ``lastFailure``."""
    log = Log()
    rules = policy(quick_login_check=SECOND)
    events = [log.login(T0), log.code(T0 + SECOND, Factor.WEBAUTHN, ok=True)]
    events.append(log.login(T0 + 1.5 * SECOND))
    state, derived = replay(events, rules)
    assert derived == []
    assert state.failures == 1


def test_quick_login_wait_is_capped_by_max_wait_in_temporary_mode() -> None:
    rules = policy(quick_login_check=SECOND, min_quick_login_wait=MINUTE, max_wait=20 * SECOND)
    log = Log()
    state, _ = replay([log.login(T0), log.login(T0 + 0.5 * SECOND)], rules)
    assert lockout_status(state, now=T0).until == T0 + 20.5 * SECOND


def test_permanent_lockout_mode_locks_for_good_at_max_failures() -> None:
    """The guide, "Lockout permanently": "If count is greater than or equals to Max login
    failures, locks the user"; the failure reset time does not apply (the code skips it)."""
    log = Log()
    rules = policy(max_failures=3, permanent_lockout=True)
    events = [log.login(T0 + i * timedelta(days=2)) for i in range(3)]
    state, derived = replay(events, rules)
    status = lockout_status(state, now=T0 + timedelta(days=365))
    assert status.locked and status.permanent and status.until is None
    assert kinds(derived) == [("lockout.applied", "subject", "max_failures")]
    assert derived[0].data == p.LockoutApplied(
        scope=LockoutScope.SUBJECT,
        reason="max_failures",
        failures=3,
        permanent=True,
        policy_tier=PolicyTier.BUSINESS,
        trigger_event_id=events[-1].id,
    )


def test_permanent_lockout_mode_still_applies_quick_login_locks() -> None:
    log = Log()
    rules = policy(max_failures=3, permanent_lockout=True, quick_login_check=SECOND)
    state, derived = replay([log.login(T0), log.login(T0 + 0.2 * SECOND)], rules)
    assert kinds(derived) == [("lockout.applied", "subject", "quick_login")]
    assert not state.permanent


@pytest.mark.parametrize("max_temporary", [1, 2, 3])
def test_permanent_after_max_temporary_lockouts(max_temporary: int) -> None:
    """The guide, mixed mode: "If temporary lockout counter exceeds Maximum temporary
    lockouts, permanently locks the user"; so with 1 the second lockout is permanent."""
    log, state, at = Log(), LockoutState(), T0
    rules = policy(max_failures=2, max_temporary_lockouts=max_temporary)
    applied = []
    for _ in range(2 + max_temporary):
        at += 10 * MINUTE
        state, derived = fold_lockout(state, log.login(at), rules)
        applied += [e.data for e in derived if isinstance(e.data, p.LockoutApplied)]
    assert [a.permanent for a in applied] == [False] * max_temporary + [True]
    assert applied[-1].reason == "max_temporary_lockouts"
    assert [a.lockout_count for a in applied] == list(range(1, max_temporary + 2))
    assert lockout_status(state, now=at + timedelta(days=30)).permanent


def test_quick_login_locks_do_not_count_as_temporary_lockouts() -> None:
    """The guide: "if quick login failure is false, increment temporary lockout counter"."""
    log = Log()
    rules = policy(max_failures=3, max_temporary_lockouts=1, quick_login_check=SECOND)
    times = [T0, T0 + 0.5 * SECOND, T0 + 5 * MINUTE]  # quick-login lock, then a lockout
    state, derived = replay([log.login(t) for t in times], rules)
    assert kinds(derived)[0] == ("lockout.applied", "subject", "quick_login")
    assert state.temporary_lockouts == 1  # had the quick lock counted, this would be permanent
    assert applied(derived[-1]).permanent is False


def test_a_completed_login_resets_count_and_temporary_lockouts() -> None:
    """The guide: "On successful login: Reset count, Reset temporary lockout counter"."""
    log = Log()
    rules = policy(max_failures=2, max_temporary_lockouts=1)
    events = [log.login(T0), log.login(T0 + MINUTE)]  # temporary lockout 1 (30 s)
    events += [log.login(T0 + 5 * MINUTE, ok=True), log.login(T0 + 6 * MINUTE)]
    state, derived = replay(events, rules)
    assert (state.failures, state.temporary_lockouts, state.consecutive_failures) == (1, 0, 1)
    assert kinds(derived) == [
        ("lockout.applied", "subject", "max_failures"),
        ("lockout.cleared", "subject", "expired"),
    ]


@pytest.mark.parametrize(
    "success",
    [
        lambda log, at: log.login(at, ok=True, mfa_required=False),
        lambda log, at: log.login(at, ok=True),
        lambda log, at: log.code(at, Factor.WEBAUTHN, ok=True),
        lambda log, at: log.code(at, Factor.SMS, ok=True),
        lambda log, at: log.recovery(at, ok=True),
    ],
)
def test_every_completed_login_resets(success: Any) -> None:
    log = Log()
    state, _ = replay(
        [log.login(T0), log.login(T0 + MINUTE), success(log, T0 + 2 * MINUTE)], policy()
    )
    assert state == LockoutState()


def test_a_password_success_with_mfa_pending_resets_nothing() -> None:
    """Deviation: the login is not complete, so the second factor gets no fresh guesses."""
    log = Log()
    events = [log.code(T0 + i * MINUTE) for i in range(4)]
    events.append(log.login(T0 + 5 * MINUTE, ok=True, mfa_required=True))
    events.append(log.code(T0 + 6 * MINUTE))
    state, derived = replay(events, policy())
    assert lockout_status(state, now=T0 + 6 * MINUTE).locked
    assert state.failures == 5


def test_a_success_while_locked_changes_nothing() -> None:
    log = Log()
    events = [log.login(T0 + i * SECOND * 2) for i in range(5)]  # locked 30 s at T0+8s
    locked, _ = replay(events, policy())
    state, derived = fold_lockout(
        locked, log.code(T0 + 10 * SECOND, Factor.WEBAUTHN, ok=True), policy()
    )
    assert (state, derived) == (locked, [])


def test_failures_while_locked_count_but_neither_extend_nor_repeat() -> None:
    """Deviation from the guide's "count does not increment when a temporarily disabled
    account commits a login failure": counted (no free guesses), yet no new lock or event."""
    log = Log()
    events = [log.login(T0 + i * 2 * SECOND) for i in range(5)]  # locked until T0+38s
    events += [log.login(T0 + 20 * SECOND), log.login(T0 + 30 * SECOND)]
    state, derived = replay(events, policy())
    assert kinds(derived) == [("lockout.applied", "subject", "max_failures")]
    assert state.locked_until == T0 + 38 * SECOND
    assert (state.failures, state.consecutive_failures, state.temporary_lockouts) == (7, 7, 1)
    # the first failure after expiry is judged on the higher count: 30 s * (10 // 5)
    more = [log.login(T0 + 40 * SECOND), log.login(T0 + 50 * SECOND), log.login(T0 + 3 * MINUTE)]
    state, derived = replay(more, policy(), state)
    assert kinds(derived) == [
        ("lockout.cleared", "subject", "expired"),
        ("lockout.applied", "subject", "max_failures"),
        ("lockout.cleared", "subject", "expired"),
        ("lockout.applied", "subject", "max_failures"),
    ]
    assert applied(derived[-1]).locked_until == T0 + 3 * MINUTE + 60 * SECOND


def test_attempts_the_gate_refused_unseen_are_not_counted() -> None:
    """A ``locked_out`` refusal evaluated no credential: counting it would let an attacker
    push any account over the NIST cap (permanent lock) with junk requests."""
    log = Log()
    events = [log.login(T0 + i * 2 * SECOND) for i in range(5)]  # locked until T0+38s
    refused = p.VerificationFailed(factor=Factor.TOTP, reason="locked_out")
    events += [log.event(refused, T0 + 10 * SECOND + i * 10 * MS) for i in range(150)]
    state, derived = replay(events, policy())
    assert kinds(derived) == [("lockout.applied", "subject", "max_failures")]
    assert (state.failures, state.consecutive_failures, state.permanent) == (5, 5, False)
    assert state.factor(Factor.TOTP).failures == 0


@pytest.mark.parametrize("reason", ["resend_cooldown", "send_limit", "push_pending"])
@pytest.mark.parametrize("factor", [Factor.SMS, Factor.EMAIL, Factor.PUSH])
def test_sends_refused_as_too_soon_or_too_often_are_not_counted(
    reason: str, factor: Factor
) -> None:
    """A script hammering "send me a code" is refused by the resend cooldown: no code was
    checked, so none of it is a failure (else anyone could lock anyone by asking)."""
    log = Log()
    refused = p.VerificationFailed(factor=factor, reason=reason)
    events = [log.event(refused, T0 + i * 100 * MS) for i in range(150)]
    events += [
        log.event(p.EnrollmentFailed(factor=factor, reason=reason), T0 + MINUTE + i * MS)
        for i in range(10)
    ]
    state, derived = replay(events, policy())
    assert (derived, state) == ([], LockoutState())


def test_expiry_is_noticed_lazily_by_the_next_consumed_event() -> None:
    log = Log()
    locked, derived = replay([log.login(T0 + i * SECOND * 2) for i in range(5)], policy())
    until = applied(derived[0]).locked_until
    assert until is not None
    ignored = sample_event("mfa.challenge.issued", now=until + MINUTE)
    assert fold_lockout(locked, ignored, policy()) == (locked, [])
    before, _ = fold_lockout(locked, log.code(until - SECOND, Factor.WEBAUTHN, ok=True), policy())
    assert before == locked
    trigger = log.code(until, Factor.WEBAUTHN, ok=True)  # the code: locked while now < notBefore
    state, derived = fold_lockout(locked, trigger, policy())
    assert state == LockoutState()
    assert len(derived) == 1 and derived[0].time == until
    assert derived[0].data == p.LockoutCleared(
        scope=LockoutScope.SUBJECT, reason="expired", trigger_event_id=trigger.id
    )


def test_admin_unlock_clears_a_permanent_lock_and_every_counter() -> None:
    log = Log()
    rules = policy(max_failures=2, permanent_lockout=True, otp_max_failures=1)
    events = [log.code(T0, Factor.SMS), log.login(T0 + MINUTE), log.unlock(T0 + 2 * MINUTE)]
    state, derived = replay(events, rules)
    assert state == LockoutState()
    cleared = [e.data for e in derived if isinstance(e.data, p.LockoutCleared)]
    assert cleared == [
        p.LockoutCleared(
            scope=LockoutScope.SUBJECT,
            reason="admin_unlock",
            cleared_by="admin-9",
            trigger_event_id=events[-1].id,
        ),
        p.LockoutCleared(
            scope=LockoutScope.FACTOR,
            reason="admin_unlock",
            factor=Factor.SMS,
            cleared_by="admin-9",
            trigger_event_id=events[-1].id,
        ),
    ]


def test_an_unlock_older_than_the_failures_it_would_clear_is_ignored() -> None:
    """An attacker who read a signed unlock off the topic produces it again after new
    failures locked the subject: it was approved before them and lifts nothing."""
    log = Log()
    rules = policy(max_failures=2, permanent_lockout=True, otp_max_failures=1)
    old_unlock = log.unlock(T0)
    locked, applied = replay([log.login(T0 + MINUTE), log.login(T0 + 2 * MINUTE)], rules)
    assert locked.permanent and applied
    assert fold_lockout(locked, old_unlock, rules) == (locked, [])
    factor_locked, _ = replay([log.code(T0 + MINUTE, Factor.SMS)], rules)
    assert fold_lockout(factor_locked, old_unlock, rules) == (factor_locked, [])
    # the same unlock approved after the failures lifts them
    fresh, cleared = fold_lockout(locked, log.unlock(T0 + 3 * MINUTE), rules)
    assert fresh == LockoutState() and cleared


def test_admin_unlock_without_a_lock_resets_silently_and_other_actions_are_ignored() -> None:
    log = Log()
    counted, _ = replay([log.login(T0)], policy())
    assert fold_lockout(counted, log.unlock(T0 + MINUTE), policy()) == (LockoutState(), [])
    other = log.unlock(T0 + MINUTE, action="reset_factor")
    assert fold_lockout(counted, other, policy()) == (counted, [])


@pytest.mark.parametrize("name", sorted(set(PAYLOADS) - CONSUMED))
def test_other_event_types_are_ignored(name: str) -> None:
    state, _ = replay([Log().login(T0)], policy())
    assert fold_lockout(state, sample_event(name, now=T0 + timedelta(days=1)), policy()) == (
        state,
        [],
    )


# -- per-factor OTP counters ------------------------------------------------------------


def test_an_otp_factor_locks_alone_after_otp_max_failures() -> None:
    log = Log()
    rules = policy(max_failures=10, otp_max_failures=3, otp_lockout=5 * MINUTE)
    events = [log.code(T0 + i * MINUTE, Factor.SMS) for i in range(3)]
    state, derived = replay(events, rules)
    now = T0 + 3 * MINUTE
    assert lockout_status(state, now=now).locked is False
    assert lockout_status(state, now=now, factor=Factor.TOTP).locked is False
    sms = lockout_status(state, now=now, factor=Factor.SMS)
    assert (sms.locked, sms.scope, sms.factor, sms.until) == (
        True,
        LockoutScope.FACTOR,
        Factor.SMS,
        T0 + 7 * MINUTE,
    )
    assert derived[0].data == p.LockoutApplied(
        scope=LockoutScope.FACTOR,
        reason="otp_max_failures",
        failures=3,
        locked_until=T0 + 7 * MINUTE,
        factor=Factor.SMS,
        policy_tier=PolicyTier.BUSINESS,
        trigger_event_id=events[-1].id,
    )


def test_factor_counters_are_independent_of_the_subject_and_of_each_other() -> None:
    log = Log()
    rules = policy(max_failures=10, otp_max_failures=3)
    events = [log.code(T0, Factor.SMS), log.code(T0 + MINUTE, Factor.SMS)]
    events += [log.code(T0 + 2 * MINUTE, Factor.TOTP, ok=True)]  # completes: subject reset
    events += [log.code(T0 + 3 * MINUTE, Factor.EMAIL), log.code(T0 + 4 * MINUTE, Factor.SMS)]
    state, derived = replay(events, rules)
    assert kinds(derived) == [("lockout.applied", "factor", "otp_max_failures")]
    assert state.failures == 2  # email + sms since the completed login
    assert state.factor(Factor.EMAIL).failures == 1
    assert state.factor(Factor.SMS).lockout_count == 1


def test_a_locked_factor_keeps_counting_and_relocks_after_expiry() -> None:
    log = Log()
    rules = policy(max_failures=50, otp_max_failures=2, otp_lockout=5 * MINUTE)
    events = [log.recovery(T0), log.recovery(T0 + MINUTE)]  # locked until T0+6m
    events += [log.recovery(T0 + 2 * MINUTE), log.recovery(T0 + 3 * MINUTE)]  # counted
    events += [log.recovery(T0 + 7 * MINUTE)]
    state, derived = replay(events, rules)
    assert kinds(derived) == [
        ("lockout.applied", "factor", "otp_max_failures"),
        ("lockout.cleared", "factor", "expired"),
        ("lockout.applied", "factor", "otp_max_failures"),
    ]
    assert applied(derived[-1]).factor is Factor.RECOVERY_CODE
    assert applied(derived[-1]).lockout_count == 2


def test_a_factor_success_resets_only_that_factor_and_not_while_it_is_locked() -> None:
    log = Log()
    rules = policy(max_failures=50, otp_max_failures=2, otp_lockout=5 * MINUTE)
    events = [log.code(T0, Factor.EMAIL), log.code(T0 + MINUTE, Factor.EMAIL)]
    events += [log.code(T0 + 2 * MINUTE, Factor.EMAIL, ok=True)]  # refused by the gate
    state, _ = replay(events, rules)
    assert lockout_status(state, now=T0 + 2 * MINUTE, factor=Factor.EMAIL).locked
    assert state.failures == 2
    state, derived = fold_lockout(state, log.code(T0 + 6 * MINUTE, Factor.EMAIL, ok=True), rules)
    assert kinds(derived) == [("lockout.cleared", "factor", "expired")]
    assert state == LockoutState()


def test_factor_counter_resets_after_the_failure_reset_time() -> None:
    log = Log()
    rules = policy(otp_max_failures=2, failure_reset=timedelta(hours=1))
    events = [log.code(T0, Factor.VOICE), log.code(T0 + timedelta(hours=2), Factor.VOICE)]
    state, derived = replay(events, rules)
    assert derived == [] and state.factor(Factor.VOICE).failures == 1


@pytest.mark.parametrize("factor", [Factor.WEBAUTHN, Factor.PUSH])
def test_factors_without_a_code_count_only_for_the_subject(factor: Factor) -> None:
    log = Log()
    state, derived = replay(
        [log.code(T0 + i * MINUTE, factor) for i in range(5)], policy(otp_max_failures=1)
    )
    assert kinds(derived) == [("lockout.applied", "subject", "max_failures")]
    assert state.factors == ()


def test_no_factor_lock_beside_a_subject_lock_already_in_force() -> None:
    log = Log()
    rules = policy(max_failures=2, otp_max_failures=3)
    events = [log.login(T0), log.login(T0 + SECOND * 5)]  # subject locked 30 s
    events += [log.code(T0 + SECOND * (6 + i), Factor.SMS) for i in range(3)]
    state, derived = replay(events, rules)
    assert [k[1] for k in kinds(derived)] == ["subject"]
    assert state.factor(Factor.SMS).failures == 3  # counted all the same


# -- NIST SP 800-63B §5.2.2 -------------------------------------------------------------


def nist_policy(**changes: Any) -> LockoutPolicy:
    return policy(
        **({"max_failures": 1000, "wait_increment": SECOND, "failure_reset": MINUTE} | changes)
    )


def test_the_100th_consecutive_failure_locks_permanently_whatever_the_windows() -> None:
    log = Log()
    events = [log.login(T0 + i * timedelta(hours=1)) for i in range(100)]  # each resets count
    state, derived = replay(events[:99], nist_policy())
    assert derived == [] and not lockout_status(state, now=events[98].time).locked
    state, derived = fold_lockout(state, events[99], nist_policy())
    assert state.failures == 1 and state.consecutive_failures == 100
    assert derived[0].data == p.LockoutApplied(
        scope=LockoutScope.SUBJECT,
        reason="consecutive_failure_cap",
        failures=100,
        permanent=True,
        policy_tier=PolicyTier.BUSINESS,
        trigger_event_id=events[99].id,
    )


def test_the_cap_escalates_a_temporary_lock_and_a_completed_login_restarts_it() -> None:
    log = Log()
    rules = nist_policy(consecutive_failure_cap=5, max_failures=3, wait_increment=timedelta(days=1))
    events = [log.code(T0 + i * SECOND * 2, Factor.WEBAUTHN) for i in range(5)]
    state, derived = replay(events, rules)
    assert [(applied(e).permanent, applied(e).reason) for e in derived] == [
        (False, "max_failures"),
        (True, "consecutive_failure_cap"),
    ]
    restart = [log.login(T0 + i * MINUTE) for i in range(4)]
    restart.append(log.login(T0 + 5 * MINUTE, ok=True))
    restart += [log.login(T0 + (6 + i) * MINUTE) for i in range(4)]
    state, derived = replay(restart, nist_policy(consecutive_failure_cap=5))
    assert derived == [] and state.consecutive_failures == 4


# -- policy, gate and envelope ----------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"consecutive_failure_cap": 101}, "at most 100"),
        ({"permanent_lockout": True, "max_temporary_lockouts": 2}, "max_temporary_lockouts=0"),
        ({"wait_increment": timedelta(0)}, "wait_increment: expected a positive timedelta"),
        ({"max_failures": 0}, "max_failures: expected an integer >= 1"),
        ({"max_failures": True}, "max_failures"),
        ({"strategy": "fibonacci"}, "fibonacci"),
    ],
)
def test_policy_refuses_nonsense(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LockoutPolicy(**changes)


def test_policy_defaults_are_keycloaks_and_strategy_names_are_accepted() -> None:
    rules = LockoutPolicy(strategy="linear")  # type: ignore[arg-type]
    assert rules.strategy is LockoutStrategy.LINEAR
    assert (LockoutPolicy().max_failures, LockoutPolicy().max_wait) == (30, 15 * MINUTE)


def test_the_gate_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        lockout_status(LockoutState(), now=datetime(2026, 1, 1))  # noqa: DTZ001


def test_derived_events_carry_the_triggers_envelope() -> None:
    log = Log(tier=PolicyTier.ADMIN)
    events = [log.login(T0 + i * MINUTE) for i in range(5)]
    _, derived = replay(events, policy())
    [lock] = derived
    trigger = events[-1]
    assert lock.source == SOURCE
    assert (lock.tenant, lock.subject, lock.correlationid) == (
        trigger.tenant,
        trigger.subject,
        trigger.correlationid,
    )
    assert (lock.time, lock.traceparent) == (trigger.time, trigger.traceparent)
    assert applied(lock).policy_tier is PolicyTier.ADMIN
    assert lock.id != trigger.id and lock.id[14] == "7"  # a UUIDv7


def test_state_from_dict_refuses_malformed_values() -> None:
    good = LockoutState(failures=1, last_failure=T0).to_dict()
    for key, value in [
        ("version", 2),
        ("failures", -1),
        ("last_failure", "2026-11-02T09:30:00"),
        ("permanent", "yes"),
        ("factors", {"fax": {}}),
    ]:
        with pytest.raises(ValueError):
            LockoutState.from_dict(good | {key: value})


# -- golden replays ---------------------------------------------------------------------


def _golden_names() -> list[str]:
    return sorted(path.stem for path in GOLDEN.glob("*.jsonl"))


def _load(name: str) -> tuple[list[Event], dict[str, Any]]:
    lines = (GOLDEN / f"{name}.jsonl").read_text().splitlines()
    expected = json.loads((GOLDEN / f"{name}.expected.json").read_text())
    return [decode(line) for line in lines if line.strip()], expected


@pytest.mark.parametrize("name", _golden_names())
def test_golden_replay(name: str) -> None:
    events, expected = _load(name)
    state, derived = replay(events, lockout_policy(TIERS[PolicyTier(expected["tier"])]))
    assert state == LockoutState.from_dict(expected["final_state"])
    assert state.to_dict() == expected["final_state"]
    assert [msgspec.json.decode(encode(e)) for e in derived] == expected["derived"]


def test_there_are_golden_scenarios() -> None:
    assert len(_golden_names()) >= 3


# -- properties -------------------------------------------------------------------------

policies = st.builds(
    lambda failures, strategy, temporary, permanent, wait, max_wait, reset, quick, otp: (
        LockoutPolicy(
            max_failures=failures,
            strategy=strategy,
            max_temporary_lockouts=0 if permanent else temporary,
            permanent_lockout=permanent,
            wait_increment=wait * SECOND,
            max_wait=max_wait * SECOND,
            failure_reset=reset * MINUTE,
            quick_login_check=quick * timedelta(milliseconds=1),
            min_quick_login_wait=quick * 30 * timedelta(milliseconds=1),
            otp_max_failures=otp,
            otp_lockout=wait * 2 * SECOND,
            consecutive_failure_cap=20,
        )
    ),
    st.integers(1, 5),
    st.sampled_from(LockoutStrategy),
    st.integers(0, 3),
    st.booleans(),
    st.integers(1, 900),
    st.integers(1, 1800),
    st.integers(1, 120),
    st.integers(0, 2000),
    st.integers(1, 4),
)
ACTIONS = ["fail", "fail", "fail", "ok", "pending", "otp_fail", "otp_ok", "unlock", "ignored"]
steps = st.lists(
    st.tuples(
        st.sampled_from(ACTIONS),
        st.sampled_from(sorted(OTP_FACTORS) + [Factor.WEBAUTHN]),
        st.integers(0, 3 * 60 * 60 * 1000),
    ),
    max_size=40,
)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def build(actions: list[tuple[str, Factor, int]]) -> list[Event]:
    log, at, events = Log(), T0, []
    for action, factor, gap_ms in actions:
        at += gap_ms * timedelta(milliseconds=1)
        if action in ("fail", "ok", "pending"):
            mfa_required = True if action == "pending" else None
            events.append(log.login(at, ok=action != "fail", mfa_required=mfa_required))
        elif action in ("otp_fail", "otp_ok"):
            events.append(log.code(at, factor, ok=action == "otp_ok"))
        elif action == "unlock":
            events.append(log.unlock(at))
        else:
            events.append(sample_event("mfa.challenge.sent", now=at))
    return events


@PROPERTY
@given(policies, steps)
def test_max_failures_within_the_window_always_leave_the_subject_locked(
    rules: LockoutPolicy, actions: list[tuple[str, Factor, int]]
) -> None:
    """After ``max_failures`` failures with no accepted completed login between them and no
    gap longer than the failure reset time, the subject is locked at the last failure."""
    state, streak, last = LockoutState(), 0, None
    for event in build(actions):
        data, now = event.data, event.time
        gate = lockout_status(state, now=now, factor=getattr(data, "factor", None))
        state, _ = fold_lockout(state, event, rules)
        login = data if isinstance(data, p.LoginAttempted) else None
        if isinstance(data, p.VerificationFailed) or (login and login.outcome is Outcome.FAILURE):
            if (
                last is not None
                and now - last > rules.failure_reset
                and not rules.permanent_lockout
            ):
                streak = 0
            streak, last = streak + 1, now
            if streak >= rules.max_failures:
                assert lockout_status(state, now=now).locked
            continue
        completes = isinstance(data, p.VerificationSucceeded) or (
            login is not None and login.mfa_required is not True
        )
        if isinstance(data, p.AdminOverrideApproved) or (completes and not gate.locked):
            streak, last = 0, None


@PROPERTY
@given(policies, steps)
def test_replays_are_deterministic_and_derived_events_are_valid(
    rules: LockoutPolicy, actions: list[tuple[str, Factor, int]]
) -> None:
    events = build(actions)
    first, second = replay(events, rules), replay(events, rules)
    assert first == second
    state, derived = first
    assert len({e.id for e in derived}) == len(derived)
    by_id = {e.id: e for e in events}
    open_: dict[tuple[str, str], bool] = {}
    for event in derived:
        assert decode(encode(event)) == event
        data = event.data
        assert isinstance(data, p.LockoutApplied | p.LockoutCleared)
        assert data.trigger_event_id is not None
        trigger = by_id[data.trigger_event_id]
        assert (event.time, event.correlationid) == (trigger.time, trigger.correlationid)
        key = (str(data.scope), str(data.factor))
        if isinstance(data, p.LockoutCleared):
            assert key in open_, "a clear without a lock"
            del open_[key]
        else:  # a second lock only as an escalation to permanent
            assert key not in open_ or (data.permanent and not open_[key])
            open_[key] = data.permanent


@PROPERTY
@given(policies, steps)
def test_state_round_trips_through_json(
    rules: LockoutPolicy, actions: list[tuple[str, Factor, int]]
) -> None:
    state = LockoutState()
    for event in build(actions):
        state, _ = fold_lockout(state, event, rules)
        stored = json.loads(json.dumps(state.to_dict()))
        assert LockoutState.from_dict(stored) == state


# -- golden files: ``python -m tests.unit.verifiers.test_lockout`` rewrites them ----------


def golden_scenarios() -> dict[str, tuple[PolicyTier, str, list[Event]]]:
    """Inputs of the golden replays (only used to (re)write the files)."""
    scenarios: dict[str, tuple[PolicyTier, str, list[Event]]] = {}

    log = Log(PolicyTier.BUSINESS)
    events = [log.login(T0 + i * 20 * SECOND) for i in range(5)]  # 5th: locked 3 min
    events += [log.login(T0 + 100 * SECOND), log.login(T0 + 130 * SECOND)]  # counted only
    events += [sample_event("mfa.required", now=T0 + 3 * MINUTE)]  # ignored
    events += [log.login(T0 + 6 * MINUTE)]  # expired; 8 // 5 = 1 -> 3 min again
    events += [log.login(T0 + 10 * MINUTE, ok=True, mfa_required=True)]  # expired, no reset
    events += [log.code(T0 + 11 * MINUTE, Factor.PUSH, ok=True), log.login(T0 + 12 * MINUTE)]
    scenarios["business_password_guessing"] = (
        PolicyTier.BUSINESS,
        "password guessing: lock, failures while locked, lazy expiry, MFA-completed reset",
        events,
    )

    log = Log(PolicyTier.ADMIN)
    events = [log.login(T0 + i * 10 * SECOND) for i in range(3)]  # lock 5 min (linear)
    events += [log.login(T0 + 6 * MINUTE), log.login(T0 + 17 * MINUTE)]  # 10 min, 15 min
    events += [log.login(T0 + 33 * MINUTE)]  # 4th temporary lockout > 3: permanent
    events += [log.code(T0 + timedelta(hours=5), Factor.WEBAUTHN, ok=True)]  # refused
    events += [log.unlock(T0 + timedelta(hours=6))]
    events += [log.code(T0 + timedelta(hours=6, minutes=1), Factor.WEBAUTHN, ok=True)]
    scenarios["admin_escalation_and_unlock"] = (
        PolicyTier.ADMIN,
        "admin: linear waits, permanent after 3 temporary lockouts, second admin unlocks",
        events,
    )

    log = Log(PolicyTier.CUSTOMER)
    events = [log.code(T0 + i * MINUTE, Factor.SMS) for i in range(5)]  # sms locked 15 min
    events += [log.code(T0 + 6 * MINUTE, Factor.TOTP, ok=True)]  # subject reset, sms still
    events += [log.code(T0 + 8 * MINUTE, Factor.SMS)]  # counted while sms is locked
    events += [log.code(T0 + 25 * MINUTE, Factor.SMS, ok=True)]  # expired, then reset
    events += [log.recovery(T0 + 30 * MINUTE), log.recovery(T0 + 31 * MINUTE)]
    scenarios["customer_sms_factor_lock"] = (
        PolicyTier.CUSTOMER,
        "customer: sms factor lock independent of the subject; recovery codes counted",
        events,
    )
    return scenarios


def write_golden() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for name, (tier, description, events) in golden_scenarios().items():
        state, derived = replay(events, lockout_policy(TIERS[tier]))
        lines = b"".join(encode(e) + b"\n" for e in events)
        (GOLDEN / f"{name}.jsonl").write_bytes(lines)
        expected = {
            "description": description,
            "tier": str(tier),
            "final_state": state.to_dict(),
            "derived": [msgspec.json.decode(encode(e)) for e in derived],
        }
        (GOLDEN / f"{name}.expected.json").write_text(json.dumps(expected, indent=2) + "\n")


if __name__ == "__main__":
    write_golden()
