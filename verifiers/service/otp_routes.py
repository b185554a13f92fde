"""One-time codes by SMS, voice call and e-mail over HTTP (:mod:`verifiers.otp`).

Enrol a destination (pending), send it a code, confirm the code (active); then, at sign-in,
send a code and verify it for a signed assertion (``amr``: ``sms``, ``tel`` or nothing
but ``mfa`` for e-mail, see :mod:`verifiers.service.assertions`).

The library's refusals to send keep their reason as ``error``: ``resend_cooldown``,
``send_limit`` and ``country_cap`` (the tenant's daily cap for the destination's country,
``docs/sms-cost.md``) are 429 and ``locked_out`` 423, each with ``Retry-After`` when the library
says when to ask again; ``delivery_failed`` (no provider took the message) is 502; a channel
no provider serves is 503 ``channel_unavailable``.

Providers' delivery receipts (``POST /v1/delivery-receipts``, :mod:`verifiers.receipts`)
come from the caller's service, with its credential: the tenant is the credential's.

(No ``from __future__ import annotations``: FastAPI reads the annotations at run time.)
"""

from typing import Annotated, Literal

from fastapi import Depends, FastAPI

from schemas.fields import Factor
from verifiers import otp, receipts
from verifiers.otp import CHANNELS, InvalidDestination
from verifiers.service.assertions import ACR_MFA, AMR_EMAIL, AMR_SMS, AMR_VOICE
from verifiers.service.clients import ServiceClient
from verifiers.service.errors import ServiceRefusal
from verifiers.service.models import (
    AssertionOut,
    CodeBody,
    ConfirmedOut,
    DeliveryReceiptBody,
    DeliveryReceiptOut,
    OtpEnrollBody,
    OtpEnrollmentOut,
    OtpSendBody,
    OtpSentOut,
    OtpVerifyBody,
)
from verifiers.service.routing import IdPath, RouteKit, SubjectPath
from verifiers.store import Verdict

PREFIX = "/v1/subjects/{subject}/otp"
AMR = {Factor.SMS: AMR_SMS, Factor.VOICE: AMR_VOICE, Factor.EMAIL: AMR_EMAIL}
TOO_SOON = frozenset({"resend_cooldown", "send_limit", "country_cap"})
NOT_FOUND = frozenset({"not_enrolled", "unknown_enrollment", "unknown_challenge"})


def factor_of(identifier: str) -> Factor | None:
    """The factor an id of :mod:`verifiers.otp` starts with (``sms-…``), if any."""
    prefix = identifier.partition("-")[0]
    return Factor(prefix) if prefix in {"sms", "voice", "email"} else None


