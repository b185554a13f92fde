"""The simulated gateways: they fail at their rate, fail over in order, and the code that
got through is the one in the person's inbox."""

from __future__ import annotations

import random

import pytest

from factorstream.simulator.delivery import Inbox, SimulatedProvider, simulated_delivery
from schemas.fields import Channel
from verifiers.delivery import Message


def _message(code: str = "123456") -> Message:
    return Message(Channel.SMS, "+4915123450000", f"Your code is {code}", secrets=(code,))


def test_failures_happen_at_the_configured_rate_and_fail_over() -> None:
    inbox = Inbox()
    delivery = simulated_delivery(
        inbox=inbox,
        rng=random.Random(1),
        sms_failure_rates={"first": 0.3, "second": 0.5},
        email_failure_rates={"mail": 0.0},
    )
    reports = [delivery.deliver(_message()) for _ in range(2000)]
    first_failed = sum(not r.attempts[0].delivered for r in reports)
    undelivered = sum(r.delivered is None for r in reports)
    assert 0.25 < first_failed / 2000 < 0.35
    assert 0.11 < undelivered / 2000 < 0.19  # 0.3 × 0.5
    failed_over = [r for r in reports if len(r.attempts) == 2]
    assert all(
        r.attempts[0].provider == "first" and r.attempts[1].provider == "second"
        for r in failed_over
    )
    assert all(a.reason for r in reports for a in r.attempts if not a.delivered)


def test_the_inbox_holds_the_last_code_delivered() -> None:
    inbox = Inbox()
    provider = SimulatedProvider(
        "gw", frozenset({Channel.SMS}), inbox=inbox, failure_rate=0.0, rng=random.Random(0)
    )
    assert provider.send(_message("111111")) != provider.send(_message("222222"))
    assert inbox.code_for("+4915123450000") == "222222"
    assert inbox.code_for("+4400") is None


def test_a_failure_rate_outside_0_to_1_is_refused() -> None:
    with pytest.raises(ValueError, match="failure_rate"):
        SimulatedProvider("gw", frozenset(), inbox=Inbox(), failure_rate=1.5, rng=random.Random())
