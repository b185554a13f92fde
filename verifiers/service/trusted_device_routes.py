"""Trusted devices over HTTP (remember-me, :mod:`verifiers.trusted_devices`).

**Trust.** Right after a successful step-up the caller sends the MFA assertion the service
just returned, with the device binding (``device_id``) and an optional name; the service
checks the assertion as a relying party would (its own signature, issuer, the caller's
audience, ``acr`` mfa, at most :data:`STEP_UP_MAX_AGE` old) and that it names this subject
of the caller's tenant, and answers with the device token, once. One assertion trusts one
device, once (``assertion_used``, 409). A recovery code's assertion trusts nothing.

**Use.** The caller presents the token and the binding to ``POST /v1/assess``.

**List and revoke.** The subject's trusts (never their tokens); revoking one or all ends
them at once (``device.revoked``, reason ``subject_request``, by the calling client), even while
the subject is locked.

(No ``from __future__ import annotations``: FastAPI reads the annotations at run time.)
"""

import uuid
from dataclasses import asdict
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, FastAPI, Response

from verifiers import trusted_devices
from verifiers.service.assertions import ACR_MFA
from verifiers.service.clients import ServiceClient
from verifiers.service.errors import ServiceRefusal
from verifiers.service.middleware import MfaRefused, MfaRequirement, StaticKeys, verify_assertion
from verifiers.service.models import (
    DevicesRevokedOut,
    TrustDeviceBody,
    TrustedDeviceIssuedOut,
    TrustedDeviceOut,
    TrustedDevicesOut,
)
from verifiers.service.routing import IdPath, RouteKit, SubjectPath
from verifiers.store import Request as CeremonyRequest

PREFIX = "/v1/subjects/{subject}/trusted-devices"
STEP_UP_MAX_AGE = timedelta(minutes=5)
"""How recent the step-up an assertion proves must be to trust the device."""
TRUST_REFUSED = {"tier_not_trusted": 403, "locked_out": 423, "assertion_used": 409}
REVOKED_BY_SUBJECT = "subject_request"


def register(app: FastAPI, kit: RouteKit) -> None:
    parts = kit.parts
    Caller = Annotated[ServiceClient, Depends(kit.caller)]

    def revoke(client: ServiceClient, subject: str, trust_id: str | None) -> int:
        # not kit.ceremony: a subject the stream locked may still revoke its devices
        kit.known(client, subject)
        request = CeremonyRequest(
            tenant=client.tenant,
            subject=subject,
            correlationid=str(uuid.uuid4()),
            now=parts.clock(),
            application=client.label,
        )
        return trusted_devices.revoke(
            parts.store,
            request,
            trust_id=trust_id,
            reason=REVOKED_BY_SUBJECT,
            revoked_by=f"client:{client.client_id}",
        )

    @app.post(PREFIX, status_code=201, tags=["trusted devices"])
    def device_trust(
        subject: SubjectPath, client: Caller, body: TrustDeviceBody
    ) -> TrustedDeviceIssuedOut:
        """Trust the device the subject just stepped up on; its token is shown once."""
        request = kit.ceremony(client, subject, body)
        kit.known(client, subject)
        requirement = MfaRequirement(
            audience=client.audience,
            issuer=parts.config.issuer,
            max_age=STEP_UP_MAX_AGE,
            acr=(ACR_MFA,),
        )
        try:
            claims = verify_assertion(
                body.assertion,
                StaticKeys(parts.keys.published()),
                requirement,
                now=request.now,
            )
        except MfaRefused as refused:
            raise ServiceRefusal(403, "invalid_assertion", refused.description) from None
        if claims.get("sub") != subject or claims.get("tenant") != client.tenant:
            raise ServiceRefusal(
                403, "invalid_assertion", "the MFA assertion is for another subject"
            )
        trusted = trusted_devices.trust(
            parts.store,
            request,
            device_id=body.device_id,
            device_name=body.device_name,
            assertion_id=str(claims["jti"]),
        )
        if trusted.token is None or trusted.trust_id is None or trusted.expires_at is None:
            reason = trusted.reason or "refused"
            raise ServiceRefusal(
                TRUST_REFUSED.get(reason, 403), reason, "the device was not trusted"
            )
        return TrustedDeviceIssuedOut(
            trust_id=trusted.trust_id, device_token=trusted.token, expires_at=trusted.expires_at
        )

    @app.get(PREFIX, tags=["trusted devices"])
    def device_list(subject: SubjectPath, client: Caller) -> TrustedDevicesOut:
        """The subject's trusted devices, revoked and expired ones too (never a token)."""
        kit.known(client, subject)
        now = parts.clock()
        found = trusted_devices.list_devices(parts.store, tenant=client.tenant, subject=subject)
        return TrustedDevicesOut(
            devices=[
                TrustedDeviceOut.model_validate({**asdict(d), "status": d.status(now)})
                for d in found
            ]
        )

    @app.delete(f"{PREFIX}/{{trust_id}}", status_code=204, tags=["trusted devices"])
    def device_revoke(subject: SubjectPath, trust_id: IdPath, client: Caller) -> Response:
        """Stop trusting one device, at once."""
        ended = revoke(client, subject, trust_id)
        if not ended:
            raise ServiceRefusal(
                404, "unknown_trusted_device", "the subject has no such trusted device in force"
            )
        return Response(status_code=204)

    @app.delete(PREFIX, tags=["trusted devices"])
    def device_revoke_all(subject: SubjectPath, client: Caller) -> DevicesRevokedOut:
        """Stop trusting every device of the subject, at once."""
        ended = revoke(client, subject, None)
        return DevicesRevokedOut(revoked=ended)
