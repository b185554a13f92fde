"""WebAuthn over HTTP: registration and authentication, each an options call and a verify
call taking the browser's JSON as py_webauthn parses it (:mod:`verifiers.webauthn`).

A successful authentication returns a signed assertion whose ``amr`` says what kind of key
answered (RFC 8176): ``hwk`` for a device-bound credential (not backup eligible: a security
key, or a platform authenticator that keeps the key on the device), ``swk`` for a synced
passkey (backup eligible: the key leaves the device for the vendor's cloud), and ``mfa``.
With ``none`` attestation the device-bound flag is the authenticator's own word, not a
certified hardware claim. User verification happened or not, but the library does not
learn *how* (fingerprint, face, PIN), so ``fpt``/``face`` are never claimed.

(No ``from __future__ import annotations``: FastAPI reads the annotations at run time.)
"""

import json
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from schemas.fields import Factor
from verifiers import webauthn
from verifiers.service.assertions import ACR_MFA, AMR_HARDWARE_KEY, AMR_SOFTWARE_KEY
from verifiers.service.clients import ServiceClient
from verifiers.service.errors import ServiceRefusal
from verifiers.service.models import (
    AssertionOut,
    ConfirmedOut,
    WebAuthnAuthenticationBody,
    WebAuthnAuthenticationOptionsOut,
    WebAuthnCredentialBody,
    WebAuthnRegistrationBody,
    WebAuthnRegistrationOptionsOut,
)
from verifiers.service.routing import RouteKit, SubjectPath
from verifiers.store import Verdict

WEBAUTHN = Factor.WEBAUTHN
PREFIX = "/v1/subjects/{subject}/webauthn"


def register(app: FastAPI, kit: RouteKit) -> None:
    parts = kit.parts
    config = parts.config
    Caller = Annotated[ServiceClient, Depends(kit.caller)]

    def accepted(verdict: Verdict) -> None:
        if not verdict.accepted and verdict.reason == "unknown_challenge":
            raise ServiceRefusal(404, "unknown_challenge", "no such WebAuthn challenge")
        kit.accepted(verdict)

    @app.post(f"{PREFIX}/registrations/options", status_code=201, tags=["webauthn"])
    def webauthn_registration_options(
        subject: SubjectPath, client: Caller, body: WebAuthnRegistrationBody | None = None
    ) -> WebAuthnRegistrationOptionsOut:
        """Start registering a security key or passkey: options for
        ``navigator.credentials.create()`` (the subject's keys are excluded)."""
        context = body or WebAuthnRegistrationBody()
        request = kit.ceremony(client, subject, context)
        kit.allowed(request, WEBAUTHN)
        options = webauthn.begin_registration(
            parts.store,
            request,
            rp_id=config.rp_id,
            rp_name=config.webauthn_rp_name,
            user_name=context.user_name or subject,
            user_display_name=context.user_display_name or context.user_name or subject,
            user_verification=context.user_verification,
        )
        return WebAuthnRegistrationOptionsOut(
            challenge_id=options.challenge_id,
            enrollment_id=options.enrollment_id,
            options=json.loads(options.options_json),
            expires_at=options.expires_at,
        )

    @app.post(f"{PREFIX}/registrations/verify", tags=["webauthn"])
    def webauthn_registration_verify(
        subject: SubjectPath, client: Caller, body: WebAuthnCredentialBody
    ) -> ConfirmedOut:
        """Verify the browser's ``navigator.credentials.create()`` response; the key is
        active from now on."""
        request = kit.ceremony(client, subject, body)
        kit.known(client, subject)
        kit.allowed(request, WEBAUTHN)
        verdict = webauthn.finish_registration(
            parts.store,
            request,
            challenge_id=body.challenge_id,
            credential_json=json.dumps(body.credential),
            expected_origin=list(config.origins),
            rp_id=config.rp_id,
        )
        accepted(verdict)
        enrollment_id = getattr(verdict.event.data, "enrollment_id", "") if verdict.event else ""
        return ConfirmedOut(enrollment_id=enrollment_id)

    @app.post(f"{PREFIX}/authentications/options", status_code=201, tags=["webauthn"])
    def webauthn_authentication_options(
        subject: SubjectPath, client: Caller, body: WebAuthnAuthenticationBody | None = None
    ) -> WebAuthnAuthenticationOptionsOut:
        """A challenge any of the subject's active keys can answer: options for
        ``navigator.credentials.get()``."""
        context = body or WebAuthnAuthenticationBody()
        request = kit.ceremony(client, subject, context)
        kit.known(client, subject)
        kit.allowed(request, WEBAUTHN)
        try:
            options = webauthn.begin_authentication(
                parts.store,
                request,
                rp_id=config.rp_id,
                user_verification=context.user_verification,
            )
        except webauthn.NotEnrolledError:
            raise ServiceRefusal(
                404, "not_enrolled", "the subject has no active WebAuthn credential"
            ) from None
        return WebAuthnAuthenticationOptionsOut(
            challenge_id=options.challenge_id,
            options=json.loads(options.options_json),
            expires_at=options.expires_at,
        )

    @app.post(f"{PREFIX}/authentications/verify", tags=["webauthn"])
    def webauthn_authentication_verify(
        subject: SubjectPath, client: Caller, body: WebAuthnCredentialBody
    ) -> AssertionOut:
        """Verify the browser's ``navigator.credentials.get()`` response; returns a signed
        MFA assertion (``amr``: ``hwk`` or ``swk``, and ``mfa``)."""
        request = kit.ceremony(client, subject, body)
        kit.known(client, subject)
        kit.allowed(request, WEBAUTHN)
        verdict = webauthn.finish_authentication(
            parts.store,
            request,
            challenge_id=body.challenge_id,
            credential_json=json.dumps(body.credential),
            expected_origin=list(config.origins),
            rp_id=config.rp_id,
        )
        accepted(verdict)
        data: Any = verdict.event.data if verdict.event else None
        synced = bool(
            data is not None and data.authenticator and data.authenticator.backup_eligible
        )
        amr = AMR_SOFTWARE_KEY if synced else AMR_HARDWARE_KEY
        return kit.assertion(client, request, amr, ACR_MFA)
