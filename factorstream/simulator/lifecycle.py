"""The account lifecycle as one episode (no attack): what the Lifecycle page of the
dashboard shows, played through the same :class:`~factorstream.simulator.actions.Service`.

A migration (customers' TOTP seeds imported from another provider), invitations to enrol
WebAuthn (one taken up at once), remembered devices (one forgotten by its owner, one whose
token turns up on another device: refused as stolen), an unlock under the two-person rule
(the requester's own approval refused, a colleague's accepted) and a temporary-access code
used once, then refused as used.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import msgspec

from factorstream.simulator.attackers import (
    completed_sign_in,
    ensure_enrolled,
    home_session,
    with_factor,
)
from factorstream.simulator.behaviour import think
from factorstream.simulator.episodes import Episode, World
from factorstream.simulator.organisation import CONSUMER, WORKFORCE, Person
from schemas.fields import Device, Factor

MINUTE = timedelta(minutes=1)
ADMINS = ("it-ann", "it-ben")
"""The two administrators of the workforce tenant's help desk."""
IMPORTS = (("otpauth", 4), ("csv", 2))
"""Seeds migrated per source."""


def _people(world: World, tenant: str, count: int, skip: tuple[Person, ...] = ()) -> list[Person]:
    people = [p for p in world.organisation.people if p.tenant == tenant and p not in skip]
    world.rng.shuffle(people)
    return people[:count]


def account_lifecycle(world: World, at: datetime) -> Episode:
    """The lifecycle steps (see the module docstring), a few minutes apart."""
    yield at  # nothing before the start: the scheduler runs this much when adding it
    rng, service = world.rng, world.service
    customers = _people(world, CONSUMER, 3) or _people(world, WORKFORCE, 3)
    t = at
    desk = home_session(world, customers[0])
    for source, count in IMPORTS:
        yield t
        migrated = [f"u-{rng.getrandbits(48):012x}" for _ in range(count)]
        service.import_totp_seeds(desk.at(t), migrated, source=source)
        t += MINUTE
    staff = [p for p in _people(world, WORKFORCE, 12) if not service.enrolled(p, Factor.WEBAUTHN)][
        :3
    ]
    if staff:
        yield t
        service.invite(
            home_session(world, staff[0]).at(t), [p.subject for p in staff], Factor.WEBAUTHN
        )
        keen = with_factor(staff[0], Factor.WEBAUTHN)
        t = yield from ensure_enrolled(world, keen, Factor.WEBAUTHN, t + 5 * MINUTE)
    t = yield from _trusted_devices(world, customers, t)
    return (yield from _overrides(world, _people(world, WORKFORCE, 2, tuple(staff)), t))


def _trusted_devices(world: World, customers: list[Person], t: datetime) -> Episode:
    """Each customer signs in and remembers the device; the first forgets it later, the
    second's token is presented from another device (stolen)."""
    service, tokens = world.service, []
    for person in customers:
        session = home_session(world, person)
        t = yield from ensure_enrolled(world, person, person.primary, t)
        t = yield from completed_sign_in(world, session, person.primary, t)
        yield t
        tokens.append((session, service.trust_device(session.at(t))))
        t += think(world.rng)
    t += 30 * MINUTE
    first, first_token = tokens[0]
    if first_token is not None:
        yield t
        service.revoke_trusted_devices(first.at(t))
        t += 5 * MINUTE
    second, second_token = tokens[-1]
    if second_token is not None and len(tokens) > 1:
        stolen = msgspec.structs.replace(
            second.client,
            device=Device(id=f"dev-{world.rng.getrandbits(40):010x}", kind="desktop", os="Linux"),
        )
        yield t
        service.present_trusted_device(replace(second, client=stolen).at(t), second_token)
        t += 5 * MINUTE
    return t


def _overrides(world: World, staff: list[Person], t: datetime) -> Episode:
    """An unlock of one staff member (the requester's own approval refused first), and a
    temporary access for another, used once and then refused as used."""
    service = world.service
    ann, ben = ADMINS
    if not staff:
        return t
    locked_out = home_session(world, staff[0])
    yield t
    request = service.request_override(
        locked_out.at(t), action="unlock", requester=ann, ticket="HD-1042"
    )
    if request is not None:
        t += 2 * MINUTE
        yield t
        service.approve_override(locked_out.at(t), request, approver=ann)  # refused: herself
        t += 6 * MINUTE
        yield t
        service.approve_override(locked_out.at(t), request, approver=ben)
    phone_lost = home_session(world, staff[-1])
    t += 20 * MINUTE
    yield t
    request = service.request_override(
        phone_lost.at(t), action="temporary_access", requester=ben, ticket="HD-1043"
    )
    if request is None:
        return t
    t += 4 * MINUTE
    yield t
    _, code = service.approve_override(phone_lost.at(t), request, approver=ann)
    if code is None:
        return t
    for _ in range(2):  # the second use of a single-use code is refused
        t += 3 * MINUTE
        yield t
        service.redeem_temporary_access(phone_lost.at(t), code)
    return t
