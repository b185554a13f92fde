"""Risk at sign-in: the profile folded from events, the score, and the tier's decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas import Event, new_event
from schemas import payloads as p
from schemas.fields import Client, Device, Factor, Geo, LockoutScope, Outcome, PolicyTier, RiskLevel
from verifiers.risk import (
    EMPTY,
    IpBlocks,
    RiskFactor,
    RiskThresholds,
    SignIn,
    SubjectProfile,
    assess_risk,
    decide,
    fold_ip_blocks,
    fold_profile,
    fold_profiles,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
THRESHOLDS = RiskThresholds(anonymous_networks=("185.220.100.0/22",))
BERLIN = Geo(country="DE", latitude=52.52, longitude=13.40)
SYDNEY = Geo(country="AU", latitude=-33.87, longitude=151.21)
LAPTOP = Device(id="dev-laptop")


def event(payload: p.Payload, at: datetime, *, subject: str = "alice", cid: str = "c") -> Event:
    return new_event(
        payload, source="test", tenant="acme", subject=subject, correlationid=cid, now=at
    )


def signed_in(
    at: datetime,
    *,
    geo: Geo = BERLIN,
    device: Device = LAPTOP,
    ip: str = "203.0.113.7",
    cid: str | None = None,
) -> Event:
    client = Client(ip=ip, geo=geo, device=device)
    return event(
        p.VerificationSucceeded(factor=Factor.TOTP, client=client), at, cid=cid or at.isoformat()
    )


def history(days: int = 5, **kwargs: Any) -> SubjectProfile:
    """A subject that signed in each morning at 09:00 UTC from Berlin on its laptop."""
    events = [signed_in(T0 + timedelta(days=d), **kwargs) for d in range(days)]
    return fold_profiles(events, THRESHOLDS)["acme/alice"]


def assess(profile: SubjectProfile, sign_in: SignIn, blocked: datetime | None = None) -> Any:
    return assess_risk(sign_in, profile, ip_blocked_until=blocked, thresholds=THRESHOLDS)


NEXT_MORNING = T0 + timedelta(days=5, minutes=5)


def test_a_familiar_device_on_a_familiar_network_is_low_and_needs_no_mfa() -> None:
    profile = history()
    sign_in = SignIn(
        at=NEXT_MORNING,
        ip="203.0.113.99",
        device_id="dev-laptop",
        country="DE",
        latitude=52.5,
        longitude=13.4,
    )

    assessment = assess(profile, sign_in)
    _, decision = decide(assessment, tier=PolicyTier.CUSTOMER)

    assert (assessment.score, assessment.level, assessment.contributions) == (0, RiskLevel.LOW, ())
    assert not decision.required and decision.reasons == ("low_risk_context",)


def test_impossible_travel_from_the_last_sign_in_is_high_and_steps_up_without_sms() -> None:
    profile = history()
    an_hour_later = T0 + timedelta(days=4, hours=1)
    sign_in = SignIn(
        at=an_hour_later,
        ip="198.51.100.4",
        device_id="dev-laptop",
        country="AU",
        latitude=SYDNEY.latitude,
        longitude=SYDNEY.longitude,
    )

    assessment = assess(profile, sign_in)
    _, decision = decide(assessment, tier=PolicyTier.CUSTOMER)

    points = {c.factor: c.points for c in assessment.contributions}
    assert points == {RiskFactor.IMPOSSIBLE_TRAVEL: 60, RiskFactor.NEW_COUNTRY: 25}
    assert assessment.score == 85 and assessment.level is RiskLevel.HIGH
    assert decision.required and decision.reasons[:1] == ("high_risk",)
    assert "new_country" in decision.reasons
    assert Factor.SMS not in decision.required_factors + decision.allowed_factors


def test_travel_slow_enough_to_be_possible_scores_nothing_for_travel() -> None:
    profile = history()
    sign_in = SignIn(
        at=NEXT_MORNING + timedelta(days=1),
        country="DE",
        latitude=48.1,
        longitude=11.6,
        device_id="dev-laptop",
    )  # Munich a day later
    assert not assess(profile, sign_in).has(RiskFactor.IMPOSSIBLE_TRAVEL)


def test_new_country_and_new_device_score_only_once_the_subject_has_a_history() -> None:
    stranger = SignIn(at=NEXT_MORNING, ip="198.51.100.4", device_id="dev-phone", country="FR")

    learning = assess(history(days=2), stranger)
    learned = assess(history(days=3), stranger)

    assert learning.score == 0 and not learning.familiar_location
    assert {c.factor for c in learned.contributions} == {
        RiskFactor.NEW_COUNTRY,
        RiskFactor.NEW_DEVICE,
    }
    assert learned.score == 45 and learned.level is RiskLevel.MEDIUM
    _, decision = decide(learning, tier=PolicyTier.CUSTOMER)
    assert decision.required and "unknown_location" in decision.reasons


def test_a_second_completion_of_one_login_counts_once() -> None:
    first = signed_in(T0, cid="login-1")
    again = signed_in(T0 + timedelta(seconds=1), cid="login-1")
    profile = fold_profiles([first, again], THRESHOLDS)["acme/alice"]
    assert profile.sign_ins == 1


def test_locks_count_while_in_force_and_clear() -> None:
    applied = event(
        p.LockoutApplied(
            scope=LockoutScope.SUBJECT,
            reason="too_many_failures",
            failures=10,
            locked_until=T0 + timedelta(minutes=15),
        ),
        T0,
    )
    factor_lock = event(
        p.LockoutApplied(
            scope=LockoutScope.FACTOR,
            reason="otp_failures",
            failures=5,
            factor=Factor.SMS,
            locked_until=T0 + timedelta(minutes=15),
        ),
        T0,
    )
    profile = fold_profile(fold_profile(EMPTY, applied, THRESHOLDS), factor_lock, THRESHOLDS)

    during = assess(profile, SignIn(at=T0 + timedelta(minutes=1)))
    after = assess(profile, SignIn(at=T0 + timedelta(minutes=16)))
    cleared = fold_profile(
        profile,
        event(p.LockoutCleared(scope=LockoutScope.SUBJECT, reason="admin_unlock"), T0),
        THRESHOLDS,
    )

    assert [c.factor for c in during.contributions] == [RiskFactor.SUBJECT_LOCKED]
    assert during.level is RiskLevel.HIGH
    assert after.score == 0
    assert cleared.subject_lock is None and Factor.SMS in cleared.factor_locks


def test_recent_detections_score_by_their_worst_severity_within_the_window() -> None:
    detected = event(
        p.RiskDetected(
            detection=p.Detection.OTP_GUESSING,
            severity=RiskLevel.HIGH,
            score=75,
            summary="guessing",
        ),
        T0,
    )
    profile = fold_profile(EMPTY, detected, THRESHOLDS)

    soon = assess(profile, SignIn(at=T0 + timedelta(hours=1)))
    later = assess(profile, SignIn(at=T0 + timedelta(hours=25)))

    assert [(c.factor, c.points, c.detail) for c in soon.contributions] == [
        (RiskFactor.RECENT_DETECTIONS, 30, "otp_guessing")
    ]
    assert later.score == 0


def test_ip_blocks_apply_until_their_end_and_release() -> None:
    blocked = event(
        p.IpBlockApplied(
            ip="192.0.2.9",
            reason="many_subjects",
            failures=20,
            distinct_subjects=20,
            blocked_until=T0 + timedelta(minutes=30),
        ),
        T0,
    )
    blocks = fold_ip_blocks(IpBlocks(), blocked)
    released = fold_ip_blocks(
        blocks, event(p.IpBlockReleased(ip="192.0.2.9", reason="expired"), T0)
    )

    assert blocks.until("192.0.2.9", T0) == T0 + timedelta(minutes=30)
    assert blocks.until("::ffff:192.0.2.9", T0) == T0 + timedelta(minutes=30)
    assert blocks.until("192.0.2.9", T0 + timedelta(minutes=31)) is None
    assert released.until("192.0.2.9", T0) is None
    until = blocks.until("192.0.2.9", T0)
    assessment = assess(EMPTY, SignIn(at=T0, ip="192.0.2.9"), blocked=until)
    assert assessment.has(RiskFactor.IP_BLOCKED) and assessment.level is RiskLevel.HIGH


def test_a_block_one_tenants_provider_reported_holds_for_that_tenant_alone() -> None:
    """A tenant's reported block of a shared address must not refuse other tenants'
    sign-ins, nor survive the platform releasing a block of its own on the address."""
    reported = event(
        p.IpBlockApplied(
            ip="192.0.2.9",
            reason="idp_reported",
            failures=0,
            distinct_subjects=0,
            blocked_until=T0 + timedelta(hours=2),
            only_tenant="mallory",
        ),
        T0,
    )
    blocks = fold_ip_blocks(IpBlocks(), reported)
    assert blocks.until("192.0.2.9", T0, "mallory") == T0 + timedelta(hours=2)
    assert blocks.until("192.0.2.9", T0, "acme") is None
    assert blocks.until("192.0.2.9", T0) is None
    released = fold_ip_blocks(
        blocks, event(p.IpBlockReleased(ip="192.0.2.9", reason="expired"), T0)
    )
    assert released.until("192.0.2.9", T0, "mallory") == T0 + timedelta(hours=2)


def test_an_anonymous_network_is_scored_and_bars_telephony() -> None:
    assessment = assess(
        history(), SignIn(at=NEXT_MORNING, ip="185.220.101.5", device_id="dev-laptop")
    )
    context, decision = decide(assessment, tier=PolicyTier.BUSINESS)

    assert assessment.has(RiskFactor.ANONYMOUS_IP) and assessment.level is RiskLevel.MEDIUM
    assert context.location == "anonymous_network"
    assert decision.required and Factor.SMS not in decision.allowed_factors


def test_the_admin_tier_requires_a_phishing_resistant_factor_even_at_low_risk() -> None:
    assessment = assess(
        history(), SignIn(at=NEXT_MORNING, ip="203.0.113.99", device_id="dev-laptop", country="DE")
    )
    _, decision = decide(assessment, tier=PolicyTier.ADMIN)

    assert assessment.score == 0
    assert decision.required and decision.required_factors == (Factor.WEBAUTHN,)
    assert not {Factor.SMS, Factor.EMAIL, Factor.VOICE} & set(decision.allowed_factors)


def test_an_hour_the_subject_never_signs_in_at_is_unusual() -> None:
    profile = history(days=10)
    night = assess(
        profile, SignIn(at=T0 + timedelta(days=10, hours=-6), device_id="dev-laptop", country="DE")
    )
    morning = assess(
        profile,
        SignIn(at=T0 + timedelta(days=10, minutes=40), device_id="dev-laptop", country="DE"),
    )
    assert [c.factor for c in night.contributions] == [RiskFactor.UNUSUAL_HOUR]
    assert night.level is RiskLevel.LOW and morning.score == 0


def test_a_naive_time_is_refused() -> None:
    try:
        SignIn(at=datetime(2026, 12, 1, 9, 0))  # noqa: DTZ001 - the point of the test
    except ValueError as error:
        assert "timezone-aware" in str(error)
    else:
        raise AssertionError("a naive time was accepted")


def test_a_verification_learns_the_device_and_place_of_the_login_it_completes() -> None:
    context = Client(ip="203.0.113.7", geo=BERLIN, device=LAPTOP)
    needs_mfa = event(
        p.MfaRequired(required=True, reasons=["customer_tier"], client=context), T0, cid="l-1"
    )
    other = event(
        p.MfaRequired(required=True, client=Client(ip="198.51.100.1", device=Device(id="x"))),
        T0,
        cid="l-2",
    )
    verified = event(
        p.VerificationSucceeded(factor=Factor.TOTP, client=Client(ip="203.0.113.8")),
        T0 + timedelta(seconds=20),
        cid="l-1",
    )

    profile = fold_profiles([needs_mfa, other, verified], THRESHOLDS)["acme/alice"]

    assert profile.knows("devices", "dev-laptop") and not profile.knows("devices", "x")
    assert profile.knows("countries", "DE") and profile.knows("networks", "203.0.113.0/24")
    assert profile.last_place is not None and profile.last_place.country == "DE"
    assert [cid for cid, _ in profile.open_logins] == ["l-2"]
    failed_login = event(
        p.LoginAttempted(outcome=Outcome.FAILURE, method="password", client=context), T0, cid="l-3"
    )
    assert fold_profile(profile, failed_login, THRESHOLDS) is profile
