"""How simulated people behave: when they sign in, how long each factor takes, how often
they get it wrong, how often SMS and e-mail delivery fail.

All draws take the caller's :class:`random.Random`, so a run is reproducible. Times are
log-normal (a few people are slow, nobody is negative); failure rates are per attempt.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from factorstream.simulator.geography import COUNTRIES
from factorstream.simulator.organisation import Person
from schemas.fields import Factor


@dataclass(frozen=True)
class FactorBehaviour:
    median_s: float
    """Median time from being asked to answering."""
    spread: float
    """Log-normal sigma of that time."""
    failure_rate: float
    """Chance one answer is wrong (a mistyped code, a missed push, no user verification)."""

    def completion(self, rng: random.Random) -> timedelta:
        seconds = rng.lognormvariate(math.log(self.median_s), self.spread)
        return timedelta(seconds=min(max(seconds, 1.5), 600.0))


FACTORS: dict[Factor, FactorBehaviour] = {
    Factor.TOTP: FactorBehaviour(11.0, 0.45, 0.06),
    Factor.WEBAUTHN: FactorBehaviour(4.5, 0.35, 0.02),
    Factor.PUSH: FactorBehaviour(7.0, 0.5, 0.04),
    Factor.SMS: FactorBehaviour(22.0, 0.4, 0.05),
    Factor.EMAIL: FactorBehaviour(38.0, 0.5, 0.04),
    Factor.RECOVERY_CODE: FactorBehaviour(45.0, 0.4, 0.1),
}
PASSWORD_TYPO_RATE = 0.04
RECOVERY_USE_RATE = 0.004
"""Chance a sign-in of someone holding recovery codes uses one (a lost phone)."""
SMS_FAILURE_RATES = {"simsms-primary": 0.04, "simsms-backup": 0.02}
"""Per provider, in failover order (both failing leaves a code undelivered)."""
EMAIL_FAILURE_RATES = {"simmail": 0.01}


def think(rng: random.Random, median_s: float = 6.0) -> timedelta:
    """A short human pause (reading, clicking)."""
    return timedelta(seconds=min(max(rng.lognormvariate(math.log(median_s), 0.4), 0.8), 120.0))


def sign_in_times(rng: random.Random, person: Person, day: datetime) -> list[datetime]:
    """When ``person`` signs in during the UTC day starting at ``day`` (sorted).

    Employees: one to three times on weekdays, in business hours of their time zone,
    rarely at weekends. Customers: on about a third of days, any waking hour.
    """
    offset = timedelta(hours=COUNTRIES[person.country].utc_offset_hours)
    local_midnight = day - offset
    weekend = (day + timedelta(hours=12)).weekday() >= 5
    if person.role == "customer":
        count = 1 if rng.random() < 0.33 else 0
        hours = (7.0, 23.0)
    else:
        count = 0 if weekend and rng.random() < 0.9 else rng.choice((1, 1, 2, 2, 3))
        hours = (8.0, 18.0)
    day_length = timedelta(days=1)
    # local business hours, folded into this UTC day (the same hours every day)
    times = [
        day + (local_midnight + timedelta(hours=rng.uniform(*hours)) - day) % day_length
        for _ in range(count)
    ]
    return sorted(times)
