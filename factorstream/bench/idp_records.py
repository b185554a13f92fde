"""Synthetic identity-provider records for ``bench ingest``'s mapping rates: ``n`` records
of each provider's log format in an MFA-heavy mix, the same for a seed.

Each maker follows the shapes the adapter's tests document (``tests/unit/sources``): Auth0
Management API logs, Okta System Log LogEvents, Keycloak ``EventRepresentation`` /
``AdminEventRepresentation`` (the admin REST API's), Microsoft Graph ``signIn`` resources.
Ids, users, IPs and times vary by a seeded random; a few records of each are outside MFA
(the adapter leaves them unmapped, as it would in a real log).
"""

from __future__ import annotations

import copy
import random
import string
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2026, 11, 1, tzinfo=UTC)
USERS = 500
NETWORKS = ("192.0.2", "198.51.100", "203.0.113")
AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


class _Draw:
    """One maker's deterministic randomness: ids, users, IPs and a clock that moves on."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.moment = START

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def token(self, size: int) -> str:
        return "".join(self.rng.choices(string.ascii_letters + string.digits, k=size))

    def ip(self) -> str:
        return f"{self.rng.choice(NETWORKS)}.{self.rng.randint(1, 254)}"

    def tick(self) -> datetime:
        self.moment += timedelta(milliseconds=self.rng.randint(1, 900))
        return self.moment

    def pick(self, weighted: Sequence[tuple[Any, int]]) -> Any:
        return self.rng.choices([kind for kind, _ in weighted], [w for _, w in weighted])[0]


def _iso(moment: datetime, timespec: str = "milliseconds") -> str:
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")


# -- Auth0 --------------------------------------------------------------------------------

_AUTH0_TYPES = (
    ("gd_auth_succeed", 30),
    ("gd_auth_failed", 10),
    ("gd_start_auth", 20),
    ("gd_send_sms", 8),
    ("gd_send_email", 4),
    ("s", 40),
    ("f", 6),
    ("fp", 4),
    ("mfar", 10),
    ("gd_enrollment_complete", 2),
    ("limit_wc", 1),
    ("sapi", 3),  # not MFA: unmapped, counted
)


def auth0_records(count: int, *, seed: int = 11) -> list[dict[str, Any]]:
    """``count`` Auth0 log records (Management API / Log Streams shape) of an MFA mix."""
    rng = random.Random(seed)
    kinds = [kind for kind, _ in _AUTH0_TYPES]
    weights = [weight for _, weight in _AUTH0_TYPES]
    moment = START
    records = []
    for index in range(count):
        moment += timedelta(milliseconds=rng.randint(1, 900))
        kind = rng.choices(kinds, weights)[0]
        details: dict[str, Any] = {}
        if kind.startswith("gd_"):
            details = {
                "authenticator": {"id": f"sms|dev_{index % 97}", "type": "sms"},
                "enrollment": {"_id": f"dev_{index % 97}", "user_id": f"auth0|{index % 500}"},
            }
        records.append(
            {
                "log_id": f"9002023013120150972346{index:016d}",
                "date": _iso(moment),
                "type": kind,
                "user_id": f"auth0|{index % 500}",
                "user_name": f"user{index % 500}@example.com",
                "client_id": "AbC12345dEf67890gHi12345",
                "client_name": "My Application",
                "ip": f"192.0.2.{index % 250 + 1}",
                "user_agent": "Chrome 120.0.0 / Mac OS X 10.15.7",
                "connection": "Username-Password-Authentication",
                "details": details,
            }
        )
    return records


# -- Okta ---------------------------------------------------------------------------------

_OKTA_TYPES = (
    (("user.session.start", "SUCCESS"), 30),
    (("user.session.start", "FAILURE"), 6),
    (("user.authentication.sso", "SUCCESS"), 10),
    (("policy.evaluate_sign_on", "CHALLENGE"), 15),
    (("policy.evaluate_sign_on", "ALLOW"), 4),  # no MFA asked: outcome_not_mapped
    (("system.push.send_factor_verify_push", "SUCCESS"), 14),
    (("system.sms.send_factor_verify_message", "SUCCESS"), 7),
    (("system.sms.send_factor_verify_message", "FAILURE"), 1),
    (("system.email.send_factor_verify_message", "SUCCESS"), 3),
    (("system.voice.send_mfa_challenge_call", "SUCCESS"), 1),
    (("user.authentication.auth_via_mfa", "SUCCESS"), 30),
    (("user.authentication.auth_via_mfa", "FAILURE"), 8),
    (("user.mfa.okta_verify.deny_push", "FAILURE"), 3),
    (("user.mfa.factor.activate", "SUCCESS"), 2),
    (("user.mfa.factor.deactivate", "SUCCESS"), 1),
    (("user.account.lock", "FAILURE"), 1),
    (("user.account.unlock", "SUCCESS"), 1),
    (("user.mfa.factor.suspend", "SUCCESS"), 1),  # no contract type: unmapped
    (("user.session.end", "SUCCESS"), 3),  # not MFA: unmapped
)
_OKTA_FACTORS = (
    ("OKTA_VERIFY_PUSH", 50),
    ("token:software:totp", 20),
    ("sms", 15),
    ("email", 5),
    ("webauthn", 10),
)
_OKTA_FACTOR_TYPES = frozenset(
    {
        "user.authentication.auth_via_mfa",
        "user.mfa.okta_verify.deny_push",
        "user.mfa.factor.activate",
        "user.mfa.factor.deactivate",
        "user.mfa.factor.suspend",
    }
)
_OKTA_FAILURES = {
    "user.session.start": (("INVALID_CREDENTIALS", 8), ("UNKNOWN_USER", 1), ("LOCKED_OUT", 1)),
    "user.authentication.auth_via_mfa": (("INVALID_CREDENTIALS", 1),),
    "user.account.lock": (("LOCKED_OUT", 1),),
    "system.sms.send_factor_verify_message": (("Provider error", 1),),
}
_OKTA_MESSAGES = {
    "user.session.start": "User login to Okta",
    "user.authentication.sso": "User single sign on to app",
    "policy.evaluate_sign_on": "Evaluation of sign-on policy",
    "user.authentication.auth_via_mfa": "Authentication of user via MFA",
    "user.account.lock": "Max sign in attempts exceeded",
}
_CITIES = (
    ("Dublin", "California", "United States", 37.7201, -121.919),
    ("New York", "New York", "United States", 40.7123, -74.0068),
    ("Berlin", "Land Berlin", "Germany", 52.5200, 13.4050),
)


def okta_records(count: int, *, seed: int = 13) -> list[dict[str, Any]]:
    """``count`` Okta LogEvents (System Log API shape, Elastic's sample's fields) of an MFA
    mix: sign-ins, policy challenges, factor deliveries and verifications, enrolments,
    locks."""
    draw = _Draw(seed)
    users = [
        {
            "id": "00u" + draw.token(17),
            "type": "User",
            "alternateId": f"user{n}@example.com",
            "displayName": f"User {n}",
        }
        for n in range(USERS)
    ]
    admin = {"id": "00u" + draw.token(17), "type": "User", "alternateId": "admin@example.com"}
    app = {"id": "0oa" + draw.token(17), "type": "AppInstance", "displayName": "Salesforce"}
    records = []
    for _ in range(count):
        event_type, result = draw.pick(_OKTA_TYPES)
        user = draw.rng.choice(users)
        failures = _OKTA_FAILURES.get(event_type) if result == "FAILURE" else None
        reason = draw.pick(failures) if failures else None
        actor: dict[str, Any] = user
        target: list[dict[str, Any]] | None = None
        if event_type == "user.authentication.sso":
            target = [app]
        elif event_type.startswith("user.mfa.factor.") or event_type == "user.account.unlock":
            target = [user]
            actor = admin if draw.rng.random() < 0.3 else user
        elif reason == "UNKNOWN_USER":
            actor = {"id": "unknown", "type": "User", "alternateId": f"nobody{user['id']}"}
        debug: dict[str, Any] = {
            "requestId": draw.token(27),
            "requestUri": "/api/v1/authn",
            "threatSuspected": "false",
            "url": "/api/v1/authn?",
        }
        if event_type in _OKTA_FACTOR_TYPES:
            debug["factor"] = draw.pick(_OKTA_FACTORS)
        city, state, country, lat, lon = draw.rng.choice(_CITIES)
        session = draw.token(25)
        records.append(
            {
                "actor": actor,
                "authenticationContext": {
                    "authenticationProvider": None,
                    "authenticationStep": 0,
                    "credentialProvider": None,
                    "credentialType": None,
                    "externalSessionId": session,
                    "interface": None,
                    "issuer": None,
                },
                "client": {
                    "device": "Computer",
                    "geographicalContext": {
                        "city": city,
                        "country": country,
                        "geolocation": {"lat": lat, "lon": lon},
                        "postalCode": None,
                        "state": state,
                    },
                    "id": None,
                    "ipAddress": draw.ip(),
                    "userAgent": {"browser": "CHROME", "os": "Windows", "rawUserAgent": AGENT},
                    "zone": "null",
                },
                "debugContext": {"debugData": debug},
                "displayMessage": _OKTA_MESSAGES.get(event_type, event_type),
                "eventType": event_type,
                "legacyEventType": None,
                "outcome": {"reason": reason, "result": result},
                "published": _iso(draw.tick()),
                "severity": "INFO" if result == "SUCCESS" else "WARN",
                "target": target,
                "transaction": {"detail": {}, "id": debug["requestId"], "type": "WEB"},
                "uuid": draw.uuid(),
                "version": "0",
            }
        )
    return records


# -- Keycloak -----------------------------------------------------------------------------

_ADMIN_UNLOCK = "DELETE attack-detection/brute-force/users/{userId}"
_KEYCLOAK_TYPES = (
    (("LOGIN", None), 40),
    (("LOGIN_ERROR", "invalid_user_credentials"), 14),
    (("LOGIN_ERROR", "user_not_found"), 3),
    (("LOGIN_ERROR", "user_temporarily_disabled"), 2),  # two events: a refused login, a lock
    (("UPDATE_TOTP", None), 3),
    (("UPDATE_TOTP_ERROR", "invalid_totp"), 1),
    (("REMOVE_TOTP", None), 1),
    (("USER_DISABLED_BY_TEMPORARY_LOCKOUT", None), 2),
    (("USER_DISABLED_BY_PERMANENT_LOCKOUT", None), 1),
    ((_ADMIN_UNLOCK, None), 1),
    (("CODE_TO_TOKEN", None), 10),  # not MFA: unmapped
    (("LOGOUT", None), 3),  # not MFA: unmapped
)
_KEYCLOAK_CLIENTS = ("account-console", "app-portal", "admin-cli")


def keycloak_records(count: int, *, seed: int = 17) -> list[dict[str, Any]]:
    """``count`` Keycloak events (the admin REST API's ``EventRepresentation``, and the
    ``AdminEventRepresentation`` of an unlock) of an MFA mix: logins and their errors,
    the authenticator app, the brute-force detector's lockouts, administrators' unlocks."""
    draw = _Draw(seed)
    users = [(draw.uuid(), f"user{n}") for n in range(USERS)]
    admin = draw.uuid()
    records: list[dict[str, Any]] = []
    for _ in range(count):
        (kind, error) = draw.pick(_KEYCLOAK_TYPES)
        user_id, username = draw.rng.choice(users)
        time = int(draw.tick().timestamp() * 1000)
        if kind == _ADMIN_UNLOCK:
            records.append(
                {
                    "time": time,
                    "realmId": "acme",
                    "authDetails": {
                        "realmId": "master",
                        "clientId": "security-admin-console",
                        "userId": admin,
                        "ipAddress": draw.ip(),
                    },
                    "operationType": "DELETE",
                    "resourceType": "USER_LOGIN_FAILURE",
                    "resourcePath": f"attack-detection/brute-force/users/{user_id}",
                }
            )
            continue
        session = draw.uuid()
        details: dict[str, Any] = {
            "auth_method": "openid-connect",
            "auth_type": "code",
            "redirect_uri": "https://app.acme.example/",
            "code_id": session,
            "username": username,
        }
        if kind.startswith("USER_DISABLED_BY_"):
            details = {"reason": "brute_force_attack detected", "num_failures": "5"}
            if kind == "USER_DISABLED_BY_TEMPORARY_LOCKOUT":
                until = draw.moment + timedelta(minutes=15)
                details["not_before"] = until.replace(tzinfo=None).isoformat(timespec="seconds")
        elif kind == "CODE_TO_TOKEN":
            details = {"grant_type": "authorization_code", "code_id": session}
        record: dict[str, Any] = {
            "id": draw.uuid(),
            "time": time,
            "type": kind,
            "realmId": "acme",
            "clientId": draw.rng.choice(_KEYCLOAK_CLIENTS),
            "userId": None if error == "user_not_found" else user_id,
            "ipAddress": draw.ip(),
            "details": details,
        }
        if error is None:
            record["sessionId"] = session
        else:
            record["error"] = error
        if error == "user_not_found":
            details["username"] = f"nobody{draw.rng.randrange(10_000)}"
        records.append(record)
    return records


# -- Microsoft Entra ID -------------------------------------------------------------------

_ENTRA_KINDS = (
    ("single_factor", 25),
    ("mfa", 30),
    ("previously_satisfied", 12),
    ("mfa_interrupt", 8),
    ("bad_password", 10),
    ("declined_push", 4),
    ("bad_code", 4),
    ("no_account", 2),
    ("locked", 1),
)
_ENTRA_METHODS = (
    ("Mobile app notification", 40),
    ("Authenticator App", 15),
    ("Software OATH token", 10),
    ("OATH verification code", 10),
    ("Text message", 12),
    ("SMS", 3),
    ("Voice", 3),
    ("FIDO2 security key", 7),
)
_ENTRA_RISKS = ("unlikelyTravel", "anonymizedIPAddress", "unfamiliarFeatures", "maliciousIPAddress")
_ENTRA_RISKY = 0.06
"""The share of sign-ins Entra ID Protection rated (low, medium or high): one more event."""

_GRAPH_SIGN_IN: dict[str, Any] = {
    "userDisplayName": "Test contoso",
    "appId": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
    "appDisplayName": "Azure Portal",
    "clientAppUsed": "Browser",
    "userAgent": AGENT,
    "conditionalAccessStatus": "notApplied",
    "authenticationProtocol": "oAuth2",
    "incomingTokenType": "none",
    "isInteractive": True,
    "homeTenantId": "99081087-73c4-48d1-a112-f60ff75114f7",
    "homeTenantName": "",
    "isTenantRestricted": False,
    "tokenIssuerName": "",
    "tokenIssuerType": "AzureAD",
    "processingTimeInMilliseconds": 761,
    "riskDetail": "none",
    "riskLevelAggregated": "none",
    "riskLevelDuringSignIn": "none",
    "riskState": "none",
    "riskEventTypes_v2": [],
    "resourceDisplayName": "Windows Azure Service Management API",
    "resourceId": "797f4846-ba00-4fd7-ba43-dac1f8f63013",
    "resourceTenantId": "99081087-73c4-48d1-a112-f60ff75114f7",
    "authenticationMethodsUsed": [],
    "authenticationRequirement": "singleFactorAuthentication",
    "signInEventTypes": ["interactiveUser"],
    "servicePrincipalId": "",
    "userType": "member",
    "flaggedForReview": False,
    "autonomousSystemNumber": 3598,
    "crossTenantAccessType": "none",
    "deviceDetail": {
        "deviceId": "",
        "displayName": "",
        "operatingSystem": "Windows 10",
        "browser": "Edge 120.0.2210",
        "isCompliant": False,
        "isManaged": False,
        "trustType": "",
    },
    "appliedConditionalAccessPolicies": [],
    "authenticationProcessingDetails": [{"key": "Login Hint Present", "value": "True"}],
    "networkLocationDetails": [],
    "authenticationRequirementPolicies": [],
    "sessionLifetimePolicies": [],
}
"""Microsoft Graph's sample sign-in (``signin-list.md``, Example 1), less what varies."""

