"""The steps a simulated person (or attacker) takes, as one interface with two makers.

An episode (:mod:`factorstream.simulator.episodes`) says *what* someone does at an instant
— sign in with a password, answer a code rightly or wrongly, reject a push — and a
:class:`Service` carries it out:

* :class:`~factorstream.simulator.ceremonies.VerifierService` performs the real ceremony
  with the verifiers (real TOTP codes, WebAuthn assertions, delivered OTPs, number
  matching), whose events go to the store's outbox;
* :class:`~factorstream.simulator.fast.FastService` builds the events the ceremony would
  record, straight from the schemas (benchmarks; no lockout gate, no database).

Each call is one step at ``visit.now``; the episode decides the pauses between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from factorstream.simulator.organisation import Person
from schemas.fields import Client, Factor
from schemas.payloads import MfaRequired


class Answer(StrEnum):
    """What someone does when asked for a factor."""

    RIGHT = "right"
    WRONG = "wrong"
    """A wrong code, the wrong push number, an assertion without user verification."""
    REJECT = "reject"
    """Push: the person taps "deny"."""
    CLONED = "cloned"
    """WebAuthn: an assertion from a copy of the authenticator (a stale signature counter)."""


@dataclass(frozen=True)
class Visit:
    """Who acts, when, in which sign-in transaction, and from which client."""

    person: Person
    now: datetime
    correlationid: str
    client: Client
    application: str


@dataclass(frozen=True)
class Pending:
    """An open challenge or enrollment the next step answers."""

    factor: Factor
    reference: str
    """The challenge or enrollment id."""
    expires_at: datetime | None = None


@dataclass(frozen=True)
class ActionResult:
    accepted: bool
    reason: str | None = None


class Service(Protocol):
    def login(self, visit: Visit, *, ok: bool, mfa_required: bool | None) -> ActionResult:
        """``auth.login.attempted`` (the password step; a locked subject is refused)."""
        ...

    def require_mfa(self, visit: Visit, decision: MfaRequired) -> None:
        """``mfa.required``: conditional access's decision for this sign-in."""
        ...

    def begin_enrollment(self, visit: Visit, factor: Factor) -> Pending | None:
        """Start enrolling ``factor`` (an OTP factor is sent its first code); ``None`` when
        nothing reached the person (an undelivered code)."""
        ...

    def finish_enrollment(self, visit: Visit, pending: Pending, answer: Answer) -> ActionResult: ...

    def challenge(self, visit: Visit, factor: Factor) -> Pending | None:
        """Ask for ``factor`` (send a code or a push, or a WebAuthn challenge); ``None`` when
        nothing reached the person (undelivered, or refused by the lockout)."""
        ...

    def answer(self, visit: Visit, pending: Pending, answer: Answer) -> ActionResult: ...

    def expire(self, visit: Visit, pending: Pending) -> None:
        """A push left unanswered past its expiry (the sweeper closes it)."""
        ...

    def regenerate_recovery_codes(self, visit: Visit) -> None: ...

    def redeem_recovery_code(self, visit: Visit, answer: Answer) -> ActionResult: ...

    def clone_authenticator(self, person: Person) -> None:
        """Copy ``person``'s WebAuthn authenticator as it is now (for a later ``CLONED``)."""
        ...

    def enrolled(self, person: Person, factor: Factor) -> bool: ...

    # -- the account lifecycle (factorstream.simulator.lifecycle_services) ---------------

    def trust_device(self, visit: Visit) -> str | None:
        """``device.trusted``: the visit's device remembered; its token (``None``: the
        subject's tier trusts no device)."""
        ...

    def present_trusted_device(self, visit: Visit, token: str) -> ActionResult:
        """A remembered device's token shown at sign-in from the visit's device (from
        another device: refused as stolen, and the trust revoked)."""
        ...

    def revoke_trusted_devices(self, visit: Visit) -> int:
        """The subject ends trust in every device of theirs; how many ended."""
        ...

    def request_override(
        self, visit: Visit, *, action: str, requester: str, ticket: str
    ) -> str | None:
        """An administrator asks to unlock the visit's subject (``unlock``) or to give it a
        temporary-access code (``temporary_access``); the request id (``None``: refused)."""
        ...

    def approve_override(
        self, visit: Visit, request_id: str, *, approver: str
    ) -> tuple[ActionResult, str | None]:
        """A second administrator approves, or is refused (``self_approval``, …); the
        temporary-access code an approval makes."""
        ...

    def redeem_temporary_access(self, visit: Visit, code: str) -> ActionResult: ...

    def import_totp_seeds(self, visit: Visit, subjects: list[str], *, source: str) -> None:
        """TOTP seeds migrated from another system (``source``) for ``subjects`` of the
        visit's tenant."""
        ...

    def invite(self, visit: Visit, subjects: list[str], factor: Factor) -> None:
        """``subjects`` of the visit's tenant invited to enrol ``factor``."""
        ...
