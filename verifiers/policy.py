"""The mission's policy tiers, as data, and conditional access (who must use MFA, and how).

``TIERS`` holds the admin, business and customer tiers (their factors, lockout, code
lifetime, temporary access, resends and trusted devices); :func:`tier_policy` reads one
with overrides, :func:`lockout_policy` maps it onto the Keycloak-style
:class:`LockoutPolicy`, and :func:`decide_mfa` says whether a sign-in must step up and
with which factors. The tiers' table and the mapping in full: docs/lockout.md#the-policy-tiers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar

from schemas.fields import Client, Factor, PolicyTier, RiskLevel
from schemas.payloads import MfaRequired
from verifiers.lockout import LockoutPolicy, LockoutStrategy
from verifiers.resend import ResendPolicy

PHISHING_RESISTANT = (Factor.WEBAUTHN,)
"""Factors bound to the origin they sign in to (FIDO2/WebAuthn)."""
TELEPHONY = frozenset({Factor.SMS, Factor.VOICE})
"""Factors whose code travels over the phone network (SIM swap, interception)."""
OUT_OF_BAND_CODES = TELEPHONY | {Factor.EMAIL}
PRIVILEGED_ROLES = frozenset({"admin", "administrator", "root", "superuser", "security_admin"})
LOCATION_REASONS = {"new_country": "new_country", "unknown": "unknown_location"}
E = TypeVar("E", bound=StrEnum)


_DURATIONS = (
    "lockout_duration",
    "code_lifetime",
    "otp_lockout",
    "max_wait",
    "failure_reset",
    "quick_login_check",
    "min_quick_login_wait",
    "trusted_device_lifetime",
)


def _enum(kind: type[E], name: str, value: object) -> E:
    """``value`` as a member of ``kind``, or a ValueError naming the field and the choices."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str) and value in kind._value2member_map_:
        return kind(value)
    expected = ", ".join(member.value for member in kind)
    raise ValueError(f"{name}: expected one of {expected}, found {value!r}")


def _factors(name: str, value: object) -> tuple[Factor, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"{name}: expected a sequence of factors, found {value!r}")
    factors = tuple(_enum(Factor, name, item) for item in value)
    if len(set(factors)) != len(factors):
        raise ValueError(f"{name}: expected distinct factors, found {factors}")
    return factors


@dataclass(frozen=True)
class TemporaryAccessLimits:
    """How far a temporary-access code of a tier may go (:mod:`verifiers.override`)."""

    max_valid_for: timedelta = timedelta(hours=24)
    """The longest a code may stay valid once approved."""
    multi_use: bool = True
    """Whether a code may let its subject in more than once while valid."""

    def __post_init__(self) -> None:
        if not isinstance(self.max_valid_for, timedelta) or self.max_valid_for <= timedelta(0):
            raise ValueError(
                f"max_valid_for: expected a positive timedelta, found {self.max_valid_for!r}"
            )

    def refusal(self, *, valid_for: timedelta, single_use: bool) -> str | None:
        """Why a code valid for ``valid_for`` (single use or not) is beyond these limits
        (``None``: within them)."""
        if valid_for <= timedelta(0) or valid_for > self.max_valid_for:
            return "lifetime_over_tier_limit"
        if not single_use and not self.multi_use:
            return "multi_use_not_allowed"
        return None