_ENTRA_PLACES = (("Redmond", "Washington", "US"), ("Dublin", "Dublin", "IE"), ("Berlin", "", "DE"))


def entra_records(count: int, *, seed: int = 19) -> list[dict[str, Any]]:
    """``count`` Microsoft Graph ``signIn`` resources of an MFA mix: single-factor and MFA
    sign-ins, MFA satisfied earlier, MFA interrupts, wrong passwords, declined pushes,
    wrong codes, unknown accounts, locked accounts; a few rated risky."""
    draw = _Draw(seed)
    users = [(draw.uuid(), f"user{n}@contoso.com") for n in range(USERS)]
    records = []
    for _ in range(count):
        kind = draw.pick(_ENTRA_KINDS)
        user_id, principal = draw.rng.choice(users)
        moment = draw.tick()
        code, steps, requirement = _entra_steps(draw, kind, moment)
        city, state, country = draw.rng.choice(_ENTRA_PLACES)
        record = copy.deepcopy(_GRAPH_SIGN_IN)
        record.update(
            id=draw.uuid(),
            createdDateTime=_iso(moment, "seconds"),
            userPrincipalName=principal,
            userId="" if kind == "no_account" else user_id,
            signInIdentifier=principal,
            ipAddress=draw.ip(),
            correlationId=draw.uuid(),
            originalRequestId=draw.uuid(),
            uniqueTokenIdentifier=draw.token(48),
            status={"errorCode": code},
            location={
                "city": city,
                "state": state,
                "countryOrRegion": country,
                "geoCoordinates": {},
            },
            authenticationDetails=steps,
            authenticationRequirement=requirement,
        )
        if draw.rng.random() < _ENTRA_RISKY:
            record.update(
                riskLevelDuringSignIn=draw.rng.choice(("low", "medium", "high")),
                riskState="atRisk",
                riskEventTypes_v2=draw.rng.sample(_ENTRA_RISKS, draw.rng.randint(1, 2)),
            )
        records.append(record)
    return records


