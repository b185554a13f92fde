"""How soon a subject may be sent another code or push: the resend cooldown (pure).

NIST SP 800-63B §5.2.2 asks verifiers to rate-limit; what is sent to a person needs it
twice over: each SMS or call costs money (toll fraud, "SMS pumping") and each message or
prompt reaches a real phone (harassment, push fatigue). Okta sends one SMS or voice
challenge per device every 30 s; Auth0 caps SMS at 10 an hour per user and, with its
fraud protection, backs off exponentially. The rules here, over the challenges a subject
was sent (every issued challenge counts: a provider that timed out may still have
delivered and billed), for one :class:`ResendPolicy`:

* **Cooldown.** Sends share a cooldown by *kind*, what they reach (:data:`SEND_KINDS`):
  ``phone`` (SMS and voice), ``email``, ``push``; across purposes (enrollment or sign-in)
  and enrollments. Switching SMS to voice, or enrolling another number, is not a way round
  it. A send waits ``cooldown * growth ** (n - 1)`` (at most ``max_cooldown``) after the
  last send of its kind, ``n`` being the sends of that kind in the ``window`` since the
  last one that was used (a code entered, a push approved): a used send proves the person
  got it, so the next is a new need, not a resend.
* **Cap.** At most ``max_sends`` sends of every kind the policy covers together within
  ``window`` (a sliding window: a send exactly ``window`` old no longer counts).

A refused send waits until the later of the two; the refusal says why
(``resend_cooldown`` or ``send_limit``) and when a send will be accepted (``retry_at``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.fields import Factor

SEND_KINDS = {
    Factor.SMS: "phone",
    Factor.VOICE: "phone",
    Factor.EMAIL: "email",
    Factor.PUSH: "push",
}
"""What a send of each factor reaches; sends of one kind share a cooldown."""
COOLDOWN = "resend_cooldown"
LIMIT = "send_limit"


@dataclass(frozen=True)
class ResendPolicy:
    """The cooldown and cap of one family of sends (codes, or pushes)."""

    cooldown: timedelta = timedelta(seconds=30)
    """The wait after a send before the first resend of its kind."""
    growth: int = 2
    """Each further resend within ``window`` waits this many times longer (1: no growth)."""
    max_cooldown: timedelta = timedelta(minutes=10)
    window: timedelta = timedelta(hours=1)
    """The sliding window of the cap, and how far back resends count for growth."""
    max_sends: int = 10
    """Sends within ``window``, every kind of the family together."""

    def __post_init__(self) -> None:
        for name in ("cooldown", "max_cooldown", "window"):
            value = getattr(self, name)
            if not isinstance(value, timedelta) or value <= timedelta(0):
                raise ValueError(f"{name}: expected a positive timedelta, found {value!r}")
        for name in ("growth", "max_sends"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, found {value!r}")
        if not self.cooldown <= self.max_cooldown <= self.window:
            raise ValueError(
                "expected cooldown <= max_cooldown <= window, found "
                f"{self.cooldown}, {self.max_cooldown}, {self.window}"
            )

    def wait(self, resends: int) -> timedelta:
        """The wait before the next send after ``resends`` (>= 1) unused sends of a kind."""
        wait = self.cooldown
        for _ in range(resends - 1):  # stops at the cap: no overflow, however many resends
            if wait >= self.max_cooldown or self.growth == 1:
                break
            wait *= self.growth
        return min(wait, self.max_cooldown)


@dataclass(frozen=True)
class Sent:
    """One earlier send: when, to which factor, and whether it was used."""

    at: datetime
    factor: Factor
    used: bool = False


@dataclass(frozen=True)
class ResendRefused:
    """Why a send is refused now (``resend_cooldown`` or ``send_limit``) and when one will
    be accepted."""

    reason: str
    retry_at: datetime

    def retry_after(self, now: datetime) -> int:
        """Whole seconds from ``now`` until ``retry_at``, rounded up (HTTP ``Retry-After``)."""
        return retry_after(self.retry_at, now)


def retry_after(retry_at: datetime, now: datetime) -> int:
    """Whole seconds from ``now`` until ``retry_at``, rounded up, at least 1."""
    return max(1, math.ceil((retry_at - now).total_seconds()))


def refuse_send(
    sent: Iterable[Sent], *, factor: Factor, now: datetime, policy: ResendPolicy
) -> ResendRefused | None:
    """Whether a send of ``factor`` at ``now`` is refused, given the subject's earlier sends
    of the policy's family (see the module docstring); ``None``: send it."""
    kind = SEND_KINDS[factor]
    recent = sorted((s for s in sent if s.at > now - policy.window), key=lambda s: s.at)
    refusals: list[ResendRefused] = []
    if len(recent) >= policy.max_sends:
        oldest_counted = recent[len(recent) - policy.max_sends]
        refusals.append(ResendRefused(LIMIT, oldest_counted.at + policy.window))
    same_kind = [s for s in recent if SEND_KINDS.get(s.factor) == kind]
    last_used = max((s.at for s in same_kind if s.used), default=None)
    # unused sends since the last used one; one at the same instant counts (which came
    # first cannot be told, and the stricter reading is the safe one)
    streak = [s.at for s in same_kind if not s.used and (last_used is None or s.at >= last_used)]
    if streak:
        ready = max(streak) + policy.wait(len(streak))
        if now < ready:
            refusals.append(ResendRefused(COOLDOWN, ready))
    return max(refusals, key=lambda r: r.retry_at, default=None)
