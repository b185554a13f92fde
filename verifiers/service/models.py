"""The bodies of the MFA service's requests and answers (its OpenAPI document follows)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, IPvAnyAddress

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