def _entra_steps(draw: _Draw, kind: str, moment: datetime) -> tuple[int, list[dict[str, Any]], str]:
    """A sign-in's error code, ``authenticationDetails`` and requirement, by kind."""

    def step(method: str, succeeded: bool, result: str, primary: bool = False) -> dict[str, Any]:
        return {
            "authenticationStepDateTime": _iso(moment, "seconds"),
            "authenticationMethod": method,
            "authenticationMethodDetail": "Password in the cloud" if primary else "",
            "succeeded": succeeded,
            "authenticationStepResultDetail": result,
            "authenticationStepRequirement": (
                "Primary authentication" if primary else "Multifactor authentication"
            ),
        }

    password_ok = step("Password", True, "Correct password", primary=True)
    wrong = "Invalid username or password or Invalid on-premise username or password."
    mfa, single = "multiFactorAuthentication", "singleFactorAuthentication"
    if kind == "single_factor":
        return 0, [password_ok], single
    if kind == "mfa":
        method = draw.pick(_ENTRA_METHODS)
        return 0, [password_ok, step(method, True, "MFA successfully completed")], mfa
    if kind == "previously_satisfied":
        earlier = step("Previously satisfied", True, "MFA requirement satisfied by claim in token")
        return 0, [password_ok, earlier], mfa
    if kind == "mfa_interrupt":
        return draw.rng.choice((50074, 50076)), [password_ok], mfa
    if kind == "declined_push":
        declined = "MFA denied; user declined the authentication"
        return 500121, [password_ok, step("Mobile app notification", False, declined)], mfa
    if kind == "bad_code":
        invalid = "MFA denied; invalid verification code"
        return 500121, [password_ok, step("Software OATH token", False, invalid)], mfa
    if kind == "bad_password":
        return 50126, [step("Password", False, wrong, primary=True)], single
    if kind == "no_account":
        return 50034, [step("Password", False, wrong, primary=True)], single
    return 50053, [], single  # locked
