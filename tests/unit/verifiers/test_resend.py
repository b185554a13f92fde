"""The resend cooldown's rules on their own: kinds, growth, the cap, the edges."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.fields import Factor, PolicyTier
from tests.unit.verifiers.conftest import NOW
from verifiers.policy import TIERS, tier_policy
from verifiers.resend import ResendPolicy, ResendRefused, Sent, refuse_send

POLICY = ResendPolicy()
S = timedelta(seconds=1)


def _refuse(sent: list[Sent], factor: Factor = Factor.SMS, at: timedelta = 0 * S) -> object:
    return refuse_send(sent, factor=factor, now=NOW + at, policy=POLICY)


def test_the_first_send_and_a_send_after_a_used_one_go_at_once() -> None:
    assert _refuse([]) is None
    assert _refuse([Sent(NOW, Factor.SMS, used=True)]) is None


def test_a_resend_waits_the_cooldown_to_the_microsecond() -> None:
    sent = [Sent(NOW, Factor.SMS)]
    assert _refuse(sent, at=30 * S - timedelta(microseconds=1)) == ResendRefused(
        "resend_cooldown", NOW + 30 * S
    )
    assert _refuse(sent, at=30 * S) is None


def test_waits_double_up_to_the_longest_cooldown() -> None:
    assert [POLICY.wait(n).total_seconds() for n in range(1, 9)] == [
        30,
        60,
        120,
        240,
        480,
        600,
        600,
        600,
    ]
    assert POLICY.wait(10_000) == POLICY.max_cooldown  # no overflow


@pytest.mark.parametrize(
    ("earlier", "now", "refused"),
    [
        (Factor.SMS, Factor.VOICE, True),  # one phone
        (Factor.VOICE, Factor.SMS, True),
        (Factor.SMS, Factor.EMAIL, False),  # another inbox
        (Factor.EMAIL, Factor.EMAIL, True),
        (Factor.PUSH, Factor.SMS, False),
    ],
)
def test_sends_share_a_cooldown_by_what_they_reach(
    earlier: Factor, now: Factor, refused: bool
) -> None:
    assert (_refuse([Sent(NOW, earlier)], now, 1 * S) is not None) is refused


def test_an_unused_send_at_the_same_instant_as_a_used_one_counts() -> None:
    """Which came first cannot be told: the stricter reading."""
    sent = [Sent(NOW, Factor.SMS), Sent(NOW, Factor.SMS, used=True)]
    assert _refuse(list(reversed(sent)), at=1 * S) == _refuse(sent, at=1 * S)
    assert _refuse(sent, at=1 * S) == ResendRefused("resend_cooldown", NOW + 30 * S)


def test_the_cap_counts_every_kind_and_slides_with_the_window() -> None:
    sent = [Sent(NOW + n * S, Factor.SMS if n % 2 else Factor.EMAIL, used=True) for n in range(10)]
    assert _refuse(sent, Factor.VOICE, 10 * S) == ResendRefused("send_limit", NOW + POLICY.window)
    assert _refuse(sent, Factor.VOICE, POLICY.window - timedelta(microseconds=1)) is not None
    assert _refuse(sent, Factor.VOICE, POLICY.window) is None  # the first is an hour old
    assert _refuse(sent[1:], Factor.VOICE, 10 * S) is None


def test_the_later_of_cooldown_and_cap_is_reported() -> None:
    sent = [Sent(NOW + n * S, Factor.SMS, used=n < 9) for n in range(10)]
    refused = _refuse(sent, at=10 * S)
    assert refused == ResendRefused("send_limit", NOW + POLICY.window)
    assert isinstance(refused, ResendRefused) and refused.retry_after(NOW + 10 * S) == 3590


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=7200),
            st.sampled_from([Factor.SMS, Factor.VOICE, Factor.EMAIL]),
            st.booleans(),
        ),
        max_size=30,
    ),
    st.sampled_from([Factor.SMS, Factor.VOICE, Factor.EMAIL]),
)
@settings(max_examples=300, deadline=None)
def test_a_send_at_the_time_a_refusal_names_is_accepted(
    history: list[tuple[int, Factor, bool]], factor: Factor
) -> None:
    """Whatever came before, a refusal's ``retry_at`` is honest: asking again then works."""
    now = NOW + 7200 * S
    sent = [Sent(NOW + seconds * S, f, used) for seconds, f, used in history]
    refused = refuse_send(sent, factor=factor, now=now, policy=POLICY)
    if refused is not None:
        assert refused.retry_at > now
        assert refuse_send(sent, factor=factor, now=refused.retry_at, policy=POLICY) is None


@pytest.mark.parametrize(
    "bad",
    [
        {"cooldown": timedelta(0)},
        {"growth": 0},
        {"growth": True},
        {"max_sends": 0},
        {"cooldown": timedelta(minutes=11)},  # longer than max_cooldown
        {"max_cooldown": timedelta(hours=2)},  # longer than the window
    ],
)
def test_nonsense_policies_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ResendPolicy(**bad)  # type: ignore[arg-type]


def test_every_tier_resends_by_the_defaults_and_a_tier_can_change_them() -> None:
    for policy in TIERS.values():
        assert policy.code_resend == policy.push_resend == ResendPolicy()
    patient = ResendPolicy(cooldown=timedelta(minutes=1), growth=1, max_sends=5)
    customer = tier_policy(PolicyTier.CUSTOMER, code_resend=patient)
    assert customer.code_resend.wait(3) == timedelta(minutes=1)
    with pytest.raises(ValueError, match="code_resend"):
        tier_policy(PolicyTier.CUSTOMER, code_resend=30)
