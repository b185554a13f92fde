"""Fast mode: the same model's events, built from the schemas without any ceremony.

:class:`FastService` records what each step's ceremony would record (same event types,
the same ids from the seed, the same delivery failures), but checks nothing: there is no
database, no lockout gate and no cryptography, so a step costs microseconds. It is for
benchmarks of the pipeline; the default path performs the real ceremonies
(:class:`~factorstream.simulator.ceremonies.VerifierService`). Without the gate, an
attacker is never refused ``locked_out``, nor held back by the resend cooldown or the
country caps (every code or push asked for is sent). SMS sends carry their price from the
simulated gateways' table and a delivery report follows each.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from factorstream.simulator.actions import ActionResult, Answer, Pending, Visit
from factorstream.simulator.behaviour import EMAIL_FAILURE_RATES, SMS_FAILURE_RATES
from factorstream.simulator.delivery import FAILURES, SMS_COSTS, receipt_word
from factorstream.simulator.entropy import SeededEntropy
from factorstream.simulator.lifecycle_services import FastLifecycle, administrators_key
from factorstream.simulator.organisation import Person
from schemas import Event, new_event
from schemas import payloads as p
from schemas.fields import Channel, Device, Factor
from schemas.fields import Client as ClientInfo
from schemas.fields import Outcome as Result
from schemas.registry import BY_PAYLOAD, Producer
from schemas.signing import sign_event
from verifiers.policy import TIERS
from verifiers.receipts import receipt_status
from verifiers.sendcaps import load_send_charges

SOURCE = "https://login.example.com/mfa"
CHANNELS = {
    Factor.TOTP: Channel.AUTHENTICATOR_APP,
    Factor.PUSH: Channel.PUSH,
    Factor.SMS: Channel.SMS,
    Factor.EMAIL: Channel.EMAIL,
}
WRONG_REASONS = {Factor.WEBAUTHN: "user_verification_missing", Factor.PUSH: "number_mismatch"}


@dataclass
class _Holder:
    """What the fast service remembers of one person."""

    enrollments: dict[Factor, str] = field(default_factory=dict)
    sign_count: int = 0
    clone_count: int | None = None
    recovery_left: int = 0
    issued: dict[str, datetime] = field(default_factory=dict)


class FastService(FastLifecycle):
    """Events of the ceremonies, without performing them (see the module docstring)."""

    def __init__(self, *, seed: int, admins_key: Ed25519PrivateKey | None = None) -> None:
        """``admins_key`` signs the administrators' control events (default: one drawn
        from the seed; a pipeline that should accept them needs the key it trusts)."""
        self.entropy = SeededEntropy(seed)
        self._admins = admins_key or administrators_key(seed)
        self._rng = random.Random(f"fast/{seed}")  # noqa: S311 - a reproducible simulation
        self._receipts = random.Random(f"receipts/{seed}")  # noqa: S311 - likewise
        self._prices = load_send_charges(SMS_COSTS).prices
        self._holders: dict[str, _Holder] = {}
        self.events: list[Event] = []

    def take(self) -> list[Event]:
        """The events recorded since the last call."""
        events, self.events = self.events, []
        return events

    def _holder(self, person: Person) -> _Holder:
        return self._holders.setdefault(person.subject, _Holder())

    def _emit(self, visit: Visit, payload: p.Payload, *, subject: str | None = None) -> None:
        """``payload`` as an event of the visit (of ``subject``, another subject of the
        visit's tenant, when given: a bulk enrolment's)."""
        if isinstance(payload, p.Activity):
            payload = msgspec.structs.replace(
                payload,
                application=payload.application or visit.application,
                policy_tier=payload.policy_tier or visit.person.tier,
                client=payload.client or visit.client,
            )
        person = visit.person
        event = new_event(
            payload,
            source=SOURCE,
            tenant=person.tenant,
            subject=subject or person.subject,
            correlationid=visit.correlationid,
            now=visit.now,
            event_id=self.entropy.event_id(visit.now),
        )
        if BY_PAYLOAD[type(payload)].made_by is Producer.CONTROL:
            event = sign_event(event, self._admins)
        self.events.append(event)

    def enrolled(self, person: Person, factor: Factor) -> bool:
        return factor in self._holder(person).enrollments

    def login(self, visit: Visit, *, ok: bool, mfa_required: bool | None) -> ActionResult:
        outcome = Result.SUCCESS if ok else Result.FAILURE
        reason = None if ok else "invalid_password"
        required = mfa_required if ok else None
        payload = p.LoginAttempted(
            outcome=outcome, method="password", reason=reason, mfa_required=required
        )
        self._emit(visit, payload)
        return ActionResult(ok, reason)

    def require_mfa(self, visit: Visit, decision: p.MfaRequired) -> None:
        self._emit(visit, decision)

    def begin_enrollment(self, visit: Visit, factor: Factor) -> Pending | None:
        enrollment_id = f"{factor}-{self.entropy.identifier()}"
        self._emit(
            visit,
            p.EnrollmentStarted(
                factor=factor, enrollment_id=enrollment_id, channel=CHANNELS.get(factor)
            ),
        )
        if (
            factor in (Factor.SMS, Factor.EMAIL)
            and self._send(visit, factor, enrollment_id) is None
        ):
            return None
        return Pending(factor, enrollment_id)

    def finish_enrollment(self, visit: Visit, pending: Pending, answer: Answer) -> ActionResult:
        factor, enrollment_id = pending.factor, pending.reference
        if answer is not Answer.RIGHT:
            reason = WRONG_REASONS.get(factor, "invalid_code")
            self._emit(
                visit,
                p.EnrollmentFailed(factor=factor, enrollment_id=enrollment_id, reason=reason),
            )
            return ActionResult(False, reason)
        self._holder(visit.person).enrollments[factor] = enrollment_id
        self._emit(
            visit,
            p.EnrollmentCompleted(
                factor=factor, enrollment_id=enrollment_id, channel=CHANNELS.get(factor)
            ),
        )
        return ActionResult(True)

    def challenge(self, visit: Visit, factor: Factor) -> Pending | None:
        if factor in (Factor.TOTP, Factor.RECOVERY_CODE):
            return Pending(factor, str(factor))
        holder = self._holder(visit.person)
        if factor in (Factor.SMS, Factor.EMAIL):
            sent = self._send(visit, factor, holder.enrollments.get(factor))
            return None if sent is None else Pending(factor, sent)
        challenge_id = f"{'push' if factor is Factor.PUSH else 'wac'}-{self.entropy.identifier()}"
        ttl = timedelta(seconds=60) if factor is Factor.PUSH else timedelta(minutes=5)
        holder.issued[challenge_id] = visit.now
        self._emit(
            visit,
            p.ChallengeIssued(
                factor=factor,
                challenge_id=challenge_id,
                channel=CHANNELS.get(factor),
                enrollment_id=holder.enrollments.get(factor),
                expires_at=visit.now + ttl,
                number_match=factor is Factor.PUSH,
                max_attempts=1,
            ),
        )
        return Pending(factor, challenge_id, visit.now + ttl)

    def _send(self, visit: Visit, factor: Factor, enrollment_id: str | None) -> str | None:
        """Issue a code and deliver it through the simulated failover; the challenge id, or
        ``None`` when every provider failed."""
        channel = CHANNELS[factor]
        challenge_id = f"{factor}-{self.entropy.identifier()}"
        policy = TIERS[visit.person.tier]
        self._holder(visit.person).issued[challenge_id] = visit.now
        self._emit(
            visit,
            p.ChallengeIssued(
                factor=factor,
                challenge_id=challenge_id,
                channel=channel,
                enrollment_id=enrollment_id,
                expires_at=visit.now + policy.code_lifetime,
                max_attempts=policy.otp_max_failures,
            ),
        )
        rates = SMS_FAILURE_RATES if factor is Factor.SMS else EMAIL_FAILURE_RATES
        providers = list(rates.items())
        for index, (provider, rate) in enumerate(providers):
            if self._rng.random() >= rate:
                self._sent(visit, factor, challenge_id, provider)
                return challenge_id
            reason, detail = self._rng.choice(FAILURES)
            following = providers[index + 1][0] if index + 1 < len(providers) else None
            self._emit(
                visit,
                p.ChallengeDeliveryFailed(
                    factor=factor,
                    challenge_id=challenge_id,
                    channel=channel,
                    provider=provider,
                    reason=reason,
                    provider_error=detail,
                    failover_provider=following,
                ),
            )
        return None

    def _sent(self, visit: Visit, factor: Factor, challenge_id: str, provider: str) -> None:
        """A gateway took a code: its price for an SMS, then the gateway's delivery report
        (at the same instant: the simulation keeps its events in time order)."""
        channel = CHANNELS[factor]
        sms = factor is Factor.SMS
        country = visit.person.country if sms else None
        price = self._prices.price(channel, provider, country) if sms else None
        self._emit(
            visit,
            p.ChallengeSent(
                factor=factor,
                challenge_id=challenge_id,
                channel=channel,
                provider=provider,
                destination_country=country,
                cost_micros=price.micros if price else None,
                currency=price.currency if price else None,
            ),
        )
        if not sms:
            return
        word = receipt_word(self._receipts)
        status = receipt_status(word)
        assert status is not None  # noqa: S101 - the simulated words are all final
        self._emit(
            visit,
            p.ChallengeDeliveryReported(
                factor=factor,
                challenge_id=challenge_id,
                channel=channel,
                provider=provider,
                delivery_status=status,
                provider_status=word,
                destination_country=country,
            ),
        )

    def answer(self, visit: Visit, pending: Pending, answer: Answer) -> ActionResult:
        factor, holder = pending.factor, self._holder(visit.person)
        if factor is Factor.RECOVERY_CODE:
            return self.redeem_recovery_code(visit, answer)
        challenge_id = pending.reference if factor is not Factor.TOTP else None
        issued = holder.issued.pop(pending.reference, visit.now)
        elapsed = int((visit.now - issued).total_seconds() * 1000)
        enrollment_id = holder.enrollments.get(factor)
        if factor is Factor.PUSH:
            return self._respond(visit, pending, answer, elapsed)
        if answer is Answer.RIGHT:
            previous, holder.sign_count = holder.sign_count, holder.sign_count + 1
            counts: dict[str, Any] = {"sign_count": holder.sign_count}
            counts["previous_sign_count"] = previous
            self._emit(
                visit,
                p.VerificationSucceeded(
                    factor=factor,
                    challenge_id=challenge_id,
                    enrollment_id=enrollment_id,
                    elapsed_ms=elapsed if challenge_id else None,
                    **(counts if factor is Factor.WEBAUTHN else {}),
                ),
            )
            return ActionResult(True)
        reason = WRONG_REASONS.get(factor, "invalid_code")
        counts = {}
        if answer is Answer.CLONED:  # the clone's counter is behind the original's
            reason = "sign_count_regression"
            holder.clone_count = (holder.clone_count or 0) + 1
            counts = {"sign_count": holder.clone_count, "previous_sign_count": holder.sign_count}
        self._emit(
            visit,
            p.VerificationFailed(
                factor=factor,
                reason=reason,
                challenge_id=challenge_id,
                enrollment_id=enrollment_id,
                **counts,
            ),
        )
        return ActionResult(False, reason)

    def _respond(
        self, visit: Visit, pending: Pending, answer: Answer, elapsed: int
    ) -> ActionResult:
        person = visit.person
        phone = next((d for d in person.devices if d.kind == "mobile"), person.devices[0])
        common: dict[str, Any] = {
            "challenge_id": pending.reference,
            "enrollment_id": self._holder(person).enrollments.get(Factor.PUSH),
            "responded_after_ms": elapsed,
            "responder": ClientInfo(
                ip=person.ip, device=Device(id=phone.id, kind=phone.kind, os=phone.os)
            ),
        }
        if answer is Answer.RIGHT:
            self._emit(visit, p.PushApproved(number_matched=True, **common))
            return ActionResult(True)
        reason = "user_rejected" if answer is Answer.REJECT else "number_mismatch"
        matched = None if answer is Answer.REJECT else False
        self._emit(visit, p.PushRejected(reason=reason, number_matched=matched, **common))
        return ActionResult(False, reason)

    def expire(self, visit: Visit, pending: Pending) -> None:
        issued = self._holder(visit.person).issued.pop(pending.reference, visit.now)
        after = int((visit.now - issued).total_seconds() * 1000)
        self._emit(visit, p.PushExpired(challenge_id=pending.reference, expired_after_ms=after))

    def regenerate_recovery_codes(self, visit: Visit) -> None:
        holder = self._holder(visit.person)
        previous, holder.recovery_left = holder.recovery_left, 10
        holder.enrollments[Factor.RECOVERY_CODE] = "recovery"
        self._emit(visit, p.RecoveryRegenerated(code_count=10, previous_codes_invalidated=previous))

    def redeem_recovery_code(self, visit: Visit, answer: Answer) -> ActionResult:
        holder = self._holder(visit.person)
        if answer is Answer.RIGHT and holder.recovery_left > 0:
            holder.recovery_left -= 1
            self._emit(visit, p.RecoverySucceeded(codes_remaining=holder.recovery_left))
            return ActionResult(True)
        self._emit(visit, p.RecoveryFailed(reason="unknown_code"))
        return ActionResult(False, "unknown_code")

    def clone_authenticator(self, person: Person) -> None:
        holder = self._holder(person)
        holder.clone_count = holder.sign_count
