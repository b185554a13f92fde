"""What a simulated person holds, and how they type a code: rightly, or wrongly on purpose.

A wrong code is never accidentally right: it avoids the codes the verifier would accept
(for TOTP, those of the previous, current and next time step).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pyotp

from factorstream.simulator.actions import Answer
from factorstream.softauthn import SoftAuthenticator, SoftCredential
from schemas.fields import Factor
from verifiers import recovery_codes


@dataclass
class Wallet:
    """What one simulated person holds."""

    totp: pyotp.TOTP | None = None
    authenticator: SoftAuthenticator = field(default_factory=SoftAuthenticator)
    clone: SoftCredential | None = None
    push_enrollment: str | None = None
    recovery_codes: list[str] = field(default_factory=list)
    enrolled: set[Factor] = field(default_factory=set)
    pending: dict[str, str] = field(default_factory=dict)
    """Per open challenge or enrollment: the TOTP seed, push number or WebAuthn options."""


def totp_code(generator: pyotp.TOTP, now: datetime, answer: Answer, rng: random.Random) -> str:
    """The authenticator app's code at ``now``, or a code no step of the window accepts."""
    if answer is Answer.RIGHT:
        return generator.at(now)
    step = timedelta(seconds=generator.interval)
    return wrong_code(rng, {generator.at(now + k * step) for k in (-1, 0, 1)})


def typed_code(code: str | None, answer: Answer, rng: random.Random) -> str:
    """The code as received (SMS, e-mail), or another one."""
    if answer is Answer.RIGHT and code is not None:
        return code
    return wrong_code(rng, {code} if code else set())


def wrong_code(rng: random.Random, avoid: set[str]) -> str:
    while True:
        guess = f"{rng.randrange(1_000_000):06d}"
        if guess not in avoid:
            return guess


def recovery_guess(rng: random.Random) -> str:
    """A well-formed recovery code nobody was given (1 in 2⁶⁰ to hit one)."""
    alphabet, length = recovery_codes.ALPHABET, recovery_codes.CODE_LENGTH
    return "".join(rng.choice(alphabet) for _ in range(length))
