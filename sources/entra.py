"""Microsoft Entra ID sign-ins mapped to the contract: one ``signIn`` in, its events out.

A record is a ``signIn`` resource of Microsoft Graph (``GET /auditLogs/signIns``, v1.0 or
beta); :func:`map_records` also takes a page of the API (``{"value": [signIn, …]}``) or a
JSON array. One sign-in says several things, so it becomes several events, each with its
role and an id derived from the sign-in's ``id`` and the role:

* ``sign_in``: ``auth.login.attempted``, the first factor's result (the primary
  ``authenticationDetails`` step, else ``status.errorCode``), MFA required or not
  (``authenticationRequirement``);
* ``mfa.N``: a verification (``mfa.verification.succeeded`` / ``failed``, or
  ``mfa.push.rejected`` when the person declined the notification) for each
  multifactor step N of ``authenticationDetails``; a step satisfied by an earlier claim is
  no verification and becomes nothing;
* ``risk``: ``idp.risk.reported`` when Entra ID Protection rated the sign-in
  (``riskLevelDuringSignIn`` low, medium or high), its ``riskEventTypes_v2`` in snake_case.

What Entra does not say is not invented: the factor is ``unknown`` unless the step's
method names it; a failed sign-in with no user id has the subject ``unknown`` and keeps
``userPrincipalName`` as personal data; ``AADSTS50053`` (``IdsLocked``: the account is
locked, or the sign-in came from an IP with malicious activity) is a refused sign-in, not a
lock report, as Entra does not say which of the two was locked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Final

from schemas import Event
from schemas import payloads as p
from schemas.fields import Channel, Client, Factor, Outcome, RiskLevel
from sources.events import (
    UNKNOWN_SUBJECT,
    FactorAndChannel,
    IdpSource,
    MappedRecord,
    RecordOrigin,
    client,
    geo,
    to_event,
)
from sources.reading import name, obj, reason_code, text, token, utc_time
from sources.unmapped import Unmapped

PROVIDER: Final = "entra"
RECORD_TYPE: Final = "signIn"
NO_USER: Final = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class EntraSource(IdpSource):
    """The adapter's configuration: our tenant the events are filed under (Entra never
    decides it) and their ``source``, e.g. ``https://login.microsoftonline.com/<tenant id>``
    (ids derive from it)."""


@dataclass(frozen=True)
class SignIn:
    """The parts of a ``signIn`` every mapping uses, already checked."""

    record_id: str
    time: datetime
    subject: str
    error_code: int
    record: Mapping[str, Any]

    @property
    def context(self) -> dict[str, Any]:
        return {
            "application": name(self.record.get("appDisplayName")),
            "client": _client(self.record),
        }

    @property
    def steps(self) -> list[Mapping[str, Any]]:
        steps = self.record.get("authenticationDetails")
        return [obj(step) for step in steps] if isinstance(steps, list) else []


PayloadMaker = Callable[[SignIn], p.Payload]

# -- vocabulary --------------------------------------------------------------------------

METHODS: Final[Mapping[str, FactorAndChannel]] = {
    "SMS": (Factor.SMS, Channel.SMS),
    "Text message": (Factor.SMS, Channel.SMS),
    "Voice": (Factor.VOICE, Channel.VOICE),
    "Software OATH token": (Factor.TOTP, Channel.AUTHENTICATOR_APP),
    "OATH verification code": (Factor.TOTP, Channel.AUTHENTICATOR_APP),
    "Mobile app notification": (Factor.PUSH, Channel.PUSH),
    "FIDO2 security key": (Factor.WEBAUTHN, Channel.SECURITY_KEY),
}
"""``authenticationDetails[].authenticationMethod`` values that name one of our factors:
Graph's ``SMS``, ``Voice``, ``Software OATH token`` and the sign-in log's names for the
same and for Authenticator notifications and security keys. Absent on purpose:
``Authenticator App`` (a notification or a code: Graph does not say), ``Password``,
``Previously satisfied`` and ``Satisfied by token`` (no second factor checked now)."""

SATISFIED_EARLIER: Final = frozenset({"Previously satisfied", "Satisfied by token"})

MFA_ASKED: Final = frozenset({50074, 50076, 500121})
"""Error codes of sign-ins stopped at (or failed in) the MFA step: the first factor passed
(AADSTS50074 ``UserStrongAuthClientAuthNRequiredInterrupt``, 50076
``UserStrongAuthClientAuthNRequired``, 500121 "Authentication failed during strong
authentication request")."""

ERROR_REASONS: Final[Mapping[int, str]] = {
    50126: "invalid_username_or_password",
    50034: "user_account_not_found",
    50053: "locked_out",
    50055: "password_expired",
    50057: "user_disabled",
}
"""Entra error codes of a failed first factor and the reason each becomes (the error's
name in snake_case; ``IdsLocked`` is ``locked_out``, a sign-in refused unchecked). Any
other code is ``error_<code>``."""

DECLINED: Final = frozenset(
    {"MFA denied; user declined the authentication", "MFA denied; Phone App Reported Fraud"}
)
"""``authenticationStepResultDetail`` of a notification the person refused on the phone."""

RISK_LEVELS: Final[Mapping[str, RiskLevel]] = {
    "low": RiskLevel.LOW,
    "medium": RiskLevel.MEDIUM,
    "high": RiskLevel.HIGH,
}
"""``riskLevelDuringSignIn`` values that are a verdict (``none``: no risk, ``hidden``: no
Entra ID P2 licence, ``unknownFutureValue``: not one yet; none of them becomes an event)."""

# -- payloads ----------------------------------------------------------------------------


def _signed_in(sign_in: SignIn) -> p.Payload:
    primary = _primary(sign_in.steps)
    passed = primary.get("succeeded") if primary else None
    if not isinstance(passed, bool):
        passed = sign_in.error_code == 0 or sign_in.error_code in MFA_ASKED
    requirement = sign_in.record.get("authenticationRequirement")
    return p.LoginAttempted(
        outcome=Outcome.SUCCESS if passed else Outcome.FAILURE,
        method=name(primary.get("authenticationMethod")) or "unknown",
        reason=None if passed else _failure_reason(sign_in.error_code),
        mfa_required={"multiFactorAuthentication": True, "singleFactorAuthentication": False}.get(
            requirement if isinstance(requirement, str) else ""
        ),
        attempted_name=(
            text(sign_in.record.get("userPrincipalName"), 320)
            if sign_in.subject == UNKNOWN_SUBJECT
            else None
        ),
        **sign_in.context,
    )


def _verified(index: int, sign_in: SignIn) -> p.Payload:
    step = sign_in.steps[index]
    factor = _factor(step)
    result = step.get("authenticationStepResultDetail")
    if step.get("succeeded") is True:
        return p.VerificationSucceeded(factor=factor, **sign_in.context)
    if factor is Factor.PUSH and _said(result) in DECLINED:
        challenge = f"{sign_in.record_id}/{index}"[:128]
        return p.PushRejected(challenge_id=challenge, reason="user_rejected", **sign_in.context)
    return p.VerificationFailed(
        factor=factor, reason=_step_reason(result, sign_in.error_code), **sign_in.context
    )


def _risk(sign_in: SignIn) -> p.Payload:
    record = sign_in.record
    kinds = record.get("riskEventTypes_v2")
    if not isinstance(kinds, list):
        kinds = record.get("riskEventTypes")
    found = [reason_code(kind) for kind in kinds] if isinstance(kinds, list) else []
    detail = record.get("riskDetail")
    return p.IdpRiskReported(
        provider=PROVIDER,
        level=RISK_LEVELS[_said(record.get("riskLevelDuringSignIn"))],
        risk_types=sorted({kind for kind in found if kind is not None}),
        detail=text(detail, 1024) if detail not in ("none", "hidden") else None,
        **sign_in.context,
    )


# -- the mapping --------------------------------------------------------------------------


def map_records(record: Any, source: EntraSource) -> list[MappedRecord]:
    """Every event a sign-in becomes (the sign-in, each MFA step, a risk verdict), or one
    :class:`Unmapped` with the reason; a page of the API (``value``) or a JSON array is
    mapped sign-in by sign-in. Never raises for any JSON value: an event returned has
    been through the codec."""
    pages = record if isinstance(record, list) else _page(record)
    if pages is not None:
        return [result for item in pages for result in _sign_in_events(item, source)]
    return _sign_in_events(record, source)


def map_record(record: Any, source: EntraSource) -> Event | Unmapped:
    """The sign-in's own event (``auth.login.attempted``) or why there is none; its MFA
    steps and risk verdict are in :func:`map_records`, which the adapter uses."""
    if _page(record) is not None:
        return _unmapped(None, "batch", "a page of sign-ins: map_records maps it")
    return _sign_in_events(record, source)[0]


def _sign_in_events(record: Any, source: EntraSource) -> list[MappedRecord]:
    checked = _check(record)
    if isinstance(checked, Unmapped):
        return [checked]
    roles: list[tuple[str, Callable[[], p.Payload]]] = [("sign_in", partial(_signed_in, checked))]
    for index, step in enumerate(checked.steps):
        if _is_mfa_step(index, step):
            roles.append((f"mfa.{index}", partial(_verified, index, checked)))
    if _said(checked.record.get("riskLevelDuringSignIn")) in RISK_LEVELS:
        roles.append(("risk", partial(_risk, checked)))
    correlation = token(checked.record.get("correlationId")) or checked.record_id
    return [
        to_event(
            RecordOrigin(PROVIDER, checked.record_id, RECORD_TYPE, role),
            source,
            make,
            subject=checked.subject,
            correlation=correlation,
            time=checked.time,
        )
        for role, make in roles
    ]


def _check(record: Any) -> SignIn | Unmapped:
    if not isinstance(record, Mapping):
        return _unmapped(None, "not_an_object", "a signIn is a JSON object")
    record_id = token(record.get("id"))
    if record_id is None:
        return _unmapped(None, "missing_record_id", "no id to derive an id from")
    time = utc_time(record.get("createdDateTime"))
    if time is None:
        return _unmapped(record_id, "invalid_date", "createdDateTime is not an ISO 8601 time")
    code = obj(record.get("status")).get("errorCode")
    if isinstance(code, bool) or not isinstance(code, int):
        return _unmapped(record_id, "missing_status", "no status.errorCode (0 is success)")
    user = token(record.get("userId"))
    if user is None or user == NO_USER:
        if code == 0:
            return _unmapped(record_id, "missing_subject", "a successful sign-in with no userId")
        user = UNKNOWN_SUBJECT
    return SignIn(record_id, time, user, code, record)


def _page(record: Any) -> list[Any] | None:
    values = obj(record).get("value")
    return values if isinstance(values, list) and "createdDateTime" not in obj(record) else None


def _unmapped(record_id: str | None, reason: str, detail: str) -> Unmapped:
    return Unmapped(PROVIDER, record_id, RECORD_TYPE, reason, detail)


# -- reading a record --------------------------------------------------------------------


def _said(value: Any) -> str:
    """A string field as it is, anything else as no value (a list is no lookup key)."""
    return value if isinstance(value, str) else ""


def _primary(steps: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The first factor's step: the one labelled primary, else the first one if it is no
    second factor."""
    for step in steps:
        requirement = step.get("authenticationStepRequirement")
        if isinstance(requirement, str) and "primary" in requirement.lower():
            return step
    if steps and not _is_mfa_step(0, steps[0]) and not _names_second_factor(steps[0]):
        return steps[0]
    return {}


def _is_mfa_step(index: int, step: Mapping[str, Any]) -> bool:
    """A second factor checked in this sign-in: labelled multifactor (or, unlabelled,
    after the first step with a second factor's method); not one satisfied earlier."""
    if _said(step.get("authenticationMethod")) in SATISFIED_EARLIER:
        return False
    requirement = step.get("authenticationStepRequirement")
    if isinstance(requirement, str):
        return "multifactor" in requirement.lower() or "mfa" in requirement.lower()
    return index > 0 and _names_second_factor(step)


def _factor(step: Mapping[str, Any]) -> Factor:
    method = step.get("authenticationMethod")
    return METHODS[method][0] if isinstance(method, str) and method in METHODS else Factor.UNKNOWN


def _names_second_factor(step: Mapping[str, Any]) -> bool:
    method = step.get("authenticationMethod")
    return isinstance(method, str) and method in METHODS


def _failure_reason(code: int) -> str:
    return ERROR_REASONS.get(code) or f"error_{code}"[:64]


def _step_reason(result: Any, code: int) -> str:
    """A failed MFA step's reason: its result detail as a code when it is one (rare), else
    the sign-in's error (e.g. ``error_500121``)."""
    return reason_code(result) or _failure_reason(code)


def _client(record: Mapping[str, Any]) -> Client | None:
    """``ipAddress``, ``userAgent`` (beta) and ``location`` (``countryOrRegion`` as an ISO
    code, ``state``, ``city``, ``geoCoordinates``)."""
    location = obj(record.get("location"))
    coordinates = obj(location.get("geoCoordinates"))
    place = geo(
        PROVIDER,
        country=location.get("countryOrRegion"),
        region=location.get("state"),
        city=location.get("city"),
        latitude=coordinates.get("latitude"),
        longitude=coordinates.get("longitude"),
    )
    return client(record.get("ipAddress"), record.get("userAgent"), place)


# -- the reference ------------------------------------------------------------------------


def reference() -> str:
    """The Microsoft Entra ID part of ``docs/sources.md``."""
    methods = ", ".join(
        f"`{method}` → `{factor.value}`" for method, (factor, _) in sorted(METHODS.items())
    )
    errors = ", ".join(f"{code} `{reason}`" for code, reason in sorted(ERROR_REASONS.items()))
    lines = [
        "## Microsoft Entra ID",
        "",
        "Records: `signIn` resources of Microsoft Graph (`GET /auditLogs/signIns`; a page's",
        "`value` is mapped sign-in by sign-in). One sign-in becomes several events, each with",
        "its role; its id derives from the source, the sign-in's `id` and the role:",
        "",
        "| role | event | from |",
        "|---|---|---|",
        "| `sign_in` | `auth.login.attempted` | the primary `authenticationDetails` step (else "
        "`status.errorCode`: 0 and the MFA interrupts "
        f"{', '.join(str(code) for code in sorted(MFA_ASKED))} passed the first factor); "
        "`mfa_required` from `authenticationRequirement` |",
        "| `mfa.N` | `mfa.verification.succeeded`, `mfa.verification.failed`, "
        "`mfa.push.rejected` | each multifactor step N of `authenticationDetails` (not one "
        "satisfied earlier); a declined notification is a push rejection |",
        "| `risk` | `idp.risk.reported` | `riskLevelDuringSignIn` low, medium or high; "
        "`riskEventTypes_v2` in snake_case |",
        "",
        f"Factors by method: {methods}; any other method is `unknown`. Failure reasons:",
        f"{errors}, else `error_<code>`. AADSTS50053 (the account is locked, or the IP is",
        "malicious: Entra does not say which) is a refused sign-in, not a lock report. A",
        "failed sign-in with no `userId` has the subject `unknown` and keeps",
        "`userPrincipalName`; a sign-in without `id`, `createdDateTime` or",
        "`status.errorCode` is unmapped with that reason.",
        "",
    ]
    return "\n".join(lines)
