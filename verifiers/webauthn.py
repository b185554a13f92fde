"""WebAuthn (FIDO2 security keys, passkeys) with py_webauthn: register, then authenticate.

* Challenges live server-side (``challenges``), expire and are **single use**: any
  attempt, good or bad, closes the challenge it answers.
* Public keys are encrypted at rest, bound to their enrollment row; the credential ID is
  kept in clear (base64url), as it is how an assertion finds its enrollment.
* py_webauthn verifies. When it refuses, :func:`_explain_assertion` and
  :func:`_explain_attestation` work out *what* failed from the response itself, never
  from exception messages: the signature first (a forged response is ``bad_signature``
  whatever it claims), then py_webauthn's checks in its order. A failure they cannot
  name is ``invalid_response`` (assertion) or ``attestation_invalid`` (registration).
* A sign counter that does not move forward while either value is non-zero is a
  ``sign_count_regression`` (a cloned authenticator?): refused by default; with
  ``on_sign_count_regression="allow_and_flag"`` accepted, ``Verdict.reason`` and the
  event's ``flags`` (with ``previous_sign_count``) saying so, for the stream's detection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
import webauthn as wa
from cryptography.exceptions import InvalidSignature
from webauthn import helpers as wh
from webauthn.helpers import structs as ws
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.registration.generate_registration_options import default_supported_pub_key_algs

from schemas import payloads as p
from schemas.fields import Channel, Factor, PolicyTier
from verifiers.store import Request, Step, Verdict, VerifierError, VerifierStore
from verifiers.tables import challenges, enrollments

UserVerification = Literal["required", "preferred", "discouraged"]
SignCountPolicy = Literal["refuse", "allow_and_flag"]
TIER_USER_VERIFICATION: dict[PolicyTier, UserVerification] = {
    PolicyTier.ADMIN: "required",
    PolicyTier.BUSINESS: "required",
    PolicyTier.CUSTOMER: "preferred",
}
MAX_RESPONSE_CHARS = 64 * 1024
MAX_CREDENTIAL_ID_BYTES = 768  # its base64url fits enrollments.credential_id (1024)
UNKNOWN_ENROLLMENT = "unknown"  # EnrollmentFailed needs an id; an unknown challenge has none
CHANNELS = {"platform": Channel.PLATFORM_AUTHENTICATOR, "cross-platform": Channel.SECURITY_KEY}
WEBAUTHN = Factor.WEBAUTHN
C = TypeVar("C", ws.AuthenticationCredential, ws.RegistrationCredential)


class WebAuthnSettingsError(VerifierError, ValueError):
    """Misuse: bad user verification, timeout, origins, sign-count policy or RP."""


class NotEnrolledError(VerifierError, LookupError):
    """Authentication was begun for a subject without an active WebAuthn credential."""


@dataclass(frozen=True)
class RegistrationOptions:
    """``options_json`` goes to ``navigator.credentials.create()``; the ids come back."""

    challenge_id: str
    enrollment_id: str
    options_json: str
    expires_at: datetime


@dataclass(frozen=True)
class AuthenticationOptions:
    """``options_json`` goes to ``navigator.credentials.get()``; the id comes back."""

    challenge_id: str
    options_json: str
    expires_at: datetime


@dataclass(frozen=True)
class _Expected:
    challenge: bytes
    origins: list[str]
    rp_id: str
    uv_required: bool


def begin_registration(
    store: VerifierStore,
    request: Request,
    *,
    rp_id: str,
    rp_name: str,
    user_name: str,
    user_display_name: str,
    user_verification: UserVerification | None = None,
    timeout: timedelta = timedelta(minutes=5),
) -> RegistrationOptions:
    """A pending enrollment and its challenge; the subject's active keys are excluded.

    ``user_verification`` defaults by tier (:data:`TIER_USER_VERIFICATION`).
    """
    uv, expires_at = _settings(request, user_verification, timeout)
    enrollment_id = f"webauthn-{store.entropy.identifier()}"
    challenge_id = f"wac-{store.entropy.identifier()}"
    with store.step(request, factor=WEBAUTHN, gated=False) as step:
        rows = _enrollments(step)
        handles = [r.settings["user_handle"] for r in rows if "user_handle" in r.settings]
        fresh = store.entropy.token_bytes(32)
        user_handle = handles[0] if handles else wh.bytes_to_base64url(fresh)
        try:
            options = wa.generate_registration_options(
                rp_id=rp_id,
                rp_name=rp_name,
                user_name=user_name,
                user_display_name=user_display_name,
                user_id=wh.base64url_to_bytes(user_handle),
                timeout=int(timeout.total_seconds() * 1000),
                authenticator_selection=ws.AuthenticatorSelectionCriteria(
                    resident_key=ws.ResidentKeyRequirement.PREFERRED, user_verification=uv
                ),
                exclude_credentials=[_descriptor(r) for r in rows if r.status == "active"],
            )
        except WebAuthnException as exc:
            raise WebAuthnSettingsError(str(exc)) from exc
        step.connection.execute(
            enrollments.insert().values(
                id=enrollment_id,
                tenant=request.tenant,
                subject=request.subject,
                factor=WEBAUTHN,
                status="pending",
                settings={"user_handle": user_handle},
                created_at=request.now,
            )
        )
        _insert_challenge(
            step,
            challenge_id,
            "enroll",
            enrollment_id,
            options.challenge,
            uv,
            expires_at,
            user_handle,
        )
        step.emit(p.EnrollmentStarted(factor=WEBAUTHN, enrollment_id=enrollment_id))
    return RegistrationOptions(challenge_id, enrollment_id, wa.options_to_json(options), expires_at)


def finish_registration(
    store: VerifierStore,
    request: Request,
    *,
    challenge_id: str,
    credential_json: str,
    expected_origin: str | Sequence[str],
    rp_id: str,
) -> Verdict:
    """Verify ``navigator.credentials.create()``'s response and activate the enrollment."""
    origins = _origins(expected_origin)
    with store.step(request, factor=WEBAUTHN) as step:
        challenge, problem = _challenge(step, challenge_id, "enroll")
        enrollment_id = challenge.enrollment_id if challenge is not None else UNKNOWN_ENROLLMENT

        def fail(reason: str) -> Verdict:
            _close(step, challenge, reason)
            payload = p.EnrollmentFailed(
                factor=WEBAUTHN, enrollment_id=enrollment_id, reason=reason
            )
            return Verdict.refused(reason, step.emit(payload), step)

        if problem is not None:
            return fail(problem)
        credential = _parse(wh.parse_registration_credential_json, credential_json)
        if credential is None:
            return fail("malformed_response")
        expected = _expected(challenge, origins, rp_id)
        try:
            verified = wa.verify_registration_response(
                credential=credential,
                expected_challenge=expected.challenge,
                expected_rp_id=rp_id,
                expected_origin=origins,
                require_user_verification=expected.uv_required,
            )
        except Exception:  # pure code over client bytes; raises many types
            return fail(_explain_attestation(credential, expected))
        if verified.credential_id != credential.raw_id:
            return fail("malformed_response")
        if not _usable(verified.credential_public_key):
            return fail("invalid_public_key")
        taken = sa.select(enrollments.c.id).where(enrollments.c.credential_id == credential.id)
        if step.connection.execute(taken).first() is not None:
            return fail("credential_already_registered")
        attachment = credential.authenticator_attachment
        fmt = ws.AttestationFormat(verified.fmt).value  # py_webauthn passes the raw string on
        authenticator = p.Authenticator(
            aaguid=verified.aaguid,
            attestation=fmt,
            backup_eligible=verified.credential_device_type == ws.CredentialDeviceType.MULTI_DEVICE,
            user_verifying=verified.user_verified,
        )
        settings = {
            "user_handle": challenge.data["user_handle"],
            "aaguid": verified.aaguid,
            "attestation": fmt,
            "transports": [t.value for t in credential.response.transports or []],
            "attachment": attachment.value if attachment else None,
            "backup_eligible": authenticator.backup_eligible,
        }
        step.connection.execute(
            enrollments.update()
            .where(enrollments.c.id == enrollment_id)
            .values(
                status="active",
                confirmed_at=request.now,
                credential_id=credential.id,
                secret=store.seal_enrollment(enrollment_id, verified.credential_public_key),
                settings=settings,
                sign_count=verified.sign_count,
            )
        )
        _close(step, challenge, "used")
        channel = CHANNELS.get(settings["attachment"] or "")
        event = step.emit(
            p.EnrollmentCompleted(
                factor=WEBAUTHN,
                enrollment_id=enrollment_id,
                channel=channel,
                authenticator=authenticator,
            )
        )
        return Verdict(True, None, event)


