"""The bodies of the MFA service's requests and answers (its OpenAPI document follows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, IPvAnyAddress

from schemas.envelope import ATTRIBUTE_PATTERNS
from schemas.fields import Factor, PolicyTier


class SignInContext(BaseModel):
    """Who is signing in, from where; recorded on the events the ceremony emits."""

    tier: PolicyTier = Field(
        PolicyTier.CUSTOMER, description="The subject's policy tier (lockout, allowed factors)."
    )
    correlationid: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        pattern=ATTRIBUTE_PATTERNS["correlationid"],
        description="The login transaction (default: a new id).",
    )
    application: str | None = Field(None, min_length=1, max_length=128)
    ip: IPvAnyAddress | None = Field(None, description="The person's IP address.")
    user_agent: str | None = Field(None, max_length=1024)


class TotpEnrollBody(SignInContext):
    account_name: str | None = Field(
        None, max_length=128, description="Shown in the authenticator (default: the subject)."
    )


class CodeBody(SignInContext):
    code: str = Field(min_length=1, max_length=64)


class TotpEnrollmentOut(BaseModel):
    enrollment_id: str
    secret: str = Field(description="Base32 seed: shown once, for manual entry.")
    provisioning_uri: str = Field(description="otpauth:// URI (holds the secret).")
    qr_svg: str


class ConfirmedOut(BaseModel):
    enrollment_id: str
    status: Literal["active"] = "active"


class AssertionOut(BaseModel):
    assertion: str = Field(description="The signed MFA assertion (JWT, EdDSA).")
    token_type: Literal["JWT"] = "JWT"  # noqa: S105 - a type name
    expires_in: int
    amr: list[str]
    acr: str


class RecoveryCodesOut(BaseModel):
    codes: list[str] = Field(description="Shown once; every earlier code stops working.")


class FactorOut(BaseModel):
    enrollment_id: str
    factor: Factor
    status: str
    created_at: datetime
    confirmed_at: datetime | None


class FactorsOut(BaseModel):
    factors: list[FactorOut]
    recovery_codes_remaining: int


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    error: str = Field(description="Machine-readable reason.")
    detail: str


# -- WebAuthn ----------------------------------------------------------------------------

UserVerification = Literal["required", "preferred", "discouraged"]
UV_DEFAULT = "Default: by tier (admin and business require user verification)."


class WebAuthnRegistrationBody(SignInContext):
    user_name: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="Shown by the authenticator (default: the subject).",
    )
    user_display_name: str | None = Field(None, min_length=1, max_length=128)
    user_verification: UserVerification | None = Field(None, description=UV_DEFAULT)


class WebAuthnAuthenticationBody(SignInContext):
    user_verification: UserVerification | None = Field(None, description=UV_DEFAULT)


class WebAuthnRegistrationOptionsOut(BaseModel):
    challenge_id: str = Field(description="Send it back with the browser's response.")
    enrollment_id: str
    options: dict[str, Any] = Field(
        description="PublicKeyCredentialCreationOptionsJSON for navigator.credentials.create() "
        "(binary members base64url, as PublicKeyCredential.parseCreationOptionsFromJSON takes)."
    )
    expires_at: datetime


class WebAuthnAuthenticationOptionsOut(BaseModel):
    challenge_id: str = Field(description="Send it back with the browser's response.")
    options: dict[str, Any] = Field(
        description="PublicKeyCredentialRequestOptionsJSON for navigator.credentials.get()."
    )
    expires_at: datetime


class WebAuthnCredentialBody(SignInContext):
    challenge_id: str = Field(min_length=1, max_length=64)
    credential: dict[str, Any] = Field(
        description="The browser's PublicKeyCredential as JSON (PublicKeyCredential.toJSON(): "
        "id, rawId, type, response with base64url members), as py_webauthn parses it."
    )


# -- SMS, voice and e-mail codes ---------------------------------------------------------

OtpFactor = Literal["sms", "voice", "email"]


class OtpEnrollBody(SignInContext):
    factor: OtpFactor
    destination: str = Field(
        min_length=3,
        max_length=320,
        description="A phone number (E.164, or national with `region`) or an e-mail address.",
    )
    region: str | None = Field(
        None, pattern=r"^[A-Z]{2}$", description="ISO 3166 country of a national phone number."
    )


class OtpEnrollmentOut(BaseModel):
    enrollment_id: str
    factor: OtpFactor
    status: Literal["pending"] = "pending"
    masked_destination: str
    destination_country: str | None


class OtpSendBody(SignInContext):
    factor: OtpFactor
    enrollment_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="A pending enrollment gets an enrollment code (confirm it); default: the "
        "subject's latest active enrollment that can take the factor (a sign-in code).",
    )


class OtpSentOut(BaseModel):
    challenge_id: str = Field(description="Verify the code against it (sign-in codes).")
    factor: OtpFactor
    purpose: Literal["enroll", "authenticate"]
    expires_at: datetime
    resend: bool = Field(description="An earlier open code of the subject was superseded.")


class DeliveryReceiptBody(BaseModel):
    """A provider's delivery receipt for a message it accepted (``verifiers.receipts``)."""

    provider: str = Field(
        min_length=1, max_length=128, description="The provider's name, as configured."
    )
    provider_message_id: str = Field(
        min_length=1, max_length=128, description="The provider's id of the message."
    )
    status: str = Field(
        min_length=1,
        max_length=64,
        description="The provider's status word (`DELIVRD`, `delivered`, `failed`, …).",
    )
    reported_at: AwareDatetime | None = Field(
        None, description="When the provider says the status was reached (with an offset)."
    )


