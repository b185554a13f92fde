"""A simulated SMS and e-mail gateway for the verifiers' OTP ceremonies.

:class:`SimulatedProvider` satisfies :class:`verifiers.delivery.DeliveryProvider`: it
fails at a configured, seeded rate (like a gateway timing out or refusing) and otherwise
drops the message into an :class:`Inbox`, where the simulated person reads the code —
the one place it is read, exactly as a phone would show it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from schemas.fields import Channel
from verifiers.delivery import DeliveryFailed, FailoverDelivery, Message

SMS_COSTS: Final = Path(__file__).with_name("sms_costs.toml")
"""The simulated gateways' prices and the caps per country (example rates)."""
RECEIPTS: Final = (("DELIVRD", 0.955), ("UNDELIV", 0.03), ("EXPIRED", 0.01), ("REJECTD", 0.005))
"""What the simulated gateways' delivery reports say, and how often (SMPP words)."""


def receipt_word(rng: random.Random) -> str:
    """A simulated delivery report's status word (:data:`RECEIPTS`)."""
    words = [word for word, _ in RECEIPTS]
    return rng.choices(words, weights=[share for _, share in RECEIPTS])[0]


FAILURES = (
    ("timeout", "no answer from the gateway in time"),
    ("provider_unavailable", "HTTP 503: upstream carrier unavailable"),
    ("rejected", "HTTP 400: destination temporarily unreachable"),
)


class Inbox:
    """The last code each destination (phone number or address) received."""

    def __init__(self) -> None:
        self._codes: dict[str, str] = {}

    def receive(self, message: Message) -> None:
        if message.secrets:
            self._codes[message.destination] = message.secrets[0]

    def code_for(self, destination: str) -> str | None:
        return self._codes.get(destination)


class SimulatedProvider:
    """One gateway: fails with probability ``failure_rate``, else delivers to the inbox."""

    def __init__(
        self,
        name: str,
        channels: frozenset[Channel],
        *,
        inbox: Inbox,
        failure_rate: float,
        rng: random.Random,
    ) -> None:
        if not 0 <= failure_rate <= 1:
            raise ValueError(f"failure_rate: expected 0..1, got {failure_rate}")
        self.name = name
        self.channels = channels
        self._inbox = inbox
        self._failure_rate = failure_rate
        self._rng = rng
        self._sent = 0

    def send(self, message: Message) -> str:
        if self._rng.random() < self._failure_rate:
            reason, detail = self._rng.choice(FAILURES)
            raise DeliveryFailed(reason, detail)
        self._sent += 1
        self._inbox.receive(message)
        return f"{self.name}-{self._sent:09d}"


def simulated_delivery(
    *,
    inbox: Inbox,
    rng: random.Random,
    sms_failure_rates: Mapping[str, float],
    email_failure_rates: Mapping[str, float],
) -> FailoverDelivery:
    """SMS (and voice) gateways in failover order, then e-mail, all into ``inbox``."""
    phone = frozenset({Channel.SMS, Channel.VOICE})
    providers = [
        SimulatedProvider(name, phone, inbox=inbox, failure_rate=rate, rng=rng)
        for name, rate in sms_failure_rates.items()
    ]
    providers += [
        SimulatedProvider(name, frozenset({Channel.EMAIL}), inbox=inbox, failure_rate=rate, rng=rng)
        for name, rate in email_failure_rates.items()
    ]
    return FailoverDelivery(providers)
