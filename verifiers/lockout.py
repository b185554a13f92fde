"""The pure lockout fold: Keycloak's brute-force detection over factorstream events.

``fold_lockout(state, event, policy) -> (state, derived events)`` runs in the stream (the
replayable record) and in the verifier's store (the gate); ``lockout_status`` is the gate.
No I/O and no clock: time is the event's ``time`` or the caller's ``now``. An event the
fold does not read returns the very state it was given, and no events.

Keycloak 26.0's ``DefaultBruteForceProtector`` is followed (count, wait by strategy,
quick-login lock, temporary then permanent lockouts, a completed login resets), with
deliberate deviations: failures during a lock are counted but decide nothing, attempts
the gate refused unseen are not counted, a success never lifts a lock, per-factor OTP
counters and the NIST SP 800-63B cap are added, and locks an identity provider reports
are taken over. The rule in full: docs/lockout.md#the-subject-and-factor-lockout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple, cast

from schemas import Event
from schemas import payloads as p
from schemas.envelope import derive_event
from schemas.fields import Factor, LockoutScope, Outcome

SOURCE = "factorstream://lockout"
OTP_FACTORS = frozenset({Factor.TOTP, Factor.SMS, Factor.VOICE, Factor.EMAIL, Factor.RECOVERY_CODE})
"""Factors with a guessable code, each with its own failure counter."""
STATE_VERSION = 1
OTP_REASON = "otp_max_failures"
REPORTED_REASON = "idp_reported"
"""``reason`` of a lock applied because an identity provider reported its own."""
REPORTED_UNLOCK = "idp_unlock"
"""``reason`` of ``lockout.cleared`` when the provider lifted the lock it reported."""


class LockoutStrategy(StrEnum):
    """How the wait grows past ``max_failures`` (Keycloak's ``BruteForceStrategy``)."""

    LINEAR = "linear"
    MULTIPLE = "multiple"


@dataclass(frozen=True)
class LockoutPolicy:
    """Lockout settings; defaults are Keycloak's realm defaults (temporary lockout mode)."""

    max_failures: int = 30
    """Keycloak ``failureFactor`` ("Max Login Failures")."""
    wait_increment: timedelta = timedelta(minutes=1)
    """``waitIncrementSeconds``: the unit of wait the strategy multiplies."""
    max_wait: timedelta = timedelta(minutes=15)
    """``maxFailureWaitSeconds``: the longest temporary lockout."""
    failure_reset: timedelta = timedelta(hours=12)
    """``maxDeltaTimeSeconds``: a gap longer than this since the last failure resets counts."""
    quick_login_check: timedelta = timedelta(milliseconds=1000)
    """``quickLoginCheckMilliSeconds``: failures closer than this are "quick"."""
    min_quick_login_wait: timedelta = timedelta(minutes=1)
    """``minimumQuickLoginWaitSeconds``: the lock after a quick failure below the threshold."""
    strategy: LockoutStrategy = LockoutStrategy.MULTIPLE
    """``bruteForceStrategy``."""
    max_temporary_lockouts: int = 0
    """``maxTemporaryLockouts``: lock permanently after this many temporary lockouts; 0 =
    never (Keycloak's "Lockout temporarily" mode)."""
    permanent_lockout: bool = False
    """Keycloak's "Lockout permanently" mode: permanent at ``max_failures``, no strategy wait.
    (Keycloak's ``permanentLockout`` flag is this or ``max_temporary_lockouts > 0``.)"""
    otp_max_failures: int = 5
    """Consecutive failures on one OTP factor that lock that factor."""
    otp_lockout: timedelta = timedelta(minutes=15)
    """How long a factor lock lasts."""
    consecutive_failure_cap: int = 100
    """NIST SP 800-63B §5.2.2: failures since the last completed login that lock for good."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", LockoutStrategy(self.strategy))
        for name in ("max_failures", "otp_max_failures", "consecutive_failure_cap"):
            _require_int(name, getattr(self, name), minimum=1)
        _require_int("max_temporary_lockouts", self.max_temporary_lockouts, minimum=0)
        for name in ("wait_increment", "max_wait", "failure_reset", "otp_lockout"):
            _require_duration(name, getattr(self, name), positive=True)
        for name in ("quick_login_check", "min_quick_login_wait"):
            _require_duration(name, getattr(self, name), positive=False)
        if self.consecutive_failure_cap > 100:
            raise ValueError(
                "consecutive_failure_cap: expected at most 100 (NIST SP 800-63B §5.2.2), "
                f"found {self.consecutive_failure_cap}"
            )
        if self.permanent_lockout and self.max_temporary_lockouts:
            raise ValueError(
                "permanent_lockout locks at the first lockout: expected max_temporary_lockouts=0,"
                f" found {self.max_temporary_lockouts}"
            )

    @property
    def can_lock_permanently(self) -> bool:
        """Keycloak's ``realm.isPermanentLockout()``."""
        return self.permanent_lockout or self.max_temporary_lockouts > 0


@dataclass(frozen=True, slots=True)
class FactorLockout:
    """One OTP factor's failure counter and lock."""

    factor: Factor
    failures: int = 0
    last_failure: datetime | None = None
    locked_until: datetime | None = None
    lockout_count: int = 0
    """Factor lockouts since the counter last reset."""

    @property
    def fresh(self) -> bool:
        """Whether this is the counter of a factor that never failed (``FactorLockout(f)``)."""
        return (
            self.failures == 0
            and self.last_failure is None
            and self.locked_until is None
            and self.lockout_count == 0
        )


_FRESH_COUNTERS = {factor: FactorLockout(factor) for factor in Factor}


def _fresh_counter(factor: Factor) -> FactorLockout:
    return _FRESH_COUNTERS.get(factor) or FactorLockout(factor)


@dataclass(frozen=True, slots=True)
class LockoutState:
    """One subject's lockout state; ``LockoutState()`` is a fresh subject."""

    failures: int = 0
    """Keycloak ``numFailures``: failures since the last reset (success, window, unlock)."""
    last_failure: datetime | None = None
    temporary_lockouts: int = 0
    """Keycloak ``numTemporaryLockouts`` (strategy lockouts; quick-login locks excluded)."""
    lockout_count: int = 0
    """All subject lockouts since the last reset, reported in ``lockout.applied``."""
    consecutive_failures: int = 0
    """Failures since the last completed login or unlock (the NIST cap; no time window)."""
    locked_until: datetime | None = None
    """End of a temporary lock (Keycloak ``failedLoginNotBefore``); may lie in the past."""
    permanent: bool = False
    lock_reason: str | None = None
    locked_at: datetime | None = None
    """When a reported subject lock (reason :data:`REPORTED_REASON`) was applied (event time):
    an older reported unlock does not lift it."""
    factors: tuple[FactorLockout, ...] = ()
    """Counters of OTP factors that are not fresh, sorted by factor."""

    def factor(self, factor: Factor) -> FactorLockout:
        """The counter of ``factor`` (a fresh one if it never failed)."""
        for counter in self.factors:
            if counter.factor == factor:
                return counter
        return _fresh_counter(factor)

    def with_factor(self, counter: FactorLockout) -> LockoutState:
        """This state with ``counter`` for its factor (itself when that changes nothing: a
        fresh counter of a factor it has none of)."""
        others = [c for c in self.factors if c.factor != counter.factor]
        if counter.fresh:
            if len(others) == len(self.factors):
                return self
        else:
            others.append(counter)
        return _changed(self, factors=tuple(sorted(others, key=_factor_name)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe builtins (datetimes as RFC 3339 strings), for a DB column or a table."""
        return {
            "version": STATE_VERSION,
            "failures": self.failures,
            "last_failure": _iso(self.last_failure),
            "temporary_lockouts": self.temporary_lockouts,
            "lockout_count": self.lockout_count,
            "consecutive_failures": self.consecutive_failures,
            "locked_until": _iso(self.locked_until),
            "permanent": self.permanent,
            "lock_reason": self.lock_reason,
            **({} if self.locked_at is None else {"locked_at": _iso(self.locked_at)}),
            "factors": {
                c.factor.value: {
                    "failures": c.failures,
                    "last_failure": _iso(c.last_failure),
                    "locked_until": _iso(c.locked_until),
                    "lockout_count": c.lockout_count,
                }
                for c in self.factors
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LockoutState:
        """The inverse of :meth:`to_dict`; a malformed value raises ``ValueError``."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"version: expected {STATE_VERSION}, found {data.get('version')!r}")
        factors = data.get("factors", {})
        if not isinstance(factors, Mapping):
            raise ValueError(f"factors: expected an object, found {factors!r}")
        reason = data.get("lock_reason")
        if reason is not None and not isinstance(reason, str):
            raise ValueError(f"lock_reason: expected a string or null, found {reason!r}")
        state = cls(
            failures=_count(data, "failures"),
            last_failure=_time(data, "last_failure"),
            temporary_lockouts=_count(data, "temporary_lockouts"),
            lockout_count=_count(data, "lockout_count"),
            consecutive_failures=_count(data, "consecutive_failures"),
            locked_until=_time(data, "locked_until"),
            permanent=_flag(data, "permanent"),
            lock_reason=reason,
            locked_at=_time(data, "locked_at"),
        )
        for name, value in factors.items():
            if not isinstance(value, Mapping):
                raise ValueError(f"factors.{name}: expected an object, found {value!r}")
            state = state.with_factor(
                FactorLockout(
                    factor=Factor(name),
                    failures=_count(value, "failures"),
                    last_failure=_time(value, "last_failure"),
                    locked_until=_time(value, "locked_until"),
                    lockout_count=_count(value, "lockout_count"),
                )
            )
        return state


@dataclass(frozen=True)
class LockoutStatus:
    """The gate's answer: may a code be evaluated for this subject (and factor) now?"""

    locked: bool
    until: datetime | None = None
    permanent: bool = False
    scope: LockoutScope | None = None
    reason: str | None = None
    factor: Factor | None = None


UNLOCKED = LockoutStatus(locked=False)


_STATE_FIELDS = tuple(item.name for item in fields(LockoutState))


def _changed(state: LockoutState, **changes: Any) -> LockoutState:
    """``dataclasses.replace`` without its per-call look at each field's kind (every field
    of :class:`LockoutState` is a parameter of its ``__init__``)."""
    return LockoutState(**{name: getattr(state, name) for name in _STATE_FIELDS} | changes)


def _factor_name(counter: FactorLockout) -> str:
    return counter.factor.value


def _login_completed(state: LockoutState) -> LockoutState:
    """A completed login: every subject counter and lock reset, the factors' kept (the state
    itself when they are reset already)."""
    if (
        state.failures == 0
        and state.last_failure is None
        and state.temporary_lockouts == 0
        and state.lockout_count == 0
        and state.consecutive_failures == 0
        and state.locked_until is None
        and not state.permanent
        and state.lock_reason is None
        and state.locked_at is None
    ):
        return state
    return LockoutState(factors=state.factors)


def lockout_status(
    state: LockoutState, *, now: datetime, factor: Factor | None = None
) -> LockoutStatus:
    """The subject's lock, else ``factor``'s lock, at ``now`` (timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("now: expected a timezone-aware datetime (UTC), found a naive one")
    if state.permanent:
        return LockoutStatus(True, None, True, LockoutScope.SUBJECT, state.lock_reason)
    if state.locked_until is not None and now < state.locked_until:
        return LockoutStatus(
            True, state.locked_until, False, LockoutScope.SUBJECT, state.lock_reason
        )
    counter = state.factor(factor) if factor is not None and factor in OTP_FACTORS else None
    if counter is not None and counter.locked_until is not None and now < counter.locked_until:
        until = counter.locked_until
        return LockoutStatus(True, until, False, LockoutScope.FACTOR, OTP_REASON, counter.factor)
    return UNLOCKED


class _Attempt(NamedTuple):
    kind: str  # "failure", "success" or "unlock"
    factor: Factor | None = None
    completes_login: bool = False


NOT_EVALUATED = p.NOT_EVALUATED_REASONS
"""Failure reasons of attempts refused before any credential was checked: not guesses."""


_LOGIN_FAILED = _Attempt("failure")
_LOGIN_COMPLETED = _Attempt("success", None, True)
_LOGIN_NEEDS_MFA = _Attempt("success", None, False)
_RECOVERY_FAILED = _Attempt("failure", Factor.RECOVERY_CODE)
_RECOVERY_SUCCEEDED = _Attempt("success", Factor.RECOVERY_CODE, True)
_UNLOCK = _Attempt("unlock")
_REPORTED_LOCK = _Attempt("reported_lock")
_REPORTED_UNLOCK = _Attempt("reported_unlock")
READS = (
    p.IdpLockReported,
    p.IdpUnlockReported,
    p.LoginAttempted,
    p.VerificationFailed,
    p.VerificationSucceeded,
    p.RecoveryFailed,
    p.RecoverySucceeded,
    p.AdminOverrideApproved,
    p.PushRejected,
)
"""The payloads the fold reads; any other event leaves the state as it is (``is``)."""

_PUSH_MISMATCH = _Attempt("failure", Factor.PUSH)


def _attempt(data: p.Payload) -> _Attempt | None:
    kind = _read_as(type(data))
    if kind is None:
        return None
    if kind is p.IdpLockReported:  # its reason is the provider's, whatever it says
        return _REPORTED_LOCK
    if kind is p.IdpUnlockReported:
        return _REPORTED_UNLOCK
    if getattr(data, "reason", None) in NOT_EVALUATED:
        return None  # the gate refused it unseen; counting it would let anyone lock anyone
    if kind is p.LoginAttempted:
        login = cast(p.LoginAttempted, data)
        if login.outcome is Outcome.FAILURE:
            return _LOGIN_FAILED
        return _LOGIN_NEEDS_MFA if login.mfa_required is True else _LOGIN_COMPLETED
    if kind is p.VerificationFailed:
        return _Attempt("failure", cast(p.VerificationFailed, data).factor)
    if kind is p.VerificationSucceeded:
        return _Attempt("success", cast(p.VerificationSucceeded, data).factor, True)
    if kind is p.RecoveryFailed:
        return _RECOVERY_FAILED
    if kind is p.RecoverySucceeded:
        return _RECOVERY_SUCCEEDED
    if kind is p.PushRejected:
        # the wrong number typed on the phone is a guess at the number shown on the sign-in
        # screen (an attacker's prompt); a person's plain "reject" is not
        rejected = cast(p.PushRejected, data)
        return _PUSH_MISMATCH if rejected.reason == "number_mismatch" else None
    if cast(p.AdminOverrideApproved, data).action == "unlock":
        return _UNLOCK
    return None


_READ_AS: dict[type, type | None] = {}


def _read_as(kind: type) -> type | None:
    """The first class of :data:`READS` that ``kind`` is (or subclasses), worked out once
    per class: ``isinstance`` against msgspec classes costs several dictionary look-ups."""
    try:
        return _READ_AS[kind]
    except KeyError:
        found = next((c for c in READS if issubclass(kind, c)), None)
        _READ_AS[kind] = found
        return found


def fold_lockout(
    state: LockoutState, event: Event, policy: LockoutPolicy
) -> tuple[LockoutState, list[Event]]:
    """Apply one event; return the new state and the derived lockout events (maybe none)."""
    attempt = _attempt(event.data)
    if attempt is None:
        return state, []
    derived: list[Event] = []
    state = _expire(state, event, derived)
    if attempt.kind == "failure":
        state = _fail(state, event, policy, attempt.factor, derived)
    elif attempt.kind == "success":
        gate = lockout_status(state, now=event.time, factor=attempt.factor)
        if not gate.locked:
            if attempt.factor is not None and attempt.factor in OTP_FACTORS:
                state = state.with_factor(_fresh_counter(attempt.factor))
            if attempt.completes_login:
                state = _login_completed(state)
    elif attempt.kind == "reported_lock":
        state = _reported_lock(state, event, cast(p.IdpLockReported, event.data), policy, derived)
    elif attempt.kind == "reported_unlock":
        state = _reported_unlock(state, event, cast(p.IdpUnlockReported, event.data), derived)
    elif not _older_than_failures(event, state):
        state = _unlock(state, event, derived)
    return state, derived


def _older_than_failures(unlock: Event, state: LockoutState) -> bool:
    """Whether ``unlock`` was approved before the last failure it would clear: an
    administrator cannot have meant to lift what happened after, and a signed unlock
    re-sent later (read off the topic and produced again) must not lift a new lock."""
    times = [state.last_failure, *(counter.last_failure for counter in state.factors)]
    latest = max((t for t in times if t is not None), default=None)
    return latest is not None and unlock.time < latest


def _expire(state: LockoutState, event: Event, derived: list[Event]) -> LockoutState:
    """Notice locks whose time is up: emit ``lockout.cleared(expired)`` and forget them."""
    if not state.permanent and state.locked_until and event.time >= state.locked_until:
        derived.append(_cleared(event, LockoutScope.SUBJECT, "expired"))
        state = _changed(state, locked_until=None, lock_reason=None, locked_at=None)
    for counter in state.factors:
        if counter.locked_until and event.time >= counter.locked_until:
            derived.append(_cleared(event, LockoutScope.FACTOR, "expired", counter.factor))
            state = state.with_factor(
                FactorLockout(
                    counter.factor,
                    counter.failures,
                    counter.last_failure,
                    None,
                    counter.lockout_count,
                )
            )
    return state


def _fail(
    state: LockoutState,
    event: Event,
    policy: LockoutPolicy,
    factor: Factor | None,
    derived: list[Event],
) -> LockoutState:
    subject_locked = lockout_status(state, now=event.time).locked
    state = _fail_subject(state, event, policy, subject_locked, derived)
    if factor is not None and factor in OTP_FACTORS:
        # a factor lock beside a lock of the whole subject adds nothing, unless it outlasts a
        # temporary subject lock applied by this very failure
        suppress = subject_locked or state.permanent
        state = _fail_factor(state, event, policy, state.factor(factor), suppress, derived)
    return state


def _fail_subject(
    state: LockoutState,
    event: Event,
    policy: LockoutPolicy,
    subject_locked: bool,
    derived: list[Event],
) -> LockoutState:
    now = event.time
    delta = now - state.last_failure if state.last_failure is not None else None
    # Keycloak: deltaTime > 0 && deltaTime > maxDelta, except in permanent-only mode
    failures, temporary, lockouts = state.failures, state.temporary_lockouts, state.lockout_count
    if not policy.permanent_lockout and delta is not None and delta > policy.failure_reset:
        failures, temporary, lockouts = 0, 0, 0
    state = _changed(
        state,
        failures=failures + 1,
        last_failure=now,
        temporary_lockouts=temporary,
        lockout_count=lockouts,
        consecutive_failures=state.consecutive_failures + 1,
    )
    if state.permanent:
        return state
    until, permanent, reason = None, False, ""
    if not subject_locked:
        state, until, permanent, reason = _keycloak_decision(state, policy, now, delta)
    failures = state.failures
    if not permanent and state.consecutive_failures >= policy.consecutive_failure_cap:
        until, permanent, reason = None, True, "consecutive_failure_cap"
        failures = state.consecutive_failures
    if not (permanent or until):
        return state
    state = _changed(
        state,
        locked_until=until,
        permanent=permanent,
        lock_reason=reason,
        lockout_count=state.lockout_count + 1,
    )
    applied = p.LockoutApplied(
        scope=LockoutScope.SUBJECT,
        reason=reason,
        failures=failures,
        permanent=permanent,
        locked_until=until,
        lockout_count=state.lockout_count,
        policy_tier=getattr(event.data, "policy_tier", None),
        trigger_event_id=event.id,
    )
    derived.append(_derive(event, applied, "subject"))
    return state


def _keycloak_decision(
    state: LockoutState, policy: LockoutPolicy, now: datetime, delta: timedelta | None
) -> tuple[LockoutState, datetime | None, bool, str]:
    """``DefaultBruteForceProtector.failure`` after the count: (state, until, permanent, why)."""
    wait = timedelta(0)
    if not policy.permanent_lockout:
        if policy.strategy is LockoutStrategy.MULTIPLE:
            wait = policy.wait_increment * (state.failures // policy.max_failures)
        else:
            wait = policy.wait_increment * (1 + state.failures - policy.max_failures)
    quick = False
    if wait <= timedelta(0) and delta is not None and delta < policy.quick_login_check:
        wait, quick = policy.min_quick_login_wait, True
    until = None
    if wait > timedelta(0):
        if not policy.permanent_lockout:
            wait = min(policy.max_wait, wait)
        if not quick:
            state = _changed(state, temporary_lockouts=state.temporary_lockouts + 1)
        if (
            quick
            or state.temporary_lockouts <= policy.max_temporary_lockouts
            or (not policy.can_lock_permanently)
        ):
            until = now + wait
    if policy.max_temporary_lockouts and state.temporary_lockouts > policy.max_temporary_lockouts:
        return state, None, True, "max_temporary_lockouts"
    if policy.permanent_lockout and state.failures >= policy.max_failures:
        return state, None, True, "max_failures"
    return state, until, False, "quick_login" if quick else "max_failures"


def _fail_factor(
    state: LockoutState,
    event: Event,
    policy: LockoutPolicy,
    counter: FactorLockout,
    subject_locked: bool,
    derived: list[Event],
) -> LockoutState:
    now = event.time
    locked = counter.locked_until is not None and now < counter.locked_until
    failures, lockouts = counter.failures, counter.lockout_count
    if counter.last_failure is not None and now - counter.last_failure > policy.failure_reset:
        failures, lockouts = 0, 0
    failures += 1
    if locked or subject_locked or failures < policy.otp_max_failures:
        return state.with_factor(
            FactorLockout(counter.factor, failures, now, counter.locked_until, lockouts)
        )
    counter = FactorLockout(counter.factor, 0, now, now + policy.otp_lockout, lockouts + 1)
    applied = p.LockoutApplied(
        scope=LockoutScope.FACTOR,
        reason=OTP_REASON,
        failures=failures,
        locked_until=counter.locked_until,
        lockout_count=counter.lockout_count,
        factor=counter.factor,
        policy_tier=getattr(event.data, "policy_tier", None),
        trigger_event_id=event.id,
    )
    derived.append(_derive(event, applied, f"factor/{counter.factor}"))
    return state.with_factor(counter)


def _reported_lock(
    state: LockoutState,
    event: Event,
    report: p.IdpLockReported,
    policy: LockoutPolicy,
    derived: list[Event],
) -> LockoutState:
    """A provider's lock as ours (docs/lockout.md): the subject or an OTP factor."""
    now, tier = event.time, report.policy_tier
    if report.scope is LockoutScope.SUBJECT:
        if report.locked_until is None and lockout_status(state, now=now).locked:
            return state  # the provider repeats the lock in force (Keycloak, on each attempt)
        until = report.locked_until or now + policy.max_wait
        if state.permanent or until <= now or (state.locked_until or now) >= until:
            return state
        ours = lockout_status(state, now=now)  # a lock of our own in force stays ours:
        reason = ours.reason if ours.locked else REPORTED_REASON  # no reported unlock lifts it
        state = _changed(
            state,
            locked_until=until,
            lock_reason=reason,
            locked_at=now,
            lockout_count=state.lockout_count + 1,
        )
        applied = p.LockoutApplied(
            scope=LockoutScope.SUBJECT,
            reason=REPORTED_REASON,
            failures=state.failures,
            locked_until=until,
            lockout_count=state.lockout_count,
            policy_tier=tier,
            trigger_event_id=event.id,
        )
        derived.append(_derive(event, applied, "subject"))
        return state
    if report.scope is not LockoutScope.FACTOR or report.factor not in OTP_FACTORS:
        return state  # an IP is the per-IP fold's; a factor without a counter has no gate
    counter = state.factor(report.factor)
    if (
        report.locked_until is None
        and counter.locked_until is not None
        and now < counter.locked_until
    ):
        return state  # a repeat of the lock in force
    until = report.locked_until or now + policy.otp_lockout
    if until <= now or (counter.locked_until or now) >= until:
        return state
    counter = FactorLockout(
        counter.factor, counter.failures, counter.last_failure, until, counter.lockout_count + 1
    )
    applied = p.LockoutApplied(
        scope=LockoutScope.FACTOR,
        reason=REPORTED_REASON,
        failures=counter.failures,
        locked_until=until,
        lockout_count=counter.lockout_count,
        factor=counter.factor,
        policy_tier=tier,
        trigger_event_id=event.id,
    )
    derived.append(_derive(event, applied, f"factor/{counter.factor}"))
    return state.with_factor(counter)


def _reported_unlock(
    state: LockoutState, event: Event, report: p.IdpUnlockReported, derived: list[Event]
) -> LockoutState:
    """A provider lifted its lock: lift ours if it came from its report, and no later."""
    if (
        report.scope is not LockoutScope.SUBJECT
        or state.lock_reason != REPORTED_REASON
        or state.locked_until is None
        or event.time >= state.locked_until
        or (state.locked_at is not None and event.time < state.locked_at)
    ):
        return state
    derived.append(_cleared(event, LockoutScope.SUBJECT, REPORTED_UNLOCK))
    return _changed(state, locked_until=None, lock_reason=None, locked_at=None)


def _unlock(state: LockoutState, event: Event, derived: list[Event]) -> LockoutState:
    """An administrator's approved unlock: clear every lock and counter (Keycloak: enabling
    the user removes its login-failure record)."""
    by = event.data.approved_by if isinstance(event.data, p.AdminOverrideApproved) else None
    if state.permanent or (state.locked_until and event.time < state.locked_until):
        derived.append(_cleared(event, LockoutScope.SUBJECT, "admin_unlock", cleared_by=by))
    for counter in state.factors:
        if counter.locked_until and event.time < counter.locked_until:
            derived.append(
                _cleared(event, LockoutScope.FACTOR, "admin_unlock", counter.factor, cleared_by=by)
            )
    return LockoutState()


def _cleared(
    trigger: Event,
    scope: LockoutScope,
    reason: str,
    factor: Factor | None = None,
    *,
    cleared_by: str | None = None,
) -> Event:
    payload = p.LockoutCleared(
        scope=scope,
        reason=reason,
        factor=factor,
        cleared_by=cleared_by,
        trigger_event_id=trigger.id,
    )
    return _derive(trigger, payload, f"{scope}/{factor or ''}/{reason}")


def _derive(trigger: Event, payload: p.Payload, what: str) -> Event:
    return derive_event(trigger, payload, source=SOURCE, what=what)


def _require_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, found {value!r}")


def _require_duration(name: str, value: object, *, positive: bool) -> None:
    zero = timedelta(0)
    if not isinstance(value, timedelta) or value < zero or (positive and value == zero):
        expected = "a positive timedelta" if positive else "a non-negative timedelta"
        raise ValueError(f"{name}: expected {expected}, found {value!r}")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(data: Mapping[str, Any], key: str) -> datetime | None:
    value = data.get(key)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(f"{key}: expected an RFC 3339 time with offset, found {value!r}")
    return parsed


def _count(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key, 0)
    _require_int(key, value, minimum=0)
    return int(value)


def _flag(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{key}: expected true or false, found {value!r}")
    return value
