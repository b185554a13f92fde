"""Episodes: what one person does over a few minutes, as generators of step times.

An episode is a generator that yields the time of its next step and, when resumed, takes
that step through the :class:`~factorstream.simulator.actions.Service` (see
:mod:`factorstream.simulator.schedule`). The first ``yield`` is its start; nothing happens
before it. Sub-episodes (enrolling, answering a factor) return the time they ended.

Benign behaviour stays under every lockout and detection threshold: a sign-in risks at most
``failure_budget`` wrong answers (password typo included) and always ends with a right one,
people use their own devices from their home IP, and push prompts are never left to pile up.
"""

from __future__ import annotations

import random
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from factorstream.simulator.actions import Answer, Service, Visit
from factorstream.simulator.behaviour import (
    FACTORS,
    PASSWORD_TYPO_RATE,
    RECOVERY_USE_RATE,
    think,
)
from factorstream.simulator.organisation import TENANTS, DeviceProfile, Organisation, Person
from schemas.fields import Client, Device, Factor, RiskLevel
from verifiers.policy import AccessContext, Location, decide_mfa, mfa_required_payload

Episode = Generator[datetime, None, datetime]
"""Yields step times; returns the time it ended (for ``yield from``)."""
DAY = timedelta(days=1)
PAUSE = timedelta(milliseconds=300)


@dataclass
class World:
    """What every episode shares: the service, the organisation and a seeded generator."""

    service: Service
    organisation: Organisation
    rng: random.Random
    sign_ins: dict[str, int] = field(default_factory=dict)

    def correlation(self, kind: str = "login") -> str:
        return f"{kind}-{self.rng.getrandbits(64):016x}"

    def device_for(self, person: Person) -> DeviceProfile:
        """Each device in turn for the first sign-ins (learnt early), then any of them."""
        count = self.sign_ins.get(person.subject, 0)
        self.sign_ins[person.subject] = count + 1
        if count < len(person.devices):
            return person.devices[count]
        return self.rng.choice(person.devices)

    def mfa_enforced(self, person: Person, now: datetime) -> bool:
        return (now - self.organisation.start) // DAY >= person.rollout_day


def client_of(person: Person, device: DeviceProfile, ip: str | None = None) -> Client:
    return Client(
        ip=ip or person.ip,
        user_agent=device.user_agent,
        device=Device(id=device.id, kind=device.kind, os=device.os, browser=device.browser),
    )


@dataclass(frozen=True)
class Session:
    """One sign-in transaction: who, from which client."""

    person: Person
    correlationid: str
    client: Client

    def at(self, now: datetime) -> Visit:
        application = TENANTS[self.person.tenant].application
        return Visit(self.person, now, self.correlationid, self.client, application)


def sign_in(world: World, person: Person, start: datetime) -> Episode:
    """A person signing in from home: password, then MFA once their rollout day came."""
    rng, service = world.rng, world.service
    device = world.device_for(person)
    session = Session(person, world.correlation(), client_of(person, device))
    t = start
    yield t
    budget = 1 if person.role == "admin" else 2
    if rng.random() < PASSWORD_TYPO_RATE:
        service.login(session.at(t), ok=False, mfa_required=None)
        budget -= 1
        t += think(rng)
        yield t
    if not world.mfa_enforced(person, t):
        service.login(session.at(t), ok=True, mfa_required=False)
        return t
    trusted = (
        person.role == "customer" and world.sign_ins[person.subject] > 3 and rng.random() < 0.4
    )
    context = AccessContext(
        role=person.role,
        application_sensitivity=TENANTS[person.tenant].sensitivity,
        risk_level=RiskLevel.NONE,
        location=Location.KNOWN,
        device_trusted=trusted,
        tier=person.tier,
    )
    decision = decide_mfa(context)
    if not service.login(session.at(t), ok=True, mfa_required=decision.required).accepted:
        return t
    t += PAUSE
    yield t
    application = TENANTS[person.tenant].application
    payload = mfa_required_payload(
        decision, context, application=application, client=session.client
    )
    service.require_mfa(session.at(t), payload)
    if not decision.required:
        return t
    t = yield from enroll(world, session, t + think(rng))
    factor = next(
        (f for f in person.factors if decision.accepts(f) and service.enrolled(person, f)),
        None,
    )
    if factor is None:
        return t
    if person.recovery_codes and rng.random() < RECOVERY_USE_RATE:
        factor = Factor.RECOVERY_CODE  # a lost phone: one printed code, then a fresh set
    t = yield from authenticate(world, session, factor, t + PAUSE, budget=budget)
    if factor is Factor.RECOVERY_CODE:
        t += think(rng)
        yield t
        service.regenerate_recovery_codes(session.at(t))
    return t


def enroll(
    world: World, session: Session, start: datetime, factors: tuple[Factor, ...] | None = None
) -> Episode:
    """Enroll every factor of the person not enrolled yet (a setup can fail once), and
    print a set of recovery codes for those who keep them."""
    rng, service, person = world.rng, world.service, session.person
    t = start
    for factor in factors or person.factors:
        if service.enrolled(person, factor):
            continue
        yield t
        for attempt in range(3):
            pending = service.begin_enrollment(session.at(t), factor)
            t += 2 * FACTORS[factor].completion(rng)  # scanning a QR code, finding the key
            yield t
            if pending is None:
                continue  # the code never arrived: try again
            wrong = attempt == 0 and rng.random() < FACTORS[factor].failure_rate
            answer = Answer.WRONG if wrong else Answer.RIGHT
            if service.finish_enrollment(session.at(t), pending, answer).accepted:
                break
            t += think(rng)
            yield t
        t += think(rng)
    if (
        person.recovery_codes
        and factors is None
        and not service.enrolled(person, Factor.RECOVERY_CODE)
    ):
        yield t
        service.regenerate_recovery_codes(session.at(t))
        t += think(rng)
    return t


def authenticate(
    world: World, session: Session, factor: Factor, start: datetime, *, budget: int
) -> Episode:
    """Answer ``factor`` until it is accepted: at most ``budget`` wrong answers, then right."""
    rng, service = world.rng, world.service
    behaviour = FACTORS[factor]
    t = start
    yield t
    for _ in range(budget + 3):
        pending = service.challenge(session.at(t), factor)
        t += behaviour.completion(rng)
        yield t
        if pending is None:
            continue  # undelivered (the person asks again) or refused
        wrong = budget > 0 and rng.random() < behaviour.failure_rate
        if factor is Factor.PUSH and wrong and pending.expires_at is not None:
            t = pending.expires_at + think(rng, 2.0)  # the phone was in a bag: it expires
            yield t
            service.expire(session.at(t), pending)
            budget -= 1  # not a failure for the lockout, but one fewer chance
        else:
            answer = Answer.WRONG if wrong else Answer.RIGHT
            outcome = service.answer(session.at(t), pending, answer)
            if outcome.accepted or outcome.reason == "locked_out":
                return t
            budget -= 1
        t += think(rng)
        yield t
    return t
