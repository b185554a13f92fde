"""The two-person override, attacked: the pure rule, then the ceremony on a real SQLite store.

Each refused attempt must be a signed ``admin.override.refused`` in the outbox (what the
relay publishes and the ledger keeps); each accepted one must do exactly what it says."""

from __future__ import annotations

from datetime import timedelta

import pytest

from schemas.fields import PolicyTier
from schemas.signing import check_producer
from tests.factories import CONTROL_KEY, TRUSTED
from tests.unit.verifiers.conftest import NOW, raw_dump
from tests.unit.verifiers.override_support import (
    ALICE,
    BOB,
    CAROL_AUDITOR,
    SUBJECT,
    TENANT,
    approved,
    lock,
    requested,
    sign_in_request,
    staged,
)
from verifiers import temporary_access
from verifiers.override import (
    Admin,
    Override,
    OverrideAction,
    OverrideError,
    OverrideRules,
    approve_override,
    list_overrides,
    refuse_approval,
    refuse_request,
)
from verifiers.policy import TIERS, TemporaryAccessLimits, tier_policy
from verifiers.store import VerifierStore

HOUR = timedelta(hours=1)
PENDING = Override(
    id="req-1",
    tenant=TENANT,
    subject=SUBJECT,
    action=OverrideAction.UNLOCK,
    tier=PolicyTier.BUSINESS,
    requested_by="alice",
    justification="why",
    ticket="SEC-1",
    requested_at=NOW,
    approve_before=NOW + 24 * HOUR,
)


# -- the rule, pure ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("approver", "at", "reason"),
    [
        (BOB, NOW + HOUR, None),
        (ALICE, NOW + HOUR, "self_approval"),
        (Admin(" ALICE ", is_admin=True), NOW + HOUR, "self_approval"),  # same person, retyped
        (CAROL_AUDITOR, NOW + HOUR, "not_admin"),
        (Admin("bob", is_admin=True, signed_in=False), NOW + HOUR, "sign_in_refused"),
        (BOB, NOW + 24 * HOUR, "request_expired"),  # the deadline itself is too late
        (BOB, NOW + 30 * HOUR, "request_expired"),
    ],
)
def test_the_two_person_rule(approver: Admin, at: object, reason: str | None) -> None:
    assert refuse_approval(PENDING, approver, now=at) == reason  # type: ignore[arg-type]


def test_an_approved_request_is_never_approved_again_whoever_asks() -> None:
    done = Override(**{**PENDING.__dict__, "approved_by": "bob", "approved_at": NOW})
    for approver in (BOB, Admin("dave", is_admin=True)):
        assert refuse_approval(done, approver, now=NOW + HOUR) == "already_approved"
    assert done.status(NOW + 48 * HOUR) == "approved"
    assert PENDING.status(NOW) == "pending" and PENDING.status(NOW + 24 * HOUR) == "expired"


@pytest.mark.parametrize(
    ("tier", "valid_for", "single_use", "reason"),
    [
        (PolicyTier.ADMIN, HOUR, True, None),
        (PolicyTier.ADMIN, 2 * HOUR, True, "lifetime_over_tier_limit"),
        (PolicyTier.ADMIN, HOUR, False, "multi_use_not_allowed"),
        (PolicyTier.BUSINESS, 8 * HOUR, False, None),
        (PolicyTier.BUSINESS, 9 * HOUR, True, "lifetime_over_tier_limit"),
        (PolicyTier.CUSTOMER, 24 * HOUR, False, None),
        (PolicyTier.CUSTOMER, 25 * HOUR, False, "lifetime_over_tier_limit"),
        (PolicyTier.CUSTOMER, timedelta(0), True, "lifetime_over_tier_limit"),
        (PolicyTier.CUSTOMER, -HOUR, True, "lifetime_over_tier_limit"),
    ],
)
def test_temporary_access_stays_within_the_tier(
    tier: PolicyTier, valid_for: timedelta, single_use: bool, reason: str | None
) -> None:
    limits = TIERS[tier].temporary_access
    refused = refuse_request(
        ALICE,
        action=OverrideAction.TEMPORARY_ACCESS,
        limits=limits,
        valid_for=valid_for,
        single_use=single_use,
    )
    assert refused == reason


