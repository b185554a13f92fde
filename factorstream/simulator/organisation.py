"""The simulated organisation: tenants, people, roles, tiers, departments, MFA rollout.

:func:`build_organisation` is pure and seeded: the same seed and size give the same
people, with the same subject ids, homes, IPs, devices, phones and factors.

* Two tenants: a workforce (``northwind``: administrators and employees in departments,
  admin and business tiers, sign-ins in business hours) and a consumer service
  (``tailspin``: customers, customer tier, sign-ins any waking hour).
* **Progressive rollout**: MFA is enforced first for the pilot (IT and every administrator,
  day 0), then department by department, then for every customer; before their day a
  person signs in with a password alone (``auth.login.attempted``, ``mfa_required=false``).
  The first sign-in on or after that day enrolls their factors.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from factorstream.simulator.geography import (
    COUNTRIES,
    CUSTOMER_COUNTRIES,
    WORKFORCE_COUNTRIES,
    address_in,
    mobile_number,
    weighted_choice,
)
from schemas.fields import Factor, PolicyTier
from verifiers.policy import Sensitivity

WORKFORCE, CONSUMER = "northwind", "tailspin"
DEPARTMENTS = ("it", "engineering", "finance", "sales", "support", "hr")
"""Workforce departments in rollout order (``it`` is the pilot)."""
ADMIN_SHARE, WORKFORCE_SHARE = 0.08, 0.6


@dataclass(frozen=True)
class Tenant:
    name: str
    workforce: bool
    application: str
    sensitivity: Sensitivity


TENANTS = {
    WORKFORCE: Tenant(WORKFORCE, True, "northwind-portal", Sensitivity.MEDIUM),
    CONSUMER: Tenant(CONSUMER, False, "tailspin-shop", Sensitivity.LOW),
}


@dataclass(frozen=True)
class DeviceProfile:
    id: str
    kind: str
    os: str
    browser: str
    user_agent: str


DEVICE_KINDS = (
    ("desktop", "Windows", "Edge", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Edg/131.0"),
    ("desktop", "macOS", "Safari", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) Safari/605.1"),
    ("desktop", "Linux", "Firefox", "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Firefox/132.0"),
    ("mobile", "iOS", "Safari", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1) Mobile Safari/604.1"),
    ("mobile", "Android", "Chrome", "Mozilla/5.0 (Linux; Android 15; Pixel 8) Chrome/131.0"),
)


@dataclass(frozen=True)
class Person:
    tenant: str
    subject: str
    role: str
    """``admin``, ``employee`` or ``customer``."""
    tier: PolicyTier
    department: str | None
    country: str
    ip: str
    """The home (or office) public IP."""
    devices: tuple[DeviceProfile, ...]
    factors: tuple[Factor, ...]
    """Enrolled at rollout; the first is used to sign in, the rest are fallbacks."""
    phone: str | None
    email: str
    recovery_codes: bool
    rollout_day: int
    """The simulated day (0-based) from which MFA is enforced for this person."""

    @property
    def primary(self) -> Factor:
        return self.factors[0]


@dataclass(frozen=True)
class Organisation:
    start: datetime
    """Midnight UTC of simulated day 0."""
    days: int
    people: tuple[Person, ...]

    def by_tenant(self, tenant: str) -> list[Person]:
        return [p for p in self.people if p.tenant == tenant]


def rollout_days(days: int) -> dict[str, int]:
    """The day each workforce department joins: pilot on day 0, the rest by 60 % of the run."""
    later = DEPARTMENTS[1:]
    first, last = 0.15 * days, 0.6 * days
    step = (last - first) / max(1, len(later) - 1)
    return {"it": 0} | {d: int(first + i * step) for i, d in enumerate(later)}


def build_organisation(*, seed: int, users: int, days: int, start: datetime) -> Organisation:
    """``users`` people (at least one per tenant) over ``days`` days from ``start``."""
    if users < 2 or days < 1:
        raise ValueError(f"expected at least 2 users and 1 day, got {users} and {days}")
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (UTC)")
    rng = random.Random(f"organisation/{seed}")  # noqa: S311 - a reproducible simulation
    workforce = max(1, round(users * WORKFORCE_SHARE))
    admins = max(1, round(workforce * ADMIN_SHARE))
    departments = rollout_days(days)
    people = []
    for index in range(users):
        if index < workforce:
            role = "admin" if index < admins else "employee"
            department = "it" if role == "admin" else DEPARTMENTS[index % len(DEPARTMENTS)]
            day = 0 if role == "admin" else departments[department]
            people.append(_person(rng, WORKFORCE, role, department, day))
        else:
            day = int(rng.uniform(0.3, 0.75) * days)
            people.append(_person(rng, CONSUMER, "customer", None, day))
    return Organisation(start, days, tuple(people))


def _person(
    rng: random.Random, tenant: str, role: str, department: str | None, rollout_day: int
) -> Person:
    weights = WORKFORCE_COUNTRIES if tenant == WORKFORCE else CUSTOMER_COUNTRIES
    country = COUNTRIES[weighted_choice(rng, weights)]
    subject = f"u-{rng.getrandbits(48):012x}"
    factors, tier = _factors(rng, role)
    phone_needed = Factor.SMS in factors or rng.random() < 0.5
    return Person(
        tenant=tenant,
        subject=subject,
        role=role,
        tier=tier,
        department=department,
        country=country.code,
        ip=address_in(rng, country),
        devices=_devices(rng, workforce=tenant == WORKFORCE),
        factors=factors,
        phone=mobile_number(rng, country) if phone_needed else None,
        email=f"{subject}@{tenant}.example",
        recovery_codes=role == "admin" or (role == "employee" and rng.random() < 0.05),
        rollout_day=rollout_day,
    )


def _factors(rng: random.Random, role: str) -> tuple[tuple[Factor, ...], PolicyTier]:
    if role == "admin":
        return (Factor.WEBAUTHN, Factor.TOTP), PolicyTier.ADMIN
    if role == "employee":
        primary = Factor.TOTP if rng.random() < 0.55 else Factor.PUSH
        fallback = (Factor.SMS,) if rng.random() < 0.3 else ()
        return (primary, *fallback), PolicyTier.BUSINESS
    draw = rng.random()
    primary = Factor.TOTP if draw < 0.35 else Factor.SMS if draw < 0.8 else Factor.EMAIL
    return (primary,), PolicyTier.CUSTOMER


def _devices(rng: random.Random, *, workforce: bool) -> tuple[DeviceProfile, ...]:
    desktops = [k for k in DEVICE_KINDS if k[0] == "desktop"]
    mobiles = [k for k in DEVICE_KINDS if k[0] == "mobile"]
    if workforce:
        kinds = [rng.choice(desktops), rng.choice(mobiles)]
    else:
        kinds = [rng.choice(mobiles)] + ([rng.choice(desktops)] if rng.random() < 0.4 else [])
    return tuple(
        DeviceProfile(f"dev-{rng.getrandbits(40):010x}", kind, os, browser, agent)
        for kind, os, browser, agent in kinds
    )
