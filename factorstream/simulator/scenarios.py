"""The attack scenarios, each an episode that starts at a given time and can be switched on
alone. :data:`EXPECTED` says what the stream must derive from each (the detections of
``streams.folds`` and the lockout and IP-block folds, at their default thresholds); the
unit tests replay every scenario through those folds and check it. One is no attack: the
account lifecycle (:mod:`factorstream.simulator.lifecycle`: imports, invitations, trusted
devices, the two-person override), which must set off nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from factorstream.simulator.actions import Answer
from factorstream.simulator.attackers import (
    abroad_session,
    attacker_client,
    attacker_country,
    completed_sign_in,
    ensure_enrolled,
    home_session,
    made_up_customer,
    password_ok,
    victim,
    with_factor,
)
from factorstream.simulator.behaviour import think
from factorstream.simulator.episodes import Episode, Session, World
from factorstream.simulator.geography import COUNTRIES, PUMPING_COUNTRIES, address_in
from factorstream.simulator.lifecycle import account_lifecycle
from factorstream.simulator.organisation import CONSUMER
from schemas.fields import Factor
from verifiers.policy import Location

Scenario = Callable[[World, datetime], Episode]
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)


def otp_brute_force(world: World, at: datetime) -> Episode:
    """Someone with the password guesses TOTP codes, waiting out each lockout."""
    yield at  # nothing before the start: the scheduler runs this much when adding it
    rng = world.rng
    person = with_factor(victim(world, lambda p: p.primary is Factor.TOTP), Factor.TOTP)
    t = yield from ensure_enrolled(world, person, Factor.TOTP, at)
    attacker = Session(person, world.correlation(), attacker_client(rng, attacker_country(rng)))
    t = yield from password_ok(world, attacker, t + 20 * MINUTE)
    wrong = 0
    while wrong < 12 and t < at + 55 * MINUTE:
        yield t
        pending = world.service.challenge(attacker.at(t), Factor.TOTP)
        outcome = world.service.answer(attacker.at(t), pending, Answer.WRONG) if pending else None
        if outcome is not None and outcome.reason == "locked_out":
            t += 4 * MINUTE  # wait the lockout out
        else:
            wrong += 1
            t += rng.uniform(15, 30) * SECOND
    return t


def credential_stuffing(world: World, at: datetime) -> Episode:
    """Bots on two addresses of one network try leaked passwords on ~24 accounts each."""
    yield at  # nothing before the start: the scheduler runs this much when adding it
    rng = world.rng
    country = attacker_country(rng)
    network = replace(country, networks=(rng.choice(country.networks),))
    ips = [address_in(rng, network) for _ in range(2)]  # one hosting provider's range
    customers = [p for p in world.organisation.people if p.tenant == CONSUMER]
    targets = customers[:40] + [made_up_customer(rng, country) for _ in range(48)]
    t = at
    for index, person in enumerate(targets[:48]):
        ip = ips[index % len(ips)]
        session = Session(person, world.correlation("stuffing"), attacker_client(rng, country, ip))
        yield t
        hit = person in customers and rng.random() < 0.05  # a reused password
        world.service.login(session.at(t), ok=hit, mfa_required=True if hit else None)
        t += rng.uniform(2, 6) * SECOND
    return t


def impossible_travel(world: World, at: datetime) -> Episode:
    """A sign-in at home, then one from another continent half an hour later."""
    yield at  # nothing before the start: the scheduler runs this much when adding it
    person = victim(world, lambda p: p.primary in (Factor.TOTP, Factor.SMS, Factor.PUSH))
    factor = person.primary if person.primary is not Factor.WEBAUTHN else Factor.TOTP
    t = yield from ensure_enrolled(world, person, factor, at)
    t = yield from completed_sign_in(world, home_session(world, person), factor, t)
    away = abroad_session(world, person)
    t = yield from completed_sign_in(
        world, away, factor, t + 35 * MINUTE, location=Location.NEW_COUNTRY
    )
    return t


def push_bombing(world: World, at: datetime) -> Episode:
    """MFA fatigue: pushes until the person, worn down, approves one. The attacker asks
    again every few seconds; the verifiers refuse each prompt asked for too soon (one open
    at a time, a resend cooldown that doubles: the refusals are in the log), so the prompts
    that reach the phone come 30 s, 1, 2, 4, 8 minutes apart."""
    yield at  # nothing before the start: the scheduler runs this much when adding it
    rng, service = world.rng, world.service
    person = with_factor(victim(world, lambda p: p.primary is Factor.PUSH), Factor.PUSH)
    t = yield from ensure_enrolled(world, person, Factor.PUSH, at)
    attacker = Session(person, world.correlation(), attacker_client(rng, attacker_country(rng)))
    t = yield from password_ok(world, attacker, t + 10 * MINUTE)
    for round_ in range(7):
        yield t
        pending = service.challenge(attacker.at(t), Factor.PUSH)
        for _ in range(120):  # refused (too soon, or locked): ask again, for up to ~20 min
            if pending is not None:
                break
            t += rng.uniform(4, 12) * SECOND
            yield t
            pending = service.challenge(attacker.at(t), Factor.PUSH)
        if pending is None or pending.expires_at is None:
            return t
        if round_ == 6:
            t += rng.uniform(4, 9) * SECOND
            yield t
            service.answer(attacker.at(t), pending, Answer.RIGHT)  # gives in
        elif round_ % 2 == 0:
            t += rng.uniform(3, 8) * SECOND
            yield t
            service.answer(attacker.at(t), pending, Answer.REJECT)
        else:
            t = pending.expires_at + SECOND
            yield t
            service.expire(attacker.at(t), pending)
        t += rng.uniform(10, 25) * SECOND
    return t


def sms_pumping(world: World, at: datetime) -> Episode:
    """Toll fraud: bots sign up accounts with numbers abroad and request code after code.
    The verifiers' resend cooldown refuses each account's second request (refused, on the
    record, nothing sent), so the bots make up the volume with accounts: one code each,
    ~130 codes in 6–7 minutes."""
    yield at  # nothing before the start: the scheduler runs this much when adding it
    rng = world.rng
    t = at
    for index in range(130):
        country = COUNTRIES[PUMPING_COUNTRIES[index % len(PUMPING_COUNTRIES)]]
        account = made_up_customer(rng, country)
        session = Session(account, world.correlation("signup"), attacker_client(rng, country))
        for _resend in range(2):  # the second is refused by the resend cooldown
            yield t
            world.service.begin_enrollment(session.at(t), Factor.SMS)
            t += rng.uniform(0.5, 2.5) * SECOND
    return t


def recovery_code_abuse(world: World, at: datetime) -> Episode:
    """Someone with the password guesses recovery codes."""
    yield at  # nothing before the start: the scheduler runs this much when adding it
    rng = world.rng
    person = victim(world, lambda p: p.recovery_codes)
    t = at
    if not world.service.enrolled(person, Factor.RECOVERY_CODE):
        yield t
        world.service.regenerate_recovery_codes(home_session(world, person).at(t))
    attacker = Session(person, world.correlation(), attacker_client(rng, attacker_country(rng)))
    t = yield from password_ok(world, attacker, t + 30 * MINUTE)
    for _ in range(5):
        yield t
        world.service.redeem_recovery_code(attacker.at(t), Answer.WRONG)
        t += rng.uniform(20, 50) * SECOND
    return t


def cloned_authenticator(world: World, at: datetime) -> Episode:
    """A copy of a security key signs in after the original moved its counter on."""
    yield at  # nothing before the start: the scheduler runs this much when adding it
    rng = world.rng
    person = with_factor(victim(world, lambda p: p.primary is Factor.WEBAUTHN), Factor.WEBAUTHN)
    t = yield from ensure_enrolled(world, person, Factor.WEBAUTHN, at)
    t = yield from completed_sign_in(world, home_session(world, person), Factor.WEBAUTHN, t)
    world.service.clone_authenticator(person)
    for _ in range(2):
        t += rng.uniform(20, 60) * MINUTE
        t = yield from completed_sign_in(world, home_session(world, person), Factor.WEBAUTHN, t)
    attacker = Session(person, world.correlation(), attacker_client(rng, attacker_country(rng)))
    t = yield from completed_sign_in(
        world, attacker, Factor.WEBAUTHN, t + 20 * MINUTE, answer=Answer.CLONED
    )
    return t


def factor_reset(world: World, at: datetime) -> Episode:
    """After a risky sign-in from abroad, the intruder replaces the recovery codes."""
    yield at  # nothing before the start: the scheduler runs this much when adding it
    rng = world.rng
    person = victim(world, lambda p: p.primary in (Factor.TOTP, Factor.SMS))
    factor = person.primary if person.primary in (Factor.TOTP, Factor.SMS) else Factor.TOTP
    t = yield from ensure_enrolled(world, person, factor, at)
    t = yield from completed_sign_in(world, home_session(world, person), factor, t)
    away = abroad_session(world, person)
    t = yield from completed_sign_in(
        world, away, factor, t + 25 * MINUTE, location=Location.NEW_COUNTRY
    )
    t += think(rng, 40.0)
    yield t
    world.service.regenerate_recovery_codes(away.at(t))
    return t


SCENARIOS: dict[str, Scenario] = {
    "otp_brute_force": otp_brute_force,
    "credential_stuffing": credential_stuffing,
    "impossible_travel": impossible_travel,
    "push_bombing": push_bombing,
    "sms_pumping": sms_pumping,
    "recovery_code_abuse": recovery_code_abuse,
    "cloned_authenticator": cloned_authenticator,
    "factor_reset": factor_reset,
    "account_lifecycle": account_lifecycle,
}
EXPECTED: dict[str, frozenset[str]] = {
    "otp_brute_force": frozenset({"risk.detected/otp_guessing", "lockout.applied"}),
    "credential_stuffing": frozenset({"risk.detected/password_spray", "ip.block.applied"}),
    "impossible_travel": frozenset({"risk.detected/impossible_travel"}),
    "push_bombing": frozenset({"risk.detected/push_fatigue"}),
    "sms_pumping": frozenset({"risk.detected/sms_pumping"}),
    "recovery_code_abuse": frozenset({"risk.detected/recovery_code_abuse", "lockout.applied"}),
    "cloned_authenticator": frozenset({"risk.detected/cloned_authenticator"}),
    "factor_reset": frozenset({"risk.detected/factor_reset_after_risk"}),
    "account_lifecycle": frozenset(),
}
"""What the stream derives from each scenario: ``risk.detected/<detection>`` or a type."""
_GOT_IN_FROM_ABROAD = frozenset(
    {
        "risk.detected/impossible_travel",
        "risk.detected/new_country",
        "risk.detected/new_device",
    }
)
ALSO_POSSIBLE: dict[str, frozenset[str]] = {
    name: _GOT_IN_FROM_ABROAD
    if name in ("push_bombing", "impossible_travel", "factor_reset")
    else frozenset()
    for name in SCENARIOS
}
"""What a scenario may set off besides :data:`EXPECTED`: an attacker who completes a
sign-in from abroad is also a new country and device, or an impossible trip."""
SLOT = timedelta(minutes=80)
"""Scenarios start this far apart, on the backfill's last day."""


def scenario_times(names: list[str], *, until: datetime, start: datetime) -> list[datetime]:
    """When each of ``names`` starts: 80 minutes apart, ending ~3½ hours before ``until``."""
    first = max(start, until - timedelta(hours=13))
    return [first + index * SLOT for index in range(len(names))]
