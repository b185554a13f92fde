"""The real ceremonies: a :class:`~factorstream.simulator.actions.Service` on the verifiers.

Each simulated person holds what a real one would: a TOTP seed (read from the enrollment's
``otpauth://`` URI), a software WebAuthn authenticator (:mod:`factorstream.softauthn`), a
phone and a mailbox (the :class:`~factorstream.simulator.delivery.Inbox`), a push app and a
printed list of recovery codes. Every step goes through the verifier store (lockout gate,
outbox), so the events are exactly what a service using the verifiers would publish. SMS
sends are priced and held to the daily country caps (``charges``), and each one a gateway
accepted gets its delivery report (:mod:`verifiers.receipts`).
"""

from __future__ import annotations

import copy
import random

import pyotp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from factorstream.simulator.actions import ActionResult, Answer, Pending, Visit
from factorstream.simulator.delivery import Inbox, receipt_word
from factorstream.simulator.lifecycle_services import (
    VerifierLifecycle,
    administrators_key,
)
from factorstream.simulator.lifecycle_services import ceremony_request as _request
from factorstream.simulator.organisation import Person
from factorstream.simulator.wallet import Wallet, recovery_guess, totp_code, typed_code
from factorstream.softauthn import SoftAuthenticator
from schemas.fields import Channel, Client, Device, Factor
from schemas.fields import Outcome as Result
from schemas.payloads import (
    Authenticator,
    EnrollmentCompleted,
    EnrollmentFailed,
    EnrollmentStarted,
    LoginAttempted,
    MfaRequired,
)
from verifiers import otp, push, receipts, recovery_codes, totp, webauthn
from verifiers.delivery import FailoverDelivery
from verifiers.destinations import PHONE_FACTORS
from verifiers.sendcaps import SendCharges
from verifiers.store import Request, Verdict, VerifierStore

RP_NAME, ISSUER = "Northwind", "Northwind"
RP_ID = "login.example.com"
ORIGIN = f"https://{RP_ID}"
PUSH_APP = Authenticator(name="Northwind Authenticator")
OTP_FACTORS = (Factor.SMS, Factor.EMAIL)