def test_only_a_signed_in_administrator_may_request() -> None:
    limits = TemporaryAccessLimits()
    ask = {"action": OverrideAction.UNLOCK, "limits": limits, "valid_for": None}
    assert refuse_request(ALICE, single_use=True, **ask) is None  # type: ignore[arg-type]
    assert refuse_request(CAROL_AUDITOR, single_use=True, **ask) == "not_admin"  # type: ignore[arg-type]
    nobody = Admin("alice", is_admin=True, signed_in=False)
    assert refuse_request(nobody, single_use=True, **ask) == "sign_in_refused"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_valid_for"):
        TemporaryAccessLimits(timedelta(0))


# -- the ceremony on a real store --------------------------------------------------------


def _refusals(store: VerifierStore) -> list[tuple[str, str, str]]:
    return [
        (e.data.attempted_by, e.data.stage, e.data.reason)  # type: ignore[union-attr]
        for e in staged(store)
        if e.type == "admin.override.refused"
    ]


def test_an_unlock_needs_a_second_administrator_and_each_refusal_is_recorded(
    store: VerifierStore,
) -> None:
    lock(store, NOW)  # business tier: locked for 3 minutes
    at = NOW + timedelta(seconds=10)
    request = requested(store, at)
    assert request.accepted and request.override is not None
    request_id = request.override.id

    assert approved(store, request_id, at, by=ALICE).reason == "self_approval"
    assert approved(store, request_id, at, by=CAROL_AUDITOR).reason == "not_admin"
    failed_sign_in = Admin("bob", is_admin=False, signed_in=False)
    assert approved(store, request_id, at, by=failed_sign_in).reason == "sign_in_refused"
    assert store.lockout(sign_in_request(at)).locked  # none of them unlocked anything

    done = approved(store, request_id, at, by=BOB)
    assert done.accepted and done.override is not None and done.override.approved_by == "bob"
    assert not store.lockout(sign_in_request(at)).locked
    assert approved(store, request_id, at + HOUR, by=BOB).reason == "already_approved"

    assert _refusals(store) == [
        ("alice", "approve", "self_approval"),
        ("carol", "approve", "not_admin"),
        ("bob", "approve", "sign_in_refused"),
        ("bob", "approve", "already_approved"),
    ]
    kinds = [e.type for e in staged(store) if e.type.startswith(("admin.", "access."))]
    assert kinds.count("admin.override.requested") == 1
    assert kinds.count("admin.override.approved") == 1
    (approval,) = [e for e in staged(store) if e.type == "admin.override.approved"]
    assert (approval.data.approved_by, approval.data.requested_by) == ("bob", "alice")  # type: ignore[union-attr]
    assert approval.data.ticket == "SEC-1234"  # type: ignore[union-attr]
    (asked,) = [e for e in staged(store) if e.type == "admin.override.requested"]
    assert asked.data.justification.startswith("Locked out")  # type: ignore[union-attr]
    for event in staged(store):
        if event.type.startswith("admin."):
            check_producer(event, TRUSTED)  # signed: the worker and the ledger accept them
            assert (event.tenant, event.subject) == (TENANT, SUBJECT)


def test_an_expired_request_is_refused_and_unlocks_nothing(store: VerifierStore) -> None:
    lock(store, NOW)  # business tier: locked for 3 minutes
    request = requested(store, NOW, rules=OverrideRules(approval_window=timedelta(minutes=1)))
    assert request.override is not None
    late = approved(store, request.override.id, NOW + timedelta(minutes=2), by=BOB)
    assert late.reason == "request_expired"
    assert store.lockout(sign_in_request(NOW + timedelta(minutes=2))).locked
    assert _refusals(store) == [("bob", "approve", "request_expired")]
    (listed,) = list_overrides(store)
    assert listed.status(NOW + timedelta(minutes=2)) == "expired" and listed.approved_by is None


def test_refused_requests_are_recorded_and_leave_nothing_to_approve(store: VerifierStore) -> None:
    assert requested(store, NOW, by=CAROL_AUDITOR).reason == "not_admin"
    too_long = requested(store, NOW, action="temporary_access", valid_for=9 * HOUR)
    assert too_long.reason == "lifetime_over_tier_limit"
    admin_multi = requested(
        store,
        NOW,
        action="temporary_access",
        valid_for=HOUR,
        single_use=False,
        tier=PolicyTier.ADMIN,
    )
    assert admin_multi.reason == "multi_use_not_allowed"
    assert list_overrides(store) == []
    assert _refusals(store) == [
        ("carol", "request", "not_admin"),
        ("alice", "request", "lifetime_over_tier_limit"),
        ("alice", "request", "multi_use_not_allowed"),
    ]
    with pytest.raises(OverrideError, match="justification and a ticket"):
        requested(store, NOW, ticket="  ")
    with pytest.raises(OverrideError, match="no override request"):
        approve_override(store, request_id="nope", approver=BOB, now=NOW, signer=CONTROL_KEY)


