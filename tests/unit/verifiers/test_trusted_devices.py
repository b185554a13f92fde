"""Trusted devices (remember-me), attacked: a stolen token from another device, another
subject's or tenant's token, replay after revocation or erasure, expiry by the clock, a
locked subject, and nothing of the token or device in clear at rest."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from schemas import decode
from schemas.fields import Factor, PolicyTier, RiskLevel
from schemas.payloads import DeviceRevoked, DeviceTrusted, VerificationFailed
from tests.unit.verifiers.conftest import NOW, raw_dump
from verifiers import trusted_devices as td
from verifiers.policy import TIERS, MfaDecision, tier_policy
from verifiers.publish import outbox_events
from verifiers.risk import Contribution, RiskAssessment, RiskFactor
from verifiers.store import Request, VerifierStore
from verifiers.tables import trusted_devices as table

RequestAt = Callable[..., Request]
LAPTOP = "laptop-fp-1"
THIEF = "thief-fp-9"
DAY = timedelta(days=1)


def record(**fields: Any) -> td.TrustRecord:
    values: dict[str, Any] = {
        "trust_id": "t-1",
        "tenant": "acme",
        "subject": "u-1",
        "created_at": NOW,
        "expires_at": NOW + 30 * DAY,
        **fields,
    }
    return td.TrustRecord(**values)


def judged(found: td.TrustRecord | None, **context: Any) -> str | None:
    values: dict[str, Any] = {
        "tenant": "acme",
        "subject": "u-1",
        "binding_matches": True,
        "lifetime": 30 * DAY,
        "now": NOW + DAY,
        **context,
    }
    return td.judge(found, **values)


# -- the pure judgement ------------------------------------------------------------------


def test_a_valid_token_on_its_device_is_trusted() -> None:
    assert judged(record()) is None


@pytest.mark.parametrize(
    ("found", "context", "reason"),
    [
        (None, {}, "unknown_token"),
        (record(tenant="globex"), {}, "wrong_subject"),  # another tenant's subject
        (record(subject="u-2"), {}, "wrong_subject"),
        (record(), {"binding_matches": False}, "wrong_device"),
        (record(revoked_at=NOW + DAY), {}, "revoked"),
        (record(revoked_at=NOW + 2 * DAY), {}, "revoked"),  # whatever the clock says
        (record(), {"lifetime": timedelta(0)}, "tier_not_trusted"),
        (record(), {"now": NOW + 30 * DAY}, "expired"),
        (record(), {"now": NOW + 8 * DAY, "lifetime": 7 * DAY}, "expired"),  # tier shortened
        (record(), {"locked": True}, "locked_out"),
        (record(), {"ip_blocked": True}, "ip_blocked"),
    ],
)
def test_every_refusal_has_its_reason(
    found: td.TrustRecord | None, context: dict[str, Any], reason: str
) -> None:
    assert judged(found, **context) == reason


def test_a_stolen_token_is_refused_for_its_device_before_anything_else_of_it() -> None:
    stolen = record(revoked_at=NOW)
    assert judged(stolen, binding_matches=False, locked=True) == "wrong_device"


def assessment(*factors: RiskFactor) -> RiskAssessment:
    points = {RiskFactor.NEW_DEVICE: 20, RiskFactor.SUBJECT_LOCKED: 70, RiskFactor.IP_BLOCKED: 70}
    found = tuple(Contribution(f, points.get(f, 25), "x") for f in factors)
    score = min(100, sum(c.points for c in found))
    level = RiskLevel.HIGH if score >= 60 else RiskLevel.MEDIUM if score >= 30 else RiskLevel.LOW
    return RiskAssessment(score, level, found, False, False)


def test_trust_takes_only_the_new_device_points_away() -> None:
    lowered = td.remembered(assessment(RiskFactor.NEW_DEVICE, RiskFactor.NEW_COUNTRY))
    assert lowered.score == 25 and lowered.familiar_device
    assert [c.factor for c in lowered.contributions] == [RiskFactor.NEW_COUNTRY]


@pytest.mark.parametrize("factor", [RiskFactor.SUBJECT_LOCKED, RiskFactor.IP_BLOCKED])
def test_trust_never_lowers_the_risk_below_a_lock_or_block(factor: RiskFactor) -> None:
    lowered = td.remembered(assessment(factor, RiskFactor.NEW_DEVICE))
    assert lowered.score == 70 and lowered.level is RiskLevel.HIGH


def test_trust_skips_only_the_tiers_the_devices_and_the_unknown_places_step_up() -> None:
    plain = MfaDecision(True, ("customer_tier", "unknown_location"), (Factor.TOTP,), ())
    assert td.skip_step_up(plain) == MfaDecision(False, ("trusted_device",))
    for reason in ("high_risk", "new_country", "privileged_role", "sensitive_application"):
        kept = MfaDecision(True, ("customer_tier", reason), (Factor.TOTP,), ())
        assert td.skip_step_up(kept) is kept


def test_the_tiers_trust_admin_never_and_a_customer_for_30_days() -> None:
    assert not TIERS[PolicyTier.ADMIN].trusted_device_lifetime
    assert TIERS[PolicyTier.CUSTOMER].trusted_device_lifetime == 30 * DAY
    with pytest.raises(ValueError, match="trusted_device_lifetime"):
        tier_policy("customer", trusted_device_lifetime=timedelta(seconds=-1))


# -- the ceremony on a real store --------------------------------------------------------


def checked(
    store: VerifierStore, request: Request, token: str, device: str | None = LAPTOP, **kw: Any
) -> tuple[td.DeviceCheck, list[Any]]:
    with store.step(request, factor=None) as step:
        found = td.check(store, step, token=token, device_id=device, **kw)
        emitted = [
            (type(e.data).__name__, getattr(e.data, "reason", None), e.data.trust_id)  # type: ignore[attr-defined]
            for e in step.events
        ]
    return found, emitted


def trusted(store: VerifierStore, request: Request, **kw: Any) -> td.Trusted:
    made = td.trust(store, request, device_id=kw.pop("device_id", LAPTOP), **kw)
    assert made.accepted and made.token is not None, made.reason
    return made


def test_a_trusted_device_is_trusted_until_the_tier_lifetime_and_not_a_second_longer(
    store: VerifierStore, request_at: RequestAt
) -> None:
    made = trusted(store, request_at(), device_name="Alice's laptop")
    assert made.token is not None and made.token.startswith("fsdt_") and len(made.token) > 40
    assert made.expires_at == NOW + 30 * DAY
    assert isinstance(made.event and made.event.data, DeviceTrusted)

    before, _ = checked(store, request_at(NOW + 30 * DAY - timedelta(seconds=1)), made.token)
    after, emitted = checked(store, request_at(NOW + 30 * DAY), made.token)

    assert before.trusted and before.trust_id == made.trust_id
    assert (after.trusted, after.reason) == (False, "expired")
    assert emitted == [("DeviceTrustRefused", "expired", made.trust_id)]


def test_a_stolen_token_from_another_device_is_refused_and_revoked(
    store: VerifierStore, request_at: RequestAt
) -> None:
    made = trusted(store, request_at())
    assert made.token is not None

    thief, emitted = checked(store, request_at(NOW + DAY), made.token, THIEF)
    no_binding, _ = checked(store, request_at(NOW + DAY), made.token, None)
    owner, _ = checked(store, request_at(NOW + DAY), made.token)

    assert (thief.trusted, thief.reason) == (False, "wrong_device")
    assert emitted == [
        ("DeviceRevoked", "presented_from_other_device", made.trust_id),
        ("DeviceTrustRefused", "wrong_device", made.trust_id),
    ]
    assert no_binding.reason == "wrong_device"
    assert (owner.trusted, owner.reason) == (False, "revoked")  # the theft ended it


def test_another_subjects_and_another_tenants_token_is_refused_unnamed(
    store: VerifierStore, request_at: RequestAt
) -> None:
    made = trusted(store, request_at(tenant="globex", subject="u-1001"))
    assert made.token is not None

    other_tenant, emitted = checked(store, request_at(NOW + DAY), made.token)  # acme/u-1001
    other_subject, _ = checked(
        store, request_at(NOW + DAY, tenant="globex", subject="u-2"), made.token
    )
    flipped = "B" if made.token[10] == "A" else "A"
    forged, _ = checked(store, request_at(NOW + DAY), made.token[:10] + flipped + made.token[11:])
    junk, _ = checked(store, request_at(NOW + DAY), "x" * 5000)

    assert other_tenant.reason == other_subject.reason == "wrong_subject"
    assert emitted == [("DeviceTrustRefused", "wrong_subject", None)]  # no trust id of theirs
    assert forged.reason == junk.reason == "unknown_token"
    owner, _ = checked(store, request_at(NOW + DAY, tenant="globex", subject="u-1001"), made.token)
    assert owner.trusted  # nobody else's attempt ended it


def test_replay_after_revocation_is_refused_at_once(
    store: VerifierStore, request_at: RequestAt
) -> None:
    made = trusted(store, request_at())
    assert made.token is not None and made.trust_id is not None
    assert checked(store, request_at(NOW + DAY), made.token)[0].trusted

    ended = td.revoke(
        store,
        request_at(NOW + DAY),
        trust_id=made.trust_id,
        reason="admin_request",
        revoked_by="admin-7",
    )
    replay, _ = checked(store, request_at(NOW + DAY), made.token)

    assert ended == 1 and (replay.trusted, replay.reason) == (False, "revoked")
    again = td.revoke(
        store, request_at(NOW + DAY), trust_id=made.trust_id, reason="x", revoked_by=None
    )
    assert again == 0
    listed = td.list_devices(store, tenant="acme", subject="u-1001")
    assert [(d.status(NOW + DAY), d.revoked_by) for d in listed] == [("revoked", "admin-7")]


def test_another_tenant_cannot_revoke_a_trust(store: VerifierStore, request_at: RequestAt) -> None:
    made = trusted(store, request_at())
    assert made.token is not None
    theirs = td.revoke(
        store,
        request_at(tenant="globex"),
        trust_id=made.trust_id,
        reason="subject_request",
        revoked_by=None,
    )
    assert theirs == 0 and checked(store, request_at(NOW + DAY), made.token)[0].trusted


def test_erasure_ends_every_trust_at_once_and_leaves_nothing_of_the_devices(
    store: VerifierStore, request_at: RequestAt
) -> None:
    first = trusted(store, request_at(), device_name="Alice's laptop")
    second = trusted(store, request_at(), device_id="phone-fp-2")
    assert first.token is not None and second.token is not None

    ended = td.forget(store, tenant="acme", subject="u-1001", now=NOW + DAY, requested_by="dpo-1")

    assert ended == 2
    for token in (first.token, second.token):
        assert checked(store, request_at(NOW + DAY), token)[0].reason == "unknown_token"
    with store.engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0
        revoked = connection.execute(
            sa.select(outbox_events.c.value).where(outbox_events.c.event_type == "device.revoked")
        ).scalars()
        erasures = [decode(value).data for value in revoked]
    assert erasures == [
        DeviceRevoked(
            reason="subject_erased",
            revoked_by="dpo-1",
            devices_revoked=2,
            policy_tier=PolicyTier.CUSTOMER,
        )
    ]  # no device, name, address or place in it


def test_a_locked_subject_is_refused_and_trusts_no_new_device(
    store: VerifierStore, request_at: RequestAt
) -> None:
    made = trusted(store, request_at())
    assert made.token is not None
    policy = TIERS[PolicyTier.CUSTOMER]
    start = NOW + DAY
    for n in range(policy.max_failures):  # spaced beyond the quick-login check
        with store.step(request_at(start + timedelta(seconds=5 * n)), factor=Factor.TOTP) as step:
            step.emit(VerificationFailed(factor=Factor.TOTP, reason="invalid_code"))
    locked_at = start + timedelta(seconds=5 * policy.max_failures)

    found, emitted = checked(store, request_at(locked_at), made.token)
    refused = td.trust(store, request_at(locked_at), device_id="phone-fp-2")
    stream_locked, _ = checked(store, request_at(NOW + DAY), made.token, locked=True)

    assert (found.trusted, found.reason) == (False, "locked_out")
    assert emitted == [("DeviceTrustRefused", "locked_out", made.trust_id)]
    assert (refused.accepted, refused.reason) == (False, "locked_out")
    assert stream_locked.reason == "locked_out"
    later = locked_at + policy.max_wait + timedelta(seconds=1)
    assert checked(store, request_at(later), made.token)[0].trusted  # the lock ended


def test_the_admin_tier_trusts_no_device_and_a_tier_change_ends_trust(
    store: VerifierStore, request_at: RequestAt
) -> None:
    refused = td.trust(store, request_at(tier=PolicyTier.ADMIN), device_id=LAPTOP)
    assert (refused.accepted, refused.reason) == (False, "tier_not_trusted")
    made = trusted(store, request_at())
    assert made.token is not None
    promoted, _ = checked(store, request_at(NOW + DAY, tier=PolicyTier.ADMIN), made.token)
    business, _ = checked(store, request_at(NOW + 8 * DAY, tier=PolicyTier.BUSINESS), made.token)
    assert promoted.reason == "tier_not_trusted" and business.reason == "expired"


def test_one_assertion_trusts_one_device_once_and_retrusting_replaces_the_token(
    store: VerifierStore, request_at: RequestAt
) -> None:
    first = trusted(store, request_at(), assertion_id="jti-1")
    replay = td.trust(store, request_at(), device_id="phone-fp-2", assertion_id="jti-1")
    second = trusted(store, request_at(NOW + DAY), assertion_id="jti-2")
    assert first.token is not None and second.token is not None

    assert replay.reason == "assertion_used"
    assert checked(store, request_at(NOW + DAY), first.token)[0].reason == "revoked"
    assert checked(store, request_at(NOW + DAY), second.token)[0].trusted


def test_neither_the_token_nor_the_device_is_stored_in_clear(
    store: VerifierStore, request_at: RequestAt
) -> None:
    made = trusted(store, request_at(), device_name="Alice's laptop")
    assert made.token is not None
    dump = raw_dump(store)  # the whole database, outbox included: the token is nowhere
    assert made.token.encode() not in dump
    assert made.token.removeprefix("fsdt_").encode() not in dump
    with store.engine.connect() as connection:
        row = connection.execute(sa.select(table)).one()
    stored = b"|".join(v if isinstance(v, bytes) else str(v).encode() for v in row)
    assert LAPTOP.encode() not in stored and b"Alice's laptop" not in stored
    assert [d.device_name for d in td.list_devices(store, tenant="acme", subject="u-1001")] == [
        "Alice's laptop"
    ]