class VerifierService(VerifierLifecycle):
    """Steps carried out by the real verifiers (see the module docstring)."""

    def __init__(
        self,
        store: VerifierStore,
        *,
        delivery: FailoverDelivery,
        inbox: Inbox,
        seed: int,
        charges: SendCharges | None = None,
        admins_key: Ed25519PrivateKey | None = None,
    ) -> None:
        """``admins_key`` signs the administrators' control events (default: one drawn
        from the seed; a pipeline that should accept them needs the key it trusts)."""
        self.store = store
        self.delivery = delivery
        self.inbox = inbox
        self.charges = charges
        self._rng = random.Random(f"ceremonies/{seed}")  # noqa: S311 - a reproducible simulation
        self._receipts = random.Random(f"receipts/{seed}")  # noqa: S311 - likewise
        self._wallets: dict[str, Wallet] = {}
        self._lifecycle_rng = random.Random(f"lifecycle/{seed}")  # noqa: S311 - likewise
        self._admins = admins_key or administrators_key(seed)

    def _send_code(
        self, request: Request, factor: Factor, enrollment_id: str | None = None
    ) -> otp.SendResult:
        """A code sent (priced and capped), and the gateway's delivery report of it (at the
        same instant: the simulation keeps each person's events in time order)."""
        result = otp.send_code(
            self.store,
            request,
            factor=factor,
            delivery=self.delivery,
            enrollment_id=enrollment_id,
            charges=self.charges,
        )
        delivered = next((a for a in reversed(result.attempts) if a.delivered), None)
        if factor in PHONE_FACTORS and delivered is not None and delivered.message_id:
            receipts.record_receipt(
                self.store,
                tenant=request.tenant,
                provider=delivered.provider,
                provider_message_id=delivered.message_id,
                status=receipt_word(self._receipts),
                now=request.now,
            )
        return result

    def wallet(self, person: Person) -> Wallet:
        return self._wallets.setdefault(person.subject, Wallet())

    def enrolled(self, person: Person, factor: Factor) -> bool:
        return factor in self.wallet(person).enrolled

    # -- password and policy -------------------------------------------------------------

    def login(self, visit: Visit, *, ok: bool, mfa_required: bool | None) -> ActionResult:
        with self.store.step(_request(visit), factor=None) as step:
            if step.lockout.locked:
                reason: str | None = "locked_out"
            else:
                reason = None if ok else "invalid_password"
            step.emit(
                LoginAttempted(
                    outcome=Result.SUCCESS if reason is None else Result.FAILURE,
                    method="password",
                    reason=reason,
                    mfa_required=mfa_required if reason is None else None,
                )
            )
        return ActionResult(reason is None, reason)

    def require_mfa(self, visit: Visit, decision: MfaRequired) -> None:
        with self.store.step(_request(visit), factor=None, gated=False) as step:
            step.emit(decision)

    # -- enrollment ----------------------------------------------------------------------

    def begin_enrollment(self, visit: Visit, factor: Factor) -> Pending | None:
        request, person, wallet = _request(visit), visit.person, self.wallet(visit.person)
        if factor is Factor.TOTP:
            started = totp.begin_enrollment(
                self.store, request, account_name=person.email, issuer=ISSUER
            )
            wallet.pending[started.enrollment_id] = pyotp.parse_uri(started.provisioning_uri).secret
            return Pending(factor, started.enrollment_id)
        if factor is Factor.WEBAUTHN:
            options = webauthn.begin_registration(
                self.store,
                request,
                rp_id=RP_ID,
                rp_name=RP_NAME,
                user_name=person.email,
                user_display_name=person.subject,
            )
            wallet.pending[options.challenge_id] = options.options_json
            return Pending(factor, options.challenge_id, options.expires_at)
        if factor is Factor.PUSH:
            enrollment_id = f"push-{self.store.entropy.identifier()}"
            with self.store.step(request, factor=factor, gated=False) as step:
                step.emit(
                    EnrollmentStarted(
                        factor=factor, enrollment_id=enrollment_id, channel=Channel.PUSH
                    )
                )
            return Pending(factor, enrollment_id)
        if factor in OTP_FACTORS:
            destination = person.phone if factor is Factor.SMS else person.email
            if destination is None:
                raise ValueError(f"{person.subject} has no destination for {factor}")
            pending = otp.begin_enrollment(
                self.store, request, factor=factor, destination=destination
            )
            sent = self._send_code(request, factor, pending.enrollment_id)
            return Pending(factor, pending.enrollment_id) if sent.sent else None
        raise ValueError(f"cannot enroll {factor}")

    def finish_enrollment(self, visit: Visit, pending: Pending, answer: Answer) -> ActionResult:
        request, person, wallet = _request(visit), visit.person, self.wallet(visit.person)
        factor, reference = pending.factor, pending.reference
        if factor is Factor.TOTP:
            generator = pyotp.TOTP(wallet.pending[reference])
            code = totp_code(generator, visit.now, answer, self._rng)
            verdict = totp.confirm_enrollment(
                self.store, request, enrollment_id=reference, code=code
            )
            if verdict.accepted:
                wallet.totp = generator
        elif factor is Factor.WEBAUTHN:
            response = wallet.authenticator.create(
                wallet.pending.pop(reference), ORIGIN, user_verified=answer is Answer.RIGHT
            )
            verdict = webauthn.finish_registration(
                self.store,
                request,
                challenge_id=reference,
                credential_json=response,
                expected_origin=ORIGIN,
                rp_id=RP_ID,
            )
        elif factor is Factor.PUSH:
            verdict = self._push_enrolled(visit, reference, answer)
            if verdict.accepted:
                wallet.push_enrollment = reference
        else:
            destination = person.phone if factor is Factor.SMS else person.email
            code = typed_code(self.inbox.code_for(destination or ""), answer, self._rng)
            verdict = otp.confirm_enrollment(
                self.store, request, enrollment_id=reference, code=code
            )
        if verdict.accepted:
            wallet.enrolled.add(factor)
        return ActionResult(verdict.accepted, verdict.reason)

    def _push_enrolled(self, visit: Visit, enrollment_id: str, answer: Answer) -> Verdict:
        with self.store.step(_request(visit), factor=Factor.PUSH, gated=False) as step:
            if answer is Answer.RIGHT:
                payload: EnrollmentCompleted | EnrollmentFailed = EnrollmentCompleted(
                    factor=Factor.PUSH,
                    enrollment_id=enrollment_id,
                    channel=Channel.PUSH,
                    authenticator=PUSH_APP,
                )
                return Verdict(True, None, step.emit(payload))
            failed = EnrollmentFailed(
                factor=Factor.PUSH, enrollment_id=enrollment_id, reason="device_not_registered"
            )
            return Verdict(False, "device_not_registered", step.emit(failed))

    # -- authentication ------------------------------------------------------------------

    def challenge(self, visit: Visit, factor: Factor) -> Pending | None:
        request, wallet = _request(visit), self.wallet(visit.person)
        if factor in (Factor.TOTP, Factor.RECOVERY_CODE):
            return Pending(factor, str(factor))  # nothing is sent: the person has the secret
        if factor is Factor.WEBAUTHN:
            options = webauthn.begin_authentication(self.store, request, rp_id=RP_ID)
            wallet.pending[options.challenge_id] = options.options_json
            return Pending(factor, options.challenge_id, options.expires_at)
        if factor is Factor.PUSH:
            try:
                sent = push.send_push(
                    self.store,
                    request,
                    enrollment_id=wallet.push_enrollment,
                    location=visit.person.country,
                )
            except push.PushRefused:
                return None  # locked: no prompt reaches the phone
            wallet.pending[sent.challenge_id] = sent.number
            return Pending(factor, sent.challenge_id, sent.expires_at)
        result = self._send_code(request, factor)
        if not result.sent or result.challenge_id is None:
            return None
        return Pending(factor, result.challenge_id, result.expires_at)

    def answer(self, visit: Visit, pending: Pending, answer: Answer) -> ActionResult:
        request, person, wallet = _request(visit), visit.person, self.wallet(visit.person)
        factor, reference = pending.factor, pending.reference
        if factor is Factor.TOTP:
            if wallet.totp is None:
                raise ValueError(f"{person.subject} holds no TOTP seed")
            code = totp_code(wallet.totp, visit.now, answer, self._rng)
            verdict = totp.verify(self.store, request, code=code)
        elif factor is Factor.RECOVERY_CODE:
            return self.redeem_recovery_code(visit, answer)
        elif factor is Factor.WEBAUTHN:
            options = wallet.pending.pop(reference)
            device = wallet.authenticator
            if answer is Answer.CLONED and wallet.clone is not None:
                device = SoftAuthenticator(credentials={wallet.clone.credential_id: wallet.clone})
            response = device.get(options, ORIGIN, user_verified=answer is not Answer.WRONG)
            verdict = webauthn.finish_authentication(
                self.store,
                request,
                challenge_id=reference,
                credential_json=response,
                expected_origin=ORIGIN,
                rp_id=RP_ID,
            )
        elif factor is Factor.PUSH:
            verdict = self._respond(visit, reference, answer)
        else:
            destination = person.phone if factor is Factor.SMS else person.email
            code = typed_code(self.inbox.code_for(destination or ""), answer, self._rng)
            verdict = otp.verify_code(self.store, request, challenge_id=reference, code=code)
        return ActionResult(verdict.accepted, verdict.reason)

    def _respond(self, visit: Visit, challenge_id: str, answer: Answer) -> Verdict:
        number = self.wallet(visit.person).pending.pop(challenge_id, "00")
        if answer is Answer.WRONG:
            number = f"{(int(number) - 10 + 1 + self._rng.randrange(88)) % 90 + 10}"
        person = visit.person
        phone = next((d for d in person.devices if d.kind == "mobile"), person.devices[0])
        return push.respond(
            self.store,
            _request(visit),
            challenge_id=challenge_id,
            decision=push.Decision.REJECT if answer is Answer.REJECT else push.Decision.APPROVE,
            number=number,
            responder=_client(person.ip, phone.id, phone.kind, phone.os),
        )

    def expire(self, visit: Visit, pending: Pending) -> None:
        self.wallet(visit.person).pending.pop(pending.reference, None)
        push.expire(self.store, _request(visit), challenge_id=pending.reference)

    # -- recovery codes and attacker tools -------------------------------------------------

    def regenerate_recovery_codes(self, visit: Visit) -> None:
        wallet = self.wallet(visit.person)
        wallet.recovery_codes = recovery_codes.regenerate(self.store, _request(visit))
        wallet.enrolled.add(Factor.RECOVERY_CODE)

    def redeem_recovery_code(self, visit: Visit, answer: Answer) -> ActionResult:
        wallet = self.wallet(visit.person)
        if answer is Answer.RIGHT and wallet.recovery_codes:
            code = wallet.recovery_codes.pop(0)
        else:
            code = recovery_guess(self._rng)
        verdict = recovery_codes.redeem(self.store, _request(visit), code=code)
        return ActionResult(verdict.accepted, verdict.reason)

    def clone_authenticator(self, person: Person) -> None:
        wallet = self.wallet(person)
        credentials = list(wallet.authenticator.credentials.values())
        wallet.clone = copy.deepcopy(credentials[-1]) if credentials else None


def _client(ip: str, device_id: str, kind: str, os: str) -> Client:
    return Client(ip=ip, device=Device(id=device_id, kind=kind, os=os))
