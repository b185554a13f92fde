"""Issue 16, determinism across partitions: the folds keyed by client IP (password spray,
per-IP blocking) and by tenant (SMS pumping) give the same final state and derive the same
events, ids and contents, for any interleaving of the same per-partition sequences.

Random logs of several subjects (of two tenants) on several channels, spread over windows
and periods with bursts that meet the thresholds, each folded in interleavings that keep
each channel's order: any interleaving when the log spans less than the lateness, lagged
ones (every event less than the lateness behind event time) when it spans hours. The
thresholds are small so that the rules fire in most examples (:func:`test_the_logs_fire`).
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import Event
from schemas import payloads as p
from schemas.fields import Channel, Factor, Outcome
from streams.folds import slots
from streams.folds.ipblock import IpBlockPolicy, IpBlockState, fold_ip_block
from streams.folds.pumping import SmsPumpingState, fold_sms_pumping
from streams.folds.spray import SprayState, fold_password_spray
from streams.folds.thresholds import DetectionThresholds
from tests.factories import T0
from tests.unit.streams import Log, client
from tests.unit.streams.partitions import (
    Fold,
    any_merge,
    channels_of,
    lagged_merge,
    outcome,
)

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
IP = "198.51.100.23"
RULES = DetectionThresholds(
    cooldown=timedelta(minutes=15),
    spray_min_subjects=3,
    spray_window=timedelta(minutes=10),
    sms_window=timedelta(minutes=10),
    sms_unusual_count=3,
    sms_burst_count=5,
    sms_learning_sends=3,
    sms_adoption_period=timedelta(hours=2),
    sms_premium_countries=frozenset({"GN"}),
)
POLICY = IpBlockPolicy(
    min_subjects=3,
    window=timedelta(minutes=5),
    duration=timedelta(minutes=7),
    lateness=timedelta(minutes=40),
)
GAPS = [0, 1, 20, 45, 60, 150, 400, 900, 2400]
"""Seconds between successive events: bursts, windows, periods, lateness."""
COUNTRIES = ["DE", "DE", "FR", "NG", "GN", None]

steps = st.lists(
    st.tuples(
        st.integers(0, 7),  # subject (0-4: acme, 5-7: globex)
        st.sampled_from(GAPS),
        st.integers(0, 5),  # what: a kind of failure, a country
    ),
    min_size=1,
    max_size=40,
)


def _log(steps_: list[tuple[int, int, int]], make: Any) -> list[Event]:
    log, at, events = Log(), T0, []
    for who, gap, what in steps_:
        at += timedelta(seconds=gap)
        tenant = "acme" if who < 5 else "globex"
        events.append(make(log, at, tenant, f"u-{who}", what))
    return events


def _failed_login(log: Log, at: Any, tenant: str, subject: str, what: int) -> Event:
    return log.login(at, ip=IP, tenant=tenant, subject=subject)


def _attempt(log: Log, at: Any, tenant: str, subject: str, what: int) -> Event:
    """Mostly counted failures; some successes, refusals and other failures."""
    where = client(ip=IP)
    if what == 4:
        data: p.Payload = p.LoginAttempted(outcome=Outcome.SUCCESS, method="password", client=where)
    elif what == 5:
        data = p.VerificationFailed(factor=Factor.TOTP, reason="locked_out", client=where)
    elif what == 3:
        data = p.RecoveryFailed(reason="unknown_code", client=where)
    else:
        reason = "invalid_password"
        data = p.LoginAttempted(
            outcome=Outcome.FAILURE, method="password", reason=reason, client=where
        )
    return log.event(data, at, tenant=tenant, subject=subject)


def _send(log: Log, at: Any, tenant: str, subject: str, what: int) -> Event:
    """Codes of one tenant to a few countries; now and then by voice (not watched)."""
    channel = Channel.VOICE if what == 5 and subject == "u-1" else Channel.SMS
    return log.sms(at, COUNTRIES[what], channel=channel, subject=subject, tenant="acme")


FOLDS: dict[str, tuple[Fold, Any, Any, Any, timedelta]] = {
    "password_spray": (fold_password_spray, SprayState, RULES, _failed_login, slots.LATENESS),
    "sms_pumping": (fold_sms_pumping, SmsPumpingState, RULES, _send, slots.LATENESS),
    "ip_block": (fold_ip_block, IpBlockState, POLICY, _attempt, POLICY.lateness),
}


def _within(events: list[Event], span: timedelta) -> list[Event]:
    return [e for e in events if e.time - T0 < span]


def _check_any_merge(
    name: str, steps_: list[tuple[int, int, int]], channels: int, seed: int
) -> None:
    fold, empty, rules, make, lateness = FOLDS[name]
    events = _within(_log(steps_, make), lateness)  # no order can be late
    split, rng = channels_of(events, channels), random.Random(seed)
    expected = outcome(fold, empty, events, rules)
    for _ in range(3):
        assert outcome(fold, empty, any_merge(split, rng), rules) == expected


def _check_lagged_merge(
    name: str, steps_: list[tuple[int, int, int]], channels: int, seed: int
) -> None:
    fold, empty, rules, make, lateness = FOLDS[name]
    events = _log(steps_, make)
    split, rng = channels_of(events, channels), random.Random(seed)
    expected = outcome(fold, empty, events, rules)
    for _ in range(3):
        assert outcome(fold, empty, lagged_merge(split, rng, lateness), rules) == expected


@PROPERTY
@given(steps, st.integers(2, 4), st.integers(0, 2**32))
def test_password_spray_does_not_depend_on_the_interleaving(
    steps_: list[tuple[int, int, int]], channels: int, seed: int
) -> None:
    _check_any_merge("password_spray", steps_, channels, seed)
    _check_lagged_merge("password_spray", steps_, channels, seed)


@PROPERTY
@given(steps, st.integers(2, 4), st.integers(0, 2**32))
def test_sms_pumping_does_not_depend_on_the_interleaving(
    steps_: list[tuple[int, int, int]], channels: int, seed: int
) -> None:
    _check_any_merge("sms_pumping", steps_, channels, seed)
    _check_lagged_merge("sms_pumping", steps_, channels, seed)


@PROPERTY
@given(steps, st.integers(2, 4), st.integers(0, 2**32))
def test_ip_block_does_not_depend_on_the_interleaving(
    steps_: list[tuple[int, int, int]], channels: int, seed: int
) -> None:
    _check_any_merge("ip_block", steps_, channels, seed)
    _check_lagged_merge("ip_block", steps_, channels, seed)


def test_the_logs_fire() -> None:
    """The generator's logs do exercise the rules: over a fixed sample of them, every fold
    derives events, and each kind of derived event comes out."""
    rng = random.Random(16)
    kinds: dict[str, set[str]] = {name: set() for name in FOLDS}
    for _ in range(40):
        steps_ = [
            (rng.randrange(8), rng.choice(GAPS), rng.randrange(6))
            for _ in range(rng.randrange(10, 40))
        ]
        for name, (fold, empty, rules, make, _) in FOLDS.items():
            state, derived = empty(), []
            for event in _log(steps_, make):
                state, found = fold(state, event, rules)
                derived += found
            kinds[name] |= {
                f"{e.type}/{getattr(e.data, 'evidence', {}).get('rule', '')}" for e in derived
            }
    assert kinds == {
        "password_spray": {"risk.detected/"},
        "sms_pumping": {"risk.detected/unusual_destination", "risk.detected/burst_rate"},
        "ip_block": {"ip.block.applied/", "ip.block.released/"},
    }


def test_an_event_later_than_the_lateness_is_not_counted() -> None:
    """The guarantee's limit: behind the newest by more than the lateness, an event counts
    for nothing (had it come in time, it might have)."""
    log = Log()
    late = log.login(T0, ip=IP, subject="u-1")
    newest = log.login(T0 + slots.LATENESS + timedelta(minutes=2), ip=IP, subject="u-2")
    state, _ = fold_password_spray(SprayState(), newest, RULES)
    assert fold_password_spray(state, late, RULES) == (state, [])
    in_time, _ = fold_password_spray(SprayState(), late, RULES)
    assert fold_password_spray(in_time, newest, RULES)[0] != state