def begin_authentication(
    store: VerifierStore,
    request: Request,
    *,
    rp_id: str,
    user_verification: UserVerification | None = None,
    timeout: timedelta = timedelta(minutes=5),
) -> AuthenticationOptions:
    """A challenge that any of the subject's active credentials can answer."""
    uv, expires_at = _settings(request, user_verification, timeout)
    challenge_id = f"wac-{store.entropy.identifier()}"
    with store.step(request, factor=WEBAUTHN, gated=False) as step:
        rows = [r for r in _enrollments(step) if r.status == "active"]
        if not rows:
            raise NotEnrolledError("expected an active WebAuthn credential, found none")
        try:
            options = wa.generate_authentication_options(
                rp_id=rp_id,
                timeout=int(timeout.total_seconds() * 1000),
                allow_credentials=[_descriptor(r) for r in rows],
                user_verification=uv,
            )
        except WebAuthnException as exc:
            raise WebAuthnSettingsError(str(exc)) from exc
        only = rows[0].id if len(rows) == 1 else None
        _insert_challenge(
            step, challenge_id, "authenticate", only, options.challenge, uv, expires_at
        )
        channels = {CHANNELS.get(r.settings.get("attachment") or "") for r in rows}
        step.emit(
            p.ChallengeIssued(
                factor=WEBAUTHN,
                challenge_id=challenge_id,
                channel=channels.pop() if len(channels) == 1 else None,
                enrollment_id=only,
                expires_at=expires_at,
                max_attempts=1,
            )
        )
    return AuthenticationOptions(challenge_id, wa.options_to_json(options), expires_at)


