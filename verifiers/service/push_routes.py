"""Push approval over HTTP: enrol a device key, send a number-matching push, relay the
device's signed answer (:mod:`verifiers.push`, :mod:`verifiers.device_keys`).

Enrolment: the app sends an Ed25519 public key as a JWK and confirms with a signature
over the canonical enrolment JSON, so only a device holding the key activates it.
Sign-in: ``send`` returns the number to show; the caller relays the device's signed
answer to ``respond``, and an approval with the right number returns a signed assertion
(``amr``: ``pop``, ``mfa``). Every refusal is recorded as an event. The signed bytes and
the refusals with their statuses: docs/mfa-service.md#push-approval.

(No ``from __future__ import annotations``: FastAPI reads the annotations at run time.)
"""

from typing import Annotated

from fastapi import Depends, FastAPI

from schemas.fields import Factor
from verifiers import push
from verifiers.service.assertions import ACR_MFA, AMR_PUSH
from verifiers.service.clients import ServiceClient
from verifiers.service.errors import ServiceRefusal
from verifiers.service.models import (
    AssertionOut,
    ConfirmedOut,
    PushChallengeOut,
    PushConfirmBody,
    PushEnrollBody,
    PushEnrollmentOut,
    PushRespondBody,
    PushSendBody,
)
from verifiers.service.routing import IdPath, RouteKit, SubjectPath
from verifiers.store import Verdict

PREFIX = "/v1/subjects/{subject}/push"
PUSH = Factor.PUSH
CONFLICT = frozenset({"replayed_answer", "challenge_closed"})
NOT_FOUND = frozenset({"unknown_challenge", "unknown_enrollment", "device_not_enrolled"})
PUSH_WAIT = {"push_pending": 409, "resend_cooldown": 429, "send_limit": 429, "locked_out": 423}


def register(app: FastAPI, kit: RouteKit) -> None:
    parts = kit.parts
    Caller = Annotated[ServiceClient, Depends(kit.caller)]

    def accepted(verdict: Verdict) -> None:
        reason = verdict.reason or "refused"
        recorded = verdict.event is not None  # the ceremony's own event says it
        if not verdict.accepted and reason in CONFLICT:
            raise ServiceRefusal(
                409, reason, "this challenge was already answered", recorded=recorded
            )
        if not verdict.accepted and reason in NOT_FOUND:
            raise ServiceRefusal(404, reason, "no such push challenge or device", recorded=recorded)
        kit.accepted(verdict)

    @app.post(f"{PREFIX}/enrollments", status_code=201, tags=["push"])
    def push_enroll(
        subject: SubjectPath, client: Caller, body: PushEnrollBody
    ) -> PushEnrollmentOut:
        """Register a device's public key; pending until the device proves it holds it."""
        request = kit.ceremony(client, subject, body)
        kit.allowed(request, PUSH)
        try:
            enrollment = push.begin_enrollment(
                parts.store, request, device_key=body.device_key, device_name=body.device_name
            )
        except push.DeviceKeyError as error:
            raise ServiceRefusal(422, "invalid_device_key", str(error)) from None
        return PushEnrollmentOut(enrollment_id=enrollment.enrollment_id, key_id=enrollment.key_id)

    @app.post(f"{PREFIX}/enrollments/{{enrollment_id}}/confirm", tags=["push"])
    def push_confirm(
        subject: SubjectPath, enrollment_id: IdPath, client: Caller, body: PushConfirmBody
    ) -> ConfirmedOut:
        """Activate a device with its signature of the enrollment proof."""
        request = kit.ceremony(client, subject, body)
        kit.known(client, subject)
        kit.allowed(request, PUSH)
        accepted(
            push.confirm_enrollment(
                parts.store, request, enrollment_id=enrollment_id, signature=body.signature
            )
        )
        return ConfirmedOut(enrollment_id=enrollment_id)

    @app.post(f"{PREFIX}/send", status_code=201, tags=["push"])
    def push_send(
        subject: SubjectPath, client: Caller, body: PushSendBody | None = None
    ) -> PushChallengeOut:
        """Start a number-matching push to the subject's latest device."""
        context = body or PushSendBody()
        request = kit.ceremony(client, subject, context)
        kit.known(client, subject)
        kit.allowed(request, PUSH)
        enrollment_id = push.active_enrollment(
            parts.store, tenant=request.tenant, subject=request.subject
        )
        if enrollment_id is None:
            raise ServiceRefusal(404, "not_enrolled", "the subject has no active push device")
        try:
            challenge = push.send_push(
                parts.store, request, enrollment_id=enrollment_id, location=context.location
            )
        except push.PushRefused as refused:
            wait = refused.retry_after
            headers = {"Retry-After": str(wait)} if wait is not None else {}
            extra: dict[str, object] = {"retry_after": wait} if wait is not None else {}
            if refused.locked_until is not None:
                extra["locked_until"] = refused.locked_until.isoformat()
            raise ServiceRefusal(
                PUSH_WAIT.get(refused.reason, 403),
                refused.reason,
                "no push was sent",
                headers=headers,
                extra=extra,
            ) from None
        return PushChallengeOut(
            challenge_id=challenge.challenge_id,
            enrollment_id=enrollment_id,
            number=challenge.number,
            expires_at=challenge.expires_at,
            application=challenge.application,
            location=challenge.location,
        )

    @app.post(f"{PREFIX}/respond", tags=["push"])
    def push_respond(subject: SubjectPath, client: Caller, body: PushRespondBody) -> AssertionOut:
        """Relay the device's signed answer; an approval with the right number returns a
        signed MFA assertion."""
        request = kit.ceremony(client, subject, body)
        kit.known(client, subject)
        kit.allowed(request, PUSH)
        answer = push.SignedAnswer(
            challenge_id=body.challenge_id,
            decision=push.Decision(body.decision),
            number=body.number,
            signature=body.signature,
            key_id=body.key_id,
        )
        accepted(push.respond_signed(parts.store, request, answer=answer, responder=request.client))
        return kit.assertion(client, request, AMR_PUSH, ACR_MFA)
