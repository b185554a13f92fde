"""Policy tiers as data, their lockout mapping, and the conditional-access rules."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import decode, encode, new_event
from schemas.fields import Factor, PolicyTier, RiskLevel
from tests.factories import CLIENT, T0
from tests.unit.verifiers.test_lockout import Log
from verifiers.lockout import LockoutState, LockoutStrategy, fold_lockout, lockout_status
from verifiers.policy import (
    TIERS,
    AccessContext,
    Location,
    MfaDecision,
    Sensitivity,
    TierPolicy,
    decide_mfa,
    lockout_policy,
    mfa_required_payload,
    tier_policy,
)

MINUTE = timedelta(minutes=1)
A, B, C = PolicyTier.ADMIN, PolicyTier.BUSINESS, PolicyTier.CUSTOMER
W, P, T, S, V, E = (
    Factor.WEBAUTHN,
    Factor.PUSH,
    Factor.TOTP,
    Factor.SMS,
    Factor.VOICE,
    Factor.EMAIL,
)


# -- the tier table -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "required", "fallback", "failures", "lockout", "code_life"),
    [
        (A, (W, P), (T, S), 3, 5, 2),
        (B, (T, P), (S, E), 5, 3, 5),
        (C, (T,), (S, E), 10, 15, 10),
    ],
)
def test_tiers_carry_the_mission_numbers(
    tier: PolicyTier,
    required: tuple[Factor, ...],
    fallback: tuple[Factor, ...],
    failures: int,
    lockout: int,
    code_life: int,
) -> None:
    policy = TIERS[tier]
    assert (policy.tier, policy.required_factors, policy.fallback_factors) == (
        tier,
        required,
        fallback,
    )
    assert (policy.max_failures, policy.lockout_duration, policy.code_lifetime) == (
        failures,
        lockout * MINUTE,
        code_life * MINUTE,
    )
    assert policy.accepted_factors == required + fallback


def test_the_tier_table_cannot_be_changed_in_place() -> None:
    with pytest.raises(TypeError):
        TIERS[A] = TIERS[C]  # type: ignore[index]


@pytest.mark.parametrize("tier", list(PolicyTier))
def test_max_failures_lock_the_subject_for_exactly_the_tiers_lockout_duration(
    tier: PolicyTier,
) -> None:
    policy, log, state = TIERS[tier], Log(tier), LockoutState()
    rules = lockout_policy(policy)
    for i in range(policy.max_failures):
        at = T0 + i * MINUTE
        state, derived = fold_lockout(state, log.login(at), rules)
        assert bool(derived) is (i == policy.max_failures - 1)
    status = lockout_status(state, now=at)
    assert (status.locked, status.until) == (True, at + policy.lockout_duration)


@pytest.mark.parametrize(
    ("tier", "strategy", "temporary", "max_wait"),
    [
        (A, LockoutStrategy.LINEAR, 3, 30 * MINUTE),
        (B, LockoutStrategy.MULTIPLE, 0, 15 * MINUTE),
        (C, LockoutStrategy.MULTIPLE, 0, 60 * MINUTE),
    ],
)
def test_lockout_policy_mapping(
    tier: PolicyTier, strategy: LockoutStrategy, temporary: int, max_wait: timedelta
) -> None:
    policy = TIERS[tier]
    rules = lockout_policy(policy)
    assert (rules.max_failures, rules.wait_increment) == (
        policy.max_failures,
        policy.lockout_duration,
    )
    assert (rules.strategy, rules.max_temporary_lockouts, rules.max_wait) == (
        strategy,
        temporary,
        max_wait,
    )
    assert (rules.otp_max_failures, rules.otp_lockout) == (
        policy.otp_max_failures,
        policy.otp_lockout,
    )
    assert rules.permanent_lockout is False and rules.consecutive_failure_cap == 100
    assert rules.failure_reset > rules.max_wait  # Keycloak's advice, else max_wait is unreachable


# -- overrides ----------------------------------------------------------------------------


def test_overrides_make_a_new_policy_and_leave_the_table_alone() -> None:
    policy = tier_policy("business", max_failures=7, required_factors=["webauthn", "totp"])
    assert (policy.tier, policy.max_failures, policy.required_factors) == (B, 7, (W, T))
    assert TIERS[B].max_failures == 5
    assert tier_policy(C) == TIERS[C]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_failure": 3}, r"unknown TierPolicy field\(s\) \['max_failure'\]"),
        ({"tier": A}, "unknown TierPolicy field"),
        ({"max_failures": 0}, "max_failures: expected an integer >= 1, found 0"),
        ({"max_failures": "3"}, "max_failures: expected an integer >= 1, found '3'"),
        ({"otp_max_failures": True}, "otp_max_failures"),
        ({"lockout_duration": timedelta(0)}, "lockout_duration: expected a positive timedelta"),
        ({"code_lifetime": 300}, "code_lifetime: expected a positive timedelta, found 300"),
        ({"required_factors": ("fax",)}, "required_factors: expected one of totp, webauthn"),
        ({"required_factors": "totp"}, "required_factors: expected a sequence of factors"),
        ({"required_factors": ()}, "required_factors: expected at least one factor"),
        ({"fallback_factors": (S, S)}, "fallback_factors: expected distinct factors"),
        ({"fallback_factors": (T,)}, "fallback_factors: expected none of required_factors"),
        ({"strategy": "random"}, "strategy: expected one of linear, multiple"),
        ({"max_wait": MINUTE}, r"max_wait: expected at least lockout_duration \(0:03:00\)"),
        ({"failure_reset": 15 * MINUTE}, "failure_reset: expected longer than max_wait"),
    ],
)
def test_overrides_are_validated_with_a_clear_error(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        tier_policy(B, **overrides)


def test_an_unknown_tier_is_refused() -> None:
    with pytest.raises(ValueError, match="tier: expected one of admin, business, customer"):
        tier_policy("gold")


# -- conditional access ------------------------------------------------------------------


def context(**changes: Any) -> AccessContext:
    base: dict[str, Any] = {
        "role": "user",
        "application_sensitivity": Sensitivity.LOW,
        "risk_level": RiskLevel.NONE,
        "location": Location.KNOWN,
        "device_trusted": True,
        "tier": C,
    }
    return AccessContext(**(base | changes))


@pytest.mark.parametrize(
    ("changes", "required", "reasons", "required_factors", "allowed_factors"),
    [
        ({}, False, ("low_risk_context",), (), ()),
        ({"application_sensitivity": "medium"}, True, ("customer_tier",), (T,), (S, E)),
        ({"risk_level": RiskLevel.LOW}, True, ("customer_tier",), (T,), (S, E)),
        ({"location": Location.NEW_COUNTRY}, True, ("new_country",), (T,), (S, E)),
        ({"location": Location.UNKNOWN}, True, ("unknown_location",), (T,), (S, E)),
        ({"device_trusted": False}, True, ("untrusted_device",), (T,), (S, E)),
        ({"application_sensitivity": "high"}, True, ("sensitive_application",), (T,), (S, E)),
        ({"risk_level": RiskLevel.MEDIUM}, True, ("medium_risk",), (T,), (S, E)),
        ({"risk_level": RiskLevel.HIGH}, True, ("high_risk",), (T,), (E,)),
        ({"risk_level": RiskLevel.CRITICAL}, True, ("critical_risk",), (T,), (E,)),
        ({"location": Location.ANONYMOUS_NETWORK}, True, ("anonymous_network",), (T,), (E,)),
        ({"role": " Administrator "}, True, ("privileged_role",), (W,), (T,)),
        ({"tier": B}, True, ("business_tier",), (T, P), (S, E)),
        (
            {"tier": B, "risk_level": "high", "location": "anonymous_network"},
            True,
            ("business_tier", "high_risk", "anonymous_network"),
            (T, P),
            (E,),
        ),
        ({"tier": A}, True, ("admin_tier",), (W, P), (T, S)),
        ({"tier": A, "role": "admin"}, True, ("admin_tier", "privileged_role"), (W,), (P, T)),
        ({"tier": A, "risk_level": "high"}, True, ("admin_tier", "high_risk"), (W, P), (T,)),
        (
            {"tier": A, "role": "root", "device_trusted": False, "location": "new_country"},
            True,
            ("admin_tier", "privileged_role", "new_country", "untrusted_device"),
            (W,),
            (P, T),
        ),
    ],
)
def test_decide_mfa_rules(
    changes: dict[str, Any],
    required: bool,
    reasons: tuple[str, ...],
    required_factors: tuple[Factor, ...],
    allowed_factors: tuple[Factor, ...],
) -> None:
    assert decide_mfa(context(**changes)) == MfaDecision(
        required, reasons, required_factors, allowed_factors
    )


def test_narrowing_promotes_a_fallback_or_leaves_nothing_acceptable() -> None:
    sms_first = {C: tier_policy(C, required_factors=(S,), fallback_factors=(T, E))}
    decision = decide_mfa(context(risk_level="high"), sms_first)
    assert (decision.required_factors, decision.allowed_factors) == ((T,), (E,))
    phone_only = {C: tier_policy(C, required_factors=(S,), fallback_factors=(V,))}
    decision = decide_mfa(context(location="anonymous_network"), phone_only)
    assert decision.required and not any(decision.accepts(f) for f in Factor)


def test_accepts_covers_required_and_allowed_factors() -> None:
    decision = decide_mfa(context(tier=B))
    assert [f for f in Factor if decision.accepts(f)] == [T, S, E, P]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"location": "moon"}, "location: expected one of known, new_country"),
        ({"risk_level": "extreme"}, "risk_level: expected one of none, low"),
        ({"application_sensitivity": 3}, "application_sensitivity: expected one of low"),
        ({"tier": "gold"}, "tier: expected one of admin"),
    ],
)
def test_access_context_refuses_unknown_values(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        context(**changes)


def test_mfa_required_payload_records_the_decision_and_round_trips() -> None:
    ctx = context(tier=A, role="admin", risk_level="medium")
    payload = mfa_required_payload(decide_mfa(ctx), ctx, application="payroll", client=CLIENT)
    assert payload.required and payload.reasons == ["admin_tier", "privileged_role", "medium_risk"]
    assert (payload.required_factors, payload.allowed_factors) == ([W], [P, T])
    assert (payload.role, payload.application_sensitivity, payload.policy_tier) == (
        "admin",
        "low",
        A,
    )
    assert (payload.risk_level, payload.application, payload.client) == (
        RiskLevel.MEDIUM,
        "payroll",
        CLIENT,
    )
    event = new_event(
        payload, source="https://login.example.com", tenant="acme", subject="u-1",
        correlationid="login-1", now=T0,
    )  # fmt: skip
    assert event.type == "mfa.required"
    assert decode(encode(event)) == event


def test_an_empty_role_is_left_off_the_payload() -> None:
    ctx = context(role="")
    assert mfa_required_payload(decide_mfa(ctx), ctx, application="shop").role is None


contexts = st.builds(
    AccessContext,
    role=st.sampled_from(["", "user", "admin", "Owner", "superuser", "auditor"]),
    application_sensitivity=st.sampled_from(Sensitivity),
    risk_level=st.sampled_from(RiskLevel),
    location=st.sampled_from(Location),
    device_trusted=st.booleans(),
    tier=st.sampled_from(PolicyTier),
)
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


@settings(max_examples=300, deadline=None)
@given(contexts)
def test_every_decision_is_coherent_and_publishable(ctx: AccessContext) -> None:
    decision = decide_mfa(ctx)
    assert decision.reasons and all(SNAKE.match(r) for r in decision.reasons)
    assert not set(decision.required_factors) & set(decision.allowed_factors)
    offered = set(decision.required_factors) | set(decision.allowed_factors)
    assert offered <= set(TIERS[ctx.tier].accepted_factors) | {W}
    if not decision.required:
        assert ctx.tier is C and decision.reasons == ("low_risk_context",) and not offered
    else:
        assert decision.required_factors
    if (
        ctx.risk_level in (RiskLevel.HIGH, RiskLevel.CRITICAL)
        or ctx.location == "anonymous_network"
    ):
        assert not offered & {S, V}
    if ctx.role in ("admin", "superuser"):
        assert decision.required_factors == (W,) and not offered & {S, V, E}
    payload = mfa_required_payload(decision, ctx, application="app")
    event = new_event(payload, source="s", tenant="acme", subject="u-1", correlationid="c", now=T0)
    assert decode(encode(event)) == event


def test_tier_policy_is_frozen() -> None:
    with pytest.raises(AttributeError):
        TIERS[A].max_failures = 1  # type: ignore[misc]
    assert replace(TIERS[A], max_failures=4).max_failures == 4
    assert isinstance(TIERS[A], TierPolicy)