class DeliveryReceiptOut(BaseModel):
    recorded: bool
    reason: Literal["not_final", "duplicate"] | None = Field(
        None, description="Why nothing was recorded: an intermediate status, or a repeat."
    )
    status: Literal["delivered", "undelivered", "expired", "rejected"] | None = None
    challenge_id: str | None = None


class OtpVerifyBody(SignInContext):
    challenge_id: str = Field(min_length=1, max_length=64)
    code: str = Field(min_length=1, max_length=64)


# -- push --------------------------------------------------------------------------------


class PushEnrollBody(SignInContext):
    device_key: dict[str, Any] = Field(
        description='The device\'s Ed25519 public key as a JWK: {"kty": "OKP", "crv": '
        '"Ed25519", "x": "<base64url>"}; the private key never leaves the device.'
    )
    device_name: str | None = Field(None, min_length=1, max_length=128)


class PushEnrollmentOut(BaseModel):
    enrollment_id: str
    key_id: str = Field(description="RFC 7638 thumbprint of the device key.")
    status: Literal["pending"] = "pending"


class PushConfirmBody(SignInContext):
    signature: str | None = Field(
        None,
        max_length=128,
        description="base64url Ed25519 signature of the enrollment proof (see the push docs).",
    )


class PushSendBody(SignInContext):
    location: str | None = Field(
        None, max_length=128, description="Where the sign-in comes from, shown on the phone."
    )


class PushChallengeOut(BaseModel):
    challenge_id: str
    enrollment_id: str
    number: str = Field(description="Show it on the sign-in screen; the person types it.")
    expires_at: datetime
    application: str | None
    location: str | None


class PushRespondBody(SignInContext):
    challenge_id: str = Field(min_length=1, max_length=64)
    decision: Literal["approve", "reject", "report_fraud"]
    number: str | None = Field(None, max_length=8, description="The number the person typed.")
    signature: str | None = Field(
        None, max_length=128, description="base64url Ed25519 signature of the answer."
    )
    key_id: str | None = Field(
        None, max_length=64, description="Thumbprint of the key that signed (optional)."
    )


# -- trusted devices ---------------------------------------------------------------------


class TrustDeviceBody(SignInContext):
    assertion: str = Field(
        min_length=1,
        max_length=4096,
        description="The MFA assertion this service returned for the step-up just done on the "
        "device (at most 5 minutes old, acr mfa); one assertion trusts one device, once.",
    )
    device_id: str = Field(
        min_length=1,
        max_length=128,
        description="The device binding: the identifier or fingerprint the caller sees on "
        "every sign-in from this device (send it with the token to /v1/assess).",
    )
    device_name: str | None = Field(None, min_length=1, max_length=128)


class TrustedDeviceIssuedOut(BaseModel):
    trust_id: str
    device_token: str = Field(
        description="Shown once: the device keeps it (a cookie, the keychain) and the caller "
        "presents it with device_id to /v1/assess."
    )
    expires_at: datetime


class TrustedDeviceOut(BaseModel):
    trust_id: str
    device_name: str | None
    status: Literal["active", "expired", "revoked"]
    tier: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_reason: str | None


class TrustedDevicesOut(BaseModel):
    devices: list[TrustedDeviceOut]


class DevicesRevokedOut(BaseModel):
    revoked: int = Field(description="How many trusts in force ended.")