@dataclass(frozen=True)
class TierPolicy:
    """One tier: which factors, how many failures, how long things last."""

    tier: PolicyTier
    required_factors: tuple[Factor, ...]
    """Factors expected first; the subject must use one of them when available."""
    fallback_factors: tuple[Factor, ...]
    """Factors accepted when no required factor is available."""
    max_failures: int
    lockout_duration: timedelta
    """The first subject lockout; later ones grow by the strategy up to ``max_wait``."""
    code_lifetime: timedelta
    """How long a one-time code (SMS, voice, e-mail, push) stays valid."""
    otp_max_failures: int
    otp_lockout: timedelta
    max_wait: timedelta
    strategy: LockoutStrategy
    max_temporary_lockouts: int
    failure_reset: timedelta = timedelta(hours=12)
    quick_login_check: timedelta = timedelta(seconds=1)
    min_quick_login_wait: timedelta = timedelta(minutes=1)
    code_resend: ResendPolicy = ResendPolicy()
    """How soon another SMS, voice or e-mail code may be sent (:mod:`verifiers.resend`)."""
    push_resend: ResendPolicy = ResendPolicy()
    """How soon another push may be sent, besides one open push at a time."""
    temporary_access: TemporaryAccessLimits = TemporaryAccessLimits()
    """What a temporary-access code two administrators grant may be (lifetime, reuse)."""
    trusted_device_lifetime: timedelta = timedelta(0)
    """How long a device the subject trusted skips the step-up (zero: no device is trusted)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tier", _enum(PolicyTier, "tier", self.tier))
        object.__setattr__(self, "strategy", _enum(LockoutStrategy, "strategy", self.strategy))
        for name in ("required_factors", "fallback_factors"):
            object.__setattr__(self, name, _factors(name, getattr(self, name)))
        if not self.required_factors:
            raise ValueError("required_factors: expected at least one factor, found none")
        if both := set(self.required_factors) & set(self.fallback_factors):
            raise ValueError(f"fallback_factors: expected none of required_factors, found {both}")
        for name in ("max_failures", "otp_max_failures", "max_temporary_lockouts"):
            value = getattr(self, name)
            minimum = 0 if name == "max_temporary_lockouts" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name}: expected an integer >= {minimum}, found {value!r}")
        for name in _DURATIONS:
            value = getattr(self, name)
            zero_ok = name in (
                "quick_login_check",
                "min_quick_login_wait",
                "trusted_device_lifetime",
            )
            if (
                not isinstance(value, timedelta)
                or value < timedelta(0)
                or (not value and not zero_ok)
            ):
                kind = "non-negative" if zero_ok else "positive"
                raise ValueError(f"{name}: expected a {kind} timedelta, found {value!r}")
        for name in ("code_resend", "push_resend"):
            if not isinstance(getattr(self, name), ResendPolicy):
                raise ValueError(f"{name}: expected a ResendPolicy, found {getattr(self, name)!r}")
        if not isinstance(self.temporary_access, TemporaryAccessLimits):
            raise ValueError(
                f"temporary_access: expected TemporaryAccessLimits, found {self.temporary_access!r}"
            )
        if self.max_wait < self.lockout_duration:
            raise ValueError(
                f"max_wait: expected at least lockout_duration ({self.lockout_duration}), "
                f"found {self.max_wait}"
            )
        if self.failure_reset <= self.max_wait:
            raise ValueError(  # Keycloak: otherwise the wait never reaches max_wait
                f"failure_reset: expected longer than max_wait ({self.max_wait}), "
                f"found {self.failure_reset}"
            )

    @property
    def accepted_factors(self) -> tuple[Factor, ...]:
        return self.required_factors + self.fallback_factors


TIERS: Mapping[PolicyTier, TierPolicy] = MappingProxyType(
    {
        PolicyTier.ADMIN: TierPolicy(
            tier=PolicyTier.ADMIN,
            required_factors=(Factor.WEBAUTHN, Factor.PUSH),
            fallback_factors=(Factor.TOTP, Factor.SMS),
            max_failures=3,
            lockout_duration=timedelta(minutes=5),
            code_lifetime=timedelta(minutes=2),
            otp_max_failures=3,
            otp_lockout=timedelta(minutes=5),
            max_wait=timedelta(minutes=30),
            strategy=LockoutStrategy.LINEAR,
            max_temporary_lockouts=3,
            failure_reset=timedelta(hours=24),
            temporary_access=TemporaryAccessLimits(timedelta(hours=1), multi_use=False),
        ),
        PolicyTier.BUSINESS: TierPolicy(
            tier=PolicyTier.BUSINESS,
            required_factors=(Factor.TOTP, Factor.PUSH),
            fallback_factors=(Factor.SMS, Factor.EMAIL),
            max_failures=5,
            lockout_duration=timedelta(minutes=3),
            code_lifetime=timedelta(minutes=5),
            otp_max_failures=3,
            otp_lockout=timedelta(minutes=3),
            max_wait=timedelta(minutes=15),
            strategy=LockoutStrategy.MULTIPLE,
            max_temporary_lockouts=0,
            temporary_access=TemporaryAccessLimits(timedelta(hours=8)),
            trusted_device_lifetime=timedelta(days=7),
        ),
        PolicyTier.CUSTOMER: TierPolicy(
            tier=PolicyTier.CUSTOMER,
            required_factors=(Factor.TOTP,),
            fallback_factors=(Factor.SMS, Factor.EMAIL),
            max_failures=10,
            lockout_duration=timedelta(minutes=15),
            code_lifetime=timedelta(minutes=10),
            otp_max_failures=5,
            otp_lockout=timedelta(minutes=15),
            max_wait=timedelta(hours=1),
            strategy=LockoutStrategy.MULTIPLE,
            max_temporary_lockouts=0,
            trusted_device_lifetime=timedelta(days=30),
        ),
    }
)


def tier_policy(tier: PolicyTier | str, /, **overrides: Any) -> TierPolicy:
    """The policy of ``tier`` with ``overrides`` applied (validated; unknown names refused)."""
    base = TIERS[_enum(PolicyTier, "tier", tier)]
    names = {f.name for f in fields(TierPolicy)} - {"tier"}
    if unknown := sorted(set(overrides) - names):
        raise ValueError(f"unknown TierPolicy field(s) {unknown}: expected some of {sorted(names)}")
    return replace(base, **overrides)


def lockout_policy(tier_policy: TierPolicy) -> LockoutPolicy:
    """The lockout fold's settings for a tier (the mapping: docs/lockout.md#the-policy-tiers)."""
    return LockoutPolicy(
        max_failures=tier_policy.max_failures,
        wait_increment=tier_policy.lockout_duration,
        max_wait=tier_policy.max_wait,
        failure_reset=tier_policy.failure_reset,
        quick_login_check=tier_policy.quick_login_check,
        min_quick_login_wait=tier_policy.min_quick_login_wait,
        strategy=tier_policy.strategy,
        max_temporary_lockouts=tier_policy.max_temporary_lockouts,
        otp_max_failures=tier_policy.otp_max_failures,
        otp_lockout=tier_policy.otp_lockout,
    )