def register(app: FastAPI, kit: RouteKit) -> None:
    parts = kit.parts
    Caller = Annotated[ServiceClient, Depends(kit.caller)]

    def accepted(verdict: Verdict) -> None:
        if not verdict.accepted and verdict.reason in NOT_FOUND:
            raise ServiceRefusal(
                404,
                verdict.reason,
                "no such enrollment or code was sent",
                recorded=verdict.event is not None,
            )
        kit.accepted(verdict)

    @app.post(f"{PREFIX}/enrollments", status_code=201, tags=["sms, voice, e-mail"])
    def otp_enroll(subject: SubjectPath, client: Caller, body: OtpEnrollBody) -> OtpEnrollmentOut:
        """Enrol a phone number (sms, voice) or e-mail address; it is pending until a code
        sent to it is confirmed (send with its ``enrollment_id``, then confirm)."""
        request = kit.ceremony(client, subject, body)
        factor = Factor(body.factor)
        kit.allowed(request, factor)
        try:
            enrollment = otp.begin_enrollment(
                parts.store,
                request,
                factor=factor,
                destination=body.destination,
                region=body.region,
            )
        except InvalidDestination as error:
            raise ServiceRefusal(422, "invalid_destination", str(error)) from None
        return OtpEnrollmentOut(
            enrollment_id=enrollment.enrollment_id,
            factor=body.factor,
            masked_destination=enrollment.masked_destination,
            destination_country=enrollment.destination_country,
        )

    @app.post(f"{PREFIX}/enrollments/{{enrollment_id}}/confirm", tags=["sms, voice, e-mail"])
    def otp_confirm(
        subject: SubjectPath, enrollment_id: IdPath, client: Caller, body: CodeBody
    ) -> ConfirmedOut:
        """Activate a pending enrollment with the code sent to it."""
        request = kit.ceremony(client, subject, body)
        kit.known(client, subject)
        factor = factor_of(enrollment_id)
        if factor is None:
            raise ServiceRefusal(404, "unknown_enrollment", "no such enrollment")
        kit.allowed(request, factor)
        accepted(
            otp.confirm_enrollment(
                parts.store, request, enrollment_id=enrollment_id, code=body.code
            )
        )
        return ConfirmedOut(enrollment_id=enrollment_id)

    @app.post(f"{PREFIX}/send", tags=["sms, voice, e-mail"])
    def otp_send(subject: SubjectPath, client: Caller, body: OtpSendBody) -> OtpSentOut:
        """Send a new code (it supersedes the subject's open one): an enrollment code to a
        pending ``enrollment_id``, else a sign-in code to the latest active destination."""
        request = kit.ceremony(client, subject, body)
        kit.known(client, subject)
        factor = Factor(body.factor)
        kit.allowed(request, factor)
        delivery = parts.delivery
        if delivery is None or not delivery.supports(CHANNELS[factor]):
            raise ServiceRefusal(
                503, "channel_unavailable", f"no delivery provider is configured for {factor}"
            )
        result = otp.send_code(
            parts.store,
            request,
            factor=factor,
            delivery=delivery,
            enrollment_id=body.enrollment_id,
            charges=parts.charges,
        )
        if not result.sent:
            _send_refused(result)
        assert result.challenge_id is not None and result.expires_at is not None  # noqa: S101
        purpose = "enroll" if result.purpose == "enroll" else "authenticate"
        return OtpSentOut(
            challenge_id=result.challenge_id,
            factor=body.factor,
            purpose=purpose,
            expires_at=result.expires_at,
            resend=result.resend,
        )

    @app.post("/v1/delivery-receipts", status_code=202, tags=["sms, voice, e-mail"])
    def delivery_receipt(client: Caller, body: DeliveryReceiptBody) -> DeliveryReceiptOut:
        """A provider's delivery receipt for a message it accepted for the caller's tenant:
        recorded as ``mfa.challenge.delivery_reported`` (once per status); an intermediate
        status (``queued``, ``sent``) is answered ``recorded: false``."""
        result = receipts.record_receipt(
            parts.store,
            tenant=client.tenant,
            provider=body.provider,
            provider_message_id=body.provider_message_id,
            status=body.status,
            now=parts.clock(),
            reported_at=body.reported_at,
        )
        if result.reason == "unknown_message":
            raise ServiceRefusal(404, "unknown_message", "no message of the tenant has that id")
        if result.reason == "unknown_status":
            raise ServiceRefusal(422, "unknown_status", "a delivery status no provider uses")
        return DeliveryReceiptOut(
            recorded=result.recorded,
            reason=_QUIET.get(result.reason or ""),
            status=result.status.value if result.status is not None else None,
            challenge_id=result.challenge_id,
        )

    @app.post(f"{PREFIX}/verify", tags=["sms, voice, e-mail"])
    def otp_verify(subject: SubjectPath, client: Caller, body: OtpVerifyBody) -> AssertionOut:
        """Check a sign-in code; returns a signed MFA assertion."""
        request = kit.ceremony(client, subject, body)
        kit.known(client, subject)
        factor = factor_of(body.challenge_id)
        if factor is None:
            raise ServiceRefusal(404, "unknown_challenge", "no such code was sent")
        kit.allowed(request, factor)
        accepted(
            otp.verify_code(parts.store, request, challenge_id=body.challenge_id, code=body.code)
        )
        return kit.assertion(client, request, AMR[factor], ACR_MFA)


_QUIET: dict[str, Literal["not_final", "duplicate"]] = {
    "not_final": "not_final",
    "duplicate": "duplicate",
}


def _send_refused(result: otp.SendResult) -> None:
    reason = result.reason or "refused"
    recorded = bool(result.events)  # the library's own events say it
    headers = {"Retry-After": str(result.retry_after)} if result.retry_after is not None else {}
    extra: dict[str, object] = (
        {"retry_after": result.retry_after} if result.retry_after is not None else {}
    )
    if result.locked_until is not None:
        extra["locked_until"] = result.locked_until.isoformat()
    if reason in TOO_SOON:
        raise ServiceRefusal(
            429,
            reason,
            "too soon or too often: ask again later",
            headers=headers,
            extra=extra,
            recorded=recorded,
        )
    if reason == "locked_out":
        raise ServiceRefusal(
            423,
            reason,
            "the subject or factor is locked",
            headers=headers,
            extra=extra,
            recorded=recorded,
        )
    if reason in NOT_FOUND:
        raise ServiceRefusal(
            404, reason, "the subject has no such destination enrolled", recorded=recorded
        )
    if reason == "delivery_failed":
        raise ServiceRefusal(
            502, reason, "no delivery provider accepted the message", recorded=recorded
        )
    raise ServiceRefusal(403, reason, "no code was sent", recorded=recorded)