def finish_authentication(
    store: VerifierStore,
    request: Request,
    *,
    challenge_id: str,
    credential_json: str,
    expected_origin: str | Sequence[str],
    rp_id: str,
    on_sign_count_regression: SignCountPolicy = "refuse",
) -> Verdict:
    """Verify ``navigator.credentials.get()``'s response (a gated step: lockout first)."""
    if on_sign_count_regression not in ("refuse", "allow_and_flag"):
        raise WebAuthnSettingsError(
            f"on_sign_count_regression: expected refuse or allow_and_flag, "
            f"got {on_sign_count_regression!r}"
        )
    origins = _origins(expected_origin)
    with store.step(request, factor=WEBAUTHN) as step:
        challenge, problem = _challenge(step, challenge_id, "authenticate")

        def fail(
            reason: str,
            enrollment_id: str | None = None,
            count: int | None = None,
            previous: int | None = None,
        ) -> Verdict:
            _close(step, challenge, reason)
            payload = p.VerificationFailed(
                factor=WEBAUTHN,
                reason=reason,
                challenge_id=challenge.id if challenge is not None else None,
                enrollment_id=enrollment_id,
                sign_count=count,
                previous_sign_count=previous,
            )
            return Verdict.refused(reason, step.emit(payload), step)

        if problem is not None:
            return fail(problem)
        credential = _parse(wh.parse_authentication_credential_json, credential_json)
        if credential is None:
            return fail("malformed_response")
        row = step.connection.execute(
            sa.select(enrollments).where(
                enrollments.c.credential_id == credential.id,
                enrollments.c.tenant == request.tenant,
                enrollments.c.factor == WEBAUTHN,
                enrollments.c.status == "active",
            )
        ).one_or_none()
        if row is None:
            return fail("unknown_credential")
        if row.subject != request.subject:
            return fail("credential_subject_mismatch")
        public_key = store.open_enrollment(row.id, row.secret)
        expected = _expected(challenge, origins, rp_id)
        try:
            verified = wa.verify_authentication_response(
                credential=credential,
                expected_challenge=expected.challenge,
                expected_rp_id=rp_id,
                expected_origin=origins,
                credential_public_key=public_key,
                credential_current_sign_count=0,  # judged below, once the signature holds
                require_user_verification=expected.uv_required,
            )
        except Exception:  # pure code over client bytes; raises many types
            return fail(_explain_assertion(credential, public_key, expected), row.id)
        previous, count = row.sign_count or 0, verified.new_sign_count
        regressed = (count > 0 or previous > 0) and count <= previous
        if regressed and on_sign_count_regression == "refuse":
            return fail("sign_count_regression", row.id, count, previous)
        step.connection.execute(
            enrollments.update()
            .where(enrollments.c.id == row.id)
            .values(sign_count=max(count, previous))
        )
        _close(step, challenge, "used")
        event = step.emit(
            p.VerificationSucceeded(
                factor=WEBAUTHN,
                challenge_id=challenge.id,
                enrollment_id=row.id,
                user_verified=verified.user_verified,
                sign_count=count,
                previous_sign_count=previous,
                flags=["sign_count_regression"] if regressed else [],
                authenticator=p.Authenticator(
                    aaguid=row.settings.get("aaguid"),
                    backup_eligible=row.settings.get("backup_eligible"),
                ),
            )
        )
        return Verdict(True, "sign_count_regression" if regressed else None, event)