class Sensitivity(StrEnum):
    """How much harm a compromised session in the application could do."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Location(StrEnum):
    """Where the sign-in comes from, relative to the subject's history."""

    KNOWN = "known"
    NEW_COUNTRY = "new_country"
    ANONYMOUS_NETWORK = "anonymous_network"
    """Tor, open proxies, anonymising VPNs."""
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class AccessContext:
    """What conditional access knows about one sign-in."""

    role: str
    application_sensitivity: Sensitivity
    risk_level: RiskLevel
    location: Location
    device_trusted: bool
    tier: PolicyTier

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", self.role.strip().lower())
        for name, kind in (
            ("application_sensitivity", Sensitivity),
            ("risk_level", RiskLevel),
            ("location", Location),
            ("tier", PolicyTier),
        ):
            object.__setattr__(self, name, _enum(kind, name, getattr(self, name)))


@dataclass(frozen=True)
class MfaDecision:
    """Whether MFA is required, why, and which factors: ``required_factors`` first, else
    one of ``allowed_factors`` (the fallbacks; the two never overlap)."""

    required: bool
    reasons: tuple[str, ...]
    required_factors: tuple[Factor, ...] = ()
    allowed_factors: tuple[Factor, ...] = ()

    def accepts(self, factor: Factor) -> bool:
        return factor in self.required_factors or factor in self.allowed_factors