def _granted(store: VerifierStore, **options: object) -> temporary_access.Grant:
    request = requested(store, NOW, action="temporary_access", **options)
    assert request.override is not None, request.reason
    done = approved(store, request.override.id, NOW + timedelta(seconds=5))
    assert done.grant is not None
    return done.grant


def test_a_single_use_code_lets_a_locked_subject_in_once(store: VerifierStore) -> None:
    lock(store, NOW)
    grant = _granted(store, valid_for=2 * HOUR)
    assert grant.expires_at == NOW + timedelta(seconds=5) + 2 * HOUR
    at = sign_in_request(NOW + timedelta(seconds=10))
    assert store.lockout(at).locked
    used = temporary_access.redeem(store, at, code=grant.code.lower().replace("-", " "))
    assert used.accepted and used.event is not None
    assert used.event.data.uses == 1 and used.event.data.grant_id == grant.grant_id  # type: ignore[union-attr]
    again = temporary_access.redeem(store, at, code=grant.code)
    assert (again.accepted, again.reason) == (False, "used_code")
    assert store.lockout(at).locked  # getting in once is not an unlock
    (granted,) = [e for e in staged(store) if e.type == "access.temporary.granted"]
    check_producer(granted, TRUSTED)
    assert granted.data.granted_by == "bob" and granted.data.requested_by == "alice"  # type: ignore[union-attr]
    assert granted.data.single_use is True  # type: ignore[union-attr]
    assert grant.code.replace("-", "").encode() not in raw_dump(store)  # kept hashed only


def test_a_code_is_refused_for_another_subject_or_tenant_and_after_it_expires(
    store: VerifierStore,
) -> None:
    grant = _granted(store, valid_for=HOUR)
    later = sign_in_request(NOW + timedelta(minutes=10))
    for stolen in (
        sign_in_request(later.now, subject="u-2002"),
        sign_in_request(later.now, tenant="globex"),
    ):
        refused = temporary_access.redeem(store, stolen, code=grant.code)
        assert refused.reason == "other_subject"
        assert refused.event is not None and refused.event.data.grant_id is None  # type: ignore[union-attr]
        assert (refused.event.tenant, refused.event.subject) == (stolen.tenant, stolen.subject)
    expired = sign_in_request(grant.expires_at)
    assert temporary_access.redeem(store, expired, code=grant.code).reason == "expired_code"
    assert temporary_access.redeem(store, later, code="ABCD-EFGH-JKLM-NPQR").reason == (
        "unknown_code"
    )
    assert temporary_access.redeem(store, later, code="short").reason == "malformed_code"
    # none of the refusals used it up: its own subject still gets in, once
    assert temporary_access.redeem(store, later, code=grant.code).accepted
    reasons = [e.data.reason for e in staged(store) if e.type == "access.temporary.refused"]  # type: ignore[union-attr]
    assert reasons == [
        "other_subject",
        "other_subject",
        "expired_code",
        "unknown_code",
        "malformed_code",
    ]


def test_a_multi_use_code_works_until_it_expires(store: VerifierStore) -> None:
    grant = _granted(store, valid_for=3 * HOUR, single_use=False)
    uses = [
        temporary_access.redeem(store, sign_in_request(NOW + k * HOUR), code=grant.code)
        for k in (1, 2, 3, 4)
    ]
    assert [u.accepted for u in uses] == [True, True, True, False]
    assert [u.event.data.uses for u in uses[:3]] == [1, 2, 3]  # type: ignore[union-attr]
    assert uses[3].reason == "expired_code"


def test_a_tier_takes_only_temporary_access_limits() -> None:
    with pytest.raises(ValueError, match="temporary_access: expected TemporaryAccessLimits"):
        tier_policy(PolicyTier.CUSTOMER, temporary_access={"max_valid_for": HOUR})
    stricter = tier_policy(PolicyTier.CUSTOMER, temporary_access=TemporaryAccessLimits(HOUR))
    assert stricter.temporary_access.refusal(valid_for=2 * HOUR, single_use=True) == (
        "lifetime_over_tier_limit"
    )
