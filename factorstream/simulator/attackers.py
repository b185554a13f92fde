"""What the attack scenarios share: attackers' clients, victims, made-up accounts, and a
plain successful sign-in (the victim's own, or an attacker's holding a stolen factor)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from factorstream.simulator.actions import Answer
from factorstream.simulator.behaviour import FACTORS, think
from factorstream.simulator.episodes import PAUSE, Episode, Session, World, client_of, enroll
from factorstream.simulator.geography import (
    ATTACKER_COUNTRIES,
    COUNTRIES,
    Country,
    address_in,
    far_country,
    mobile_number,
)
from factorstream.simulator.organisation import (
    CONSUMER,
    TENANTS,
    DeviceProfile,
    Person,
)
from schemas.fields import Client, Device, Factor, PolicyTier, RiskLevel
from verifiers.policy import AccessContext, Location, decide_mfa, mfa_required_payload

HEADLESS = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/131.0 Safari/537.36"


def attacker_country(rng: random.Random) -> Country:
    return COUNTRIES[rng.choice(ATTACKER_COUNTRIES)]


def attacker_client(rng: random.Random, country: Country, ip: str | None = None) -> Client:
    """A bot's client: a headless browser on a rented server in ``country``."""
    device = Device(
        id=f"dev-{rng.getrandbits(40):010x}", kind="desktop", os="Linux", browser="HeadlessChrome"
    )
    return Client(ip=ip or address_in(rng, country), user_agent=HEADLESS, device=device)


def victim(world: World, wanted: Callable[[Person], bool]) -> Person:
    """A person ``wanted`` accepts (the first in a seeded shuffle), else anyone."""
    people = list(world.organisation.people)
    world.rng.shuffle(people)
    return next((p for p in people if wanted(p)), people[0])


def made_up_customer(rng: random.Random, country: Country) -> Person:
    """An account of the consumer tenant that a bot creates or guesses (no one's)."""
    subject = f"u-{rng.getrandbits(48):012x}"
    phone = DeviceProfile(
        f"dev-{rng.getrandbits(40):010x}", "mobile", "Android", "Chrome", HEADLESS
    )
    return Person(
        tenant=CONSUMER,
        subject=subject,
        role="customer",
        tier=PolicyTier.CUSTOMER,
        department=None,
        country=country.code,
        ip=address_in(rng, country),
        devices=(phone,),
        factors=(Factor.SMS,),
        phone=mobile_number(rng, country),
        email=f"{subject}@{CONSUMER}.example",
        recovery_codes=False,
        rollout_day=0,
    )


def with_factor(person: Person, factor: Factor) -> Person:
    """``person`` using ``factor`` first (enrolled by the scenario if need be)."""
    if person.primary is factor:
        return person
    rest = tuple(f for f in person.factors if f is not factor)
    return replace(person, factors=(factor, *rest))


def home_session(world: World, person: Person) -> Session:
    return Session(person, world.correlation(), client_of(person, person.devices[0]))


def abroad_session(world: World, person: Person) -> Session:
    """``person``'s account used from another continent (a VPN, or an intruder)."""
    country = far_country(person.country, rng=world.rng)
    return Session(person, world.correlation(), attacker_client(world.rng, country))


def password_ok(
    world: World, session: Session, t: datetime, *, location: Location = Location.KNOWN
) -> Episode:
    """The password accepted and MFA required: ``auth.login.attempted`` and ``mfa.required``."""
    person, service = session.person, world.service
    yield t
    context = AccessContext(
        role=person.role,
        application_sensitivity=TENANTS[person.tenant].sensitivity,
        risk_level=RiskLevel.NONE,
        location=location,
        device_trusted=False,
        tier=person.tier,
    )
    decision = decide_mfa(context)
    service.login(session.at(t), ok=True, mfa_required=True)
    t += PAUSE
    yield t
    application = TENANTS[person.tenant].application
    payload = mfa_required_payload(
        decision, context, application=application, client=session.client
    )
    service.require_mfa(session.at(t), payload)
    return t + PAUSE


def completed_sign_in(
    world: World,
    session: Session,
    factor: Factor,
    t: datetime,
    *,
    location: Location = Location.KNOWN,
    answer: Answer = Answer.RIGHT,
) -> Episode:
    """A sign-in that succeeds with ``factor`` at the first answer (``answer`` may be CLONED)."""
    t = yield from password_ok(world, session, t, location=location)
    for _ in range(3):  # an undelivered code is asked for again
        yield t
        pending = world.service.challenge(session.at(t), factor)
        t += FACTORS[factor].completion(world.rng)
        if pending is not None:
            yield t
            world.service.answer(session.at(t), pending, answer)
            break
    return t + think(world.rng)


def ensure_enrolled(world: World, person: Person, factor: Factor, t: datetime) -> Episode:
    """``person`` sets up MFA at home now if they had not yet — their own factors and
    recovery codes, and ``factor`` — so no set-up of theirs follows the attack (a set-up
    after a risk is what the factor-reset detection looks for). After a set-up, the next
    step comes minutes later."""
    session = home_session(world, person)
    start = t
    t = yield from enroll(world, session, t)
    if not world.service.enrolled(person, factor):
        t = yield from enroll(world, session, t, (factor,))
    if t > start:  # back to work before signing in: a TOTP code in the step that confirmed
        t += timedelta(minutes=world.rng.uniform(2, 10))  # the set-up is refused as a replay
    return t