# -- what failed -------------------------------------------------------------------------


def _explain_assertion(
    credential: ws.AuthenticationCredential, public_key: bytes, expected: _Expected
) -> str:
    """Why py_webauthn refused an assertion; a bad signature outranks everything it signs."""
    response = credential.response
    try:
        auth_data = wh.parse_authenticator_data(response.authenticator_data)
        problem = _explain_client("webauthn.get", response.client_data_json, auth_data, expected)
    except Exception:  # unparseable client bytes
        return "malformed_response"
    signed = response.authenticator_data + hashlib.sha256(response.client_data_json).digest()
    try:
        key = wh.decode_credential_public_key(public_key)
        wh.verify_signature(
            public_key=wh.decoded_public_key_to_cryptography(key),
            signature_alg=key.alg,
            signature=response.signature,
            data=signed,
        )
    except InvalidSignature:
        return "bad_signature"
    except Exception:  # a key py_webauthn cannot use; registration should have refused it
        return "invalid_response"
    return problem or "invalid_response"


def _explain_attestation(credential: ws.RegistrationCredential, expected: _Expected) -> str:
    """Why py_webauthn refused a registration; what is left is the attestation statement."""
    response = credential.response
    try:
        attestation = wh.parse_attestation_object(response.attestation_object)
        auth_data = attestation.auth_data
        problem = _explain_client("webauthn.create", response.client_data_json, auth_data, expected)
        attested = auth_data.attested_credential_data
        if attested is None or not attested.credential_id or not attested.aaguid:
            return "malformed_response"
        alg = wh.decode_credential_public_key(attested.credential_public_key).alg
    except Exception:  # unparseable client bytes
        return "malformed_response"
    if problem is not None:
        return problem
    if alg not in default_supported_pub_key_algs:
        return "unsupported_algorithm"
    statement = [v for v in vars(attestation.att_stmt).values() if v is not None]
    plain_none = attestation.fmt == ws.AttestationFormat.NONE and not statement
    return "invalid_response" if plain_none else "attestation_invalid"


def _explain_client(
    ceremony: str, client_data_json: bytes, auth_data: ws.AuthenticatorData, expected: _Expected
) -> str | None:
    """The first of py_webauthn's client data and authenticator data checks that fails."""
    client = wh.parse_client_data_json(client_data_json)
    flags = auth_data.flags
    checks = (
        (client.type == ceremony, "wrong_ceremony_type"),
        (client.challenge == expected.challenge, "challenge_mismatch"),
        (client.origin in expected.origins, "wrong_origin"),
        (auth_data.rp_id_hash == hashlib.sha256(expected.rp_id.encode()).digest(), "wrong_rp_id"),
        (flags.up, "user_presence_missing"),
        (flags.uv or not expected.uv_required, "user_verification_missing"),
        (flags.be or not flags.bs, "malformed_response"),  # backed up, yet not eligible
    )
    return next((reason for passed, reason in checks if not passed), None)


# -- helpers -----------------------------------------------------------------------------


def _settings(
    request: Request, user_verification: UserVerification | None, timeout: timedelta
) -> tuple[ws.UserVerificationRequirement, datetime]:
    chosen = user_verification or TIER_USER_VERIFICATION[request.tier]
    try:
        uv = ws.UserVerificationRequirement(chosen)
    except ValueError:
        raise WebAuthnSettingsError(
            f"user_verification: expected required, preferred or discouraged, got {chosen!r}"
        ) from None
    if not timedelta(seconds=1) <= timeout <= timedelta(hours=1):
        raise WebAuthnSettingsError(f"timeout: expected 1 s to 1 h, got {timeout}")
    return uv, request.now + timeout