def decide_mfa(
    context: AccessContext, tiers: Mapping[PolicyTier, TierPolicy] = TIERS
) -> MfaDecision:
    """Conditional access. Rules, in order; reasons accumulate in this order:

    ====================================  ======================  ============================
    condition                             reason                  effect
    ====================================  ======================  ============================
    tier admin or business                ``<tier>_tier``         MFA required
    role in ``PRIVILEGED_ROLES``          privileged_role         required; required factors =
                                                                  webauthn; no sms/voice/email
    risk high or critical                 ``<level>_risk``        required; no sms/voice
    location anonymous_network            anonymous_network       required; no sms/voice
    risk medium                           medium_risk             required
    location new_country / unknown        new_country / …         required
    device not trusted                    untrusted_device        required
    application sensitivity high          sensitive_application   required
    customer, low sensitivity, known      low_risk_context        MFA may be skipped
    location, trusted device, risk none
    customer, none of the above           customer_tier           required
    ====================================  ======================  ============================

    Factors start from the tier's (required, fallbacks) and are only narrowed, except that a
    privileged role makes webauthn the required factor whatever the tier (the tier's other
    factors, less sms/voice/email, remain as fallbacks). If narrowing empties the required
    factors, the first remaining fallback takes their place; if nothing remains, no factor
    can satisfy the decision and the sign-in cannot proceed.
    """
    policy = tiers[context.tier]
    required, fallback = list(policy.required_factors), list(policy.fallback_factors)
    reasons: list[str] = []
    if context.tier in (PolicyTier.ADMIN, PolicyTier.BUSINESS):
        reasons.append(f"{context.tier}_tier")
    if context.role in PRIVILEGED_ROLES:
        reasons.append("privileged_role")
        fallback = [f for f in required + fallback if f not in PHISHING_RESISTANT]
        required = list(PHISHING_RESISTANT)
        fallback = [f for f in fallback if f not in OUT_OF_BAND_CODES]
    if context.risk_level in (RiskLevel.HIGH, RiskLevel.CRITICAL):
        reasons.append(f"{context.risk_level}_risk")
    if context.location is Location.ANONYMOUS_NETWORK:
        reasons.append("anonymous_network")
    if {"high_risk", "critical_risk", "anonymous_network"} & set(reasons):
        required = [f for f in required if f not in TELEPHONY]
        fallback = [f for f in fallback if f not in TELEPHONY]
    if context.risk_level is RiskLevel.MEDIUM:
        reasons.append("medium_risk")
    if context.location in (Location.NEW_COUNTRY, Location.UNKNOWN):
        reasons.append(LOCATION_REASONS[context.location])
    if not context.device_trusted:
        reasons.append("untrusted_device")
    if context.application_sensitivity is Sensitivity.HIGH:
        reasons.append("sensitive_application")
    if not reasons:
        low_risk = (
            context.application_sensitivity is Sensitivity.LOW
            and context.location is Location.KNOWN
            and context.risk_level is RiskLevel.NONE
        )
        if low_risk:
            return MfaDecision(required=False, reasons=("low_risk_context",))
        reasons.append(f"{context.tier}_tier")
    if not required and fallback:
        required = [fallback.pop(0)]
    return MfaDecision(True, tuple(reasons), tuple(required), tuple(fallback))


def mfa_required_payload(
    decision: MfaDecision,
    context: AccessContext,
    *,
    application: str,
    client: Client | None = None,
) -> MfaRequired:
    """The ``mfa.required`` payload recording ``decision`` for ``context``."""
    return MfaRequired(
        required=decision.required,
        reasons=list(decision.reasons),
        required_factors=list(decision.required_factors),
        allowed_factors=list(decision.allowed_factors),
        risk_level=context.risk_level,
        role=context.role or None,
        application_sensitivity=str(context.application_sensitivity),
        application=application,
        policy_tier=context.tier,
        client=client,
    )