def _origins(expected_origin: str | Sequence[str]) -> list[str]:
    origins = [expected_origin] if isinstance(expected_origin, str) else list(expected_origin)
    if not origins or not all(isinstance(o, str) and o for o in origins):
        raise WebAuthnSettingsError(f"expected_origin: expected origins, got {expected_origin!r}")
    return origins


def _expected(challenge: Any, origins: list[str], rp_id: str) -> _Expected:
    data = challenge.data
    uv_required = data["user_verification"] == "required"
    return _Expected(wh.base64url_to_bytes(data["challenge"]), origins, rp_id, uv_required)


def _parse(parser: Callable[[str], C], credential_json: str) -> C | None:
    """The parsed response, or ``None`` for anything that is not a well-formed one."""
    if not isinstance(credential_json, str) or len(credential_json) > MAX_RESPONSE_CHARS:
        return None
    try:
        credential = parser(credential_json)
    except Exception:  # JSON, base64, enum and recursion errors alike
        return None
    raw_id = credential.raw_id
    if not 0 < len(raw_id) <= MAX_CREDENTIAL_ID_BYTES:
        return None
    return credential if wh.bytes_to_base64url(raw_id) == credential.id else None


def _usable(public_key: bytes) -> bool:
    """py_webauthn checks the algorithm of a new key, not that the key itself is sound."""
    try:
        wh.decoded_public_key_to_cryptography(wh.decode_credential_public_key(public_key))
    except Exception:  # off the curve, wrong sizes, missing parameters
        return False
    return True


def _enrollments(step: Step) -> list[Any]:
    request = step.request
    query = sa.select(enrollments).where(
        enrollments.c.tenant == request.tenant,
        enrollments.c.subject == request.subject,
        enrollments.c.factor == WEBAUTHN,
    )
    return list(step.connection.execute(query.order_by(enrollments.c.created_at)).all())


def _descriptor(row: Any) -> ws.PublicKeyCredentialDescriptor:
    transports = [ws.AuthenticatorTransport(t) for t in row.settings.get("transports", [])]
    credential_id = wh.base64url_to_bytes(row.credential_id)
    return ws.PublicKeyCredentialDescriptor(id=credential_id, transports=transports or None)


def _insert_challenge(
    step: Step,
    challenge_id: str,
    purpose: str,
    enrollment_id: str | None,
    challenge: bytes,
    uv: ws.UserVerificationRequirement,
    expires_at: datetime,
    user_handle: str | None = None,
) -> None:
    request = step.request
    data = {"challenge": wh.bytes_to_base64url(challenge), "user_verification": uv.value}
    step.connection.execute(
        challenges.insert().values(
            id=challenge_id,
            tenant=request.tenant,
            subject=request.subject,
            factor=WEBAUTHN,
            purpose=purpose,
            enrollment_id=enrollment_id,
            data=data if user_handle is None else {**data, "user_handle": user_handle},
            attempts=0,
            max_attempts=1,
            created_at=request.now,
            expires_at=expires_at,
        )
    )


def _challenge(step: Step, challenge_id: str, purpose: str) -> tuple[Any, str | None]:
    """The challenge row (or ``None``) and what stops it being answered, lockout first."""
    request = step.request
    row = None
    if isinstance(challenge_id, str) and len(challenge_id) <= 64:
        row = step.connection.execute(
            sa.select(challenges).where(
                challenges.c.id == challenge_id,
                challenges.c.tenant == request.tenant,
                challenges.c.subject == request.subject,
                challenges.c.factor == WEBAUTHN,
                challenges.c.purpose == purpose,
            )
        ).one_or_none()
    if step.lockout.locked:
        return row, "locked_out"
    if row is None:
        return None, "unknown_challenge"
    if row.closed_at is not None:
        return row, "challenge_used"
    if request.now >= row.expires_at:
        return row, "challenge_expired"
    return row, None


def _close(step: Step, challenge: Any, reason: str) -> None:
    """Consume ``challenge`` if it is still open: every attempt uses it up."""
    if challenge is not None:
        step.close_challenge(challenge.id, reason, attempts=1)
