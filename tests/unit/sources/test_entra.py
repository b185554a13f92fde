"""Microsoft Entra ID sign-ins mapped to the contract, from Microsoft's published shapes.

The sample is Microsoft Graph's own (api-reference/beta/api/signin-list.md in
github.com/microsoftgraph/microsoft-graph-docs-contrib, "Example 1: List all sign-ins");
the other records change it as the page named above each says: the ``signIn`` resource
(learn.microsoft.com/graph/api/resources/signin: ``riskLevelDuringSignIn``,
``riskEventTypes_v2``, ``status``), ``authenticationDetail`` (…/resources/
authenticationdetail: ``authenticationMethod`` values ``Password``, ``SMS``, ``Voice``,
``Authenticator App``, ``Software OATH token``, ``Satisfied by token``, ``Previously
satisfied``), the error codes (learn.microsoft.com/entra/identity-platform/
reference-error-codes) and the MFA results of the sign-in log (learn.microsoft.com/entra/
identity/authentication/howto-mfa-reporting; Microsoft Sentinel's "Explicit MFA Deny" rule).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import Event
from schemas.fields import Factor, Outcome, RiskLevel
from sources import Unmapped
from sources.entra import METHODS, EntraSource, map_record, map_records
from tests.unit.sources.fixtures import FUZZ, all_events, assert_sound, ids, json_values

SOURCE = EntraSource(
    tenant="acme", source="https://login.microsoftonline.com/99081087-73c4-48d1-a112-f60ff75114f7"
)

# Graph's "Example 1: List all sign-ins", the sign-in of its response, as it is
GRAPH_SIGN_IN: dict[str, Any] = {
    "id": "1691d37b-8579-43a7-966a-0f35583c1300",
    "createdDateTime": "2021-06-30T16:34:32Z",
    "userDisplayName": "Test contoso",
    "userPrincipalName": "testaccount1@contoso.com",
    "userId": "26be570a-1111-5555-b4e2-a37c6808512d",
    "appId": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
    "appDisplayName": "Azure Portal",
    "ipAddress": "131.107.159.37",
    "clientAppUsed": "Browser",
    "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/91.0.4472.114 Safari/537.36 Edg/91.0.864.54",
    "correlationId": "5d295068-919b-4017-85d8-44be2f5f5483",
    "conditionalAccessStatus": "notApplied",
    "originalRequestId": "7dccb0d7-1041-4d82-b785-d865272e1400",
    "authenticationProtocol": "oAuth2",
    "incomingTokenType": "Primary Refresh Token",
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
    "uniqueTokenIdentifier": "ZTE0OTk3YTQtZjg5Mi00YjBiLWIwNTEtZmViZTA1YzJhNDli",
    "signInIdentifier": "testaccount1@contoso.com",
    "signInEventTypes": ["interactiveUser"],
    "servicePrincipalId": "",
    "userType": "member",
    "flaggedForReview": False,
    "autonomousSystemNumber": 3598,
    "crossTenantAccessType": "none",
    "status": {
        "errorCode": 50126,
        "failureReason": "Error validating credentials due to invalid username or password.",
        "additionalDetails": "The user didn't enter the right credentials. \u00a0It's expected to "
        "see some number of these errors in your logs due to users making mistakes.",
    },
    "deviceDetail": {
        "deviceId": "",
        "displayName": "",
        "operatingSystem": "Windows 10",
        "browser": "Edge 91.0.864",
        "isCompliant": False,
        "isManaged": False,
        "trustType": "",
    },
    "location": {
        "city": "Redmond",
        "state": "Washington",
        "countryOrRegion": "US",
        "geoCoordinates": {},
    },
    "appliedConditionalAccessPolicies": [],
    "authenticationProcessingDetails": [{"key": "Login Hint Present", "value": "True"}],
    "networkLocationDetails": [{"networkType": "namedNetwork", "networkNames": ["North America"]}],
    "authenticationDetails": [
        {
            "authenticationStepDateTime": "2021-06-30T16:34:32Z",
            "authenticationMethod": "Password",
            "authenticationMethodDetail": "Password in the cloud",
            "succeeded": False,
            "authenticationStepResultDetail": "Invalid username or password or Invalid "
            "on-premise username or password.",
            "authenticationStepRequirement": "Primary authentication",
        }
    ],
    "authenticationRequirementPolicies": [],
    "sessionLifetimePolicies": [],
}

PASSWORD_OK = {
    **GRAPH_SIGN_IN["authenticationDetails"][0],
    "succeeded": True,
    "authenticationStepResultDetail": "Correct password",
}


def mfa_step(method: str, succeeded: bool, result: str) -> dict[str, Any]:
    return {
        "authenticationStepDateTime": "2021-06-30T16:34:40Z",
        "authenticationMethod": method,
        "succeeded": succeeded,
        "authenticationStepResultDetail": result,
        "authenticationStepRequirement": "Multifactor authentication",
    }


def sign_in(
    error_code: int = 0, steps: list[dict[str, Any]] | None = None, **fields: Any
) -> dict[str, Any]:
    """Graph's sample with another status, other steps and other fields."""
    sample = copy.deepcopy(GRAPH_SIGN_IN)
    sample["status"] = {"errorCode": error_code}
    if steps is not None:
        sample["authenticationDetails"] = steps
    return {**sample, **fields}


def mapped_all(sample: Any) -> list[Event]:
    return all_events(map_records(sample, SOURCE))


# -- the sign-in --------------------------------------------------------------------------


def test_graphs_sample_is_a_failed_first_factor_and_nothing_else() -> None:
    (event,) = mapped_all(GRAPH_SIGN_IN)  # no MFA step, riskLevelDuringSignIn none
    assert event.type == "auth.login.attempted"
    assert (event.subject, event.tenant) == ("26be570a-1111-5555-b4e2-a37c6808512d", "acme")
    assert event.time == datetime(2021, 6, 30, 16, 34, 32, tzinfo=UTC)
    assert event.correlationid == "5d295068-919b-4017-85d8-44be2f5f5483"
    data = event.data
    assert (data.outcome, data.method) == (Outcome.FAILURE, "Password")  # type: ignore[attr-defined]
    assert data.reason == "invalid_username_or_password"  # type: ignore[attr-defined]  # 50126
    assert (data.mfa_required, data.application) == (False, "Azure Portal")  # type: ignore[attr-defined]
    geo = data.client.geo  # type: ignore[attr-defined]
    assert (geo.country, geo.region, geo.city, geo.latitude) == (
        "US",
        "Washington",
        "Redmond",
        None,
    )
    assert data.client.user_agent.startswith("Mozilla/5.0")  # type: ignore[attr-defined]


def test_map_record_is_the_sign_ins_own_event() -> None:
    assert map_record(GRAPH_SIGN_IN, SOURCE) == map_records(GRAPH_SIGN_IN, SOURCE)[0]


def test_a_page_of_the_api_is_mapped_sign_in_by_sign_in() -> None:
    page = {
        "@odata.context": "https://graph.microsoft.com/beta/$metadata#auditLogs/signIns",
        "value": [GRAPH_SIGN_IN, sign_in()],
    }
    assert map_records(page, SOURCE) == [
        *map_records(GRAPH_SIGN_IN, SOURCE),
        *map_records(sign_in(), SOURCE),
    ]
    whole = map_record(page, SOURCE)
    assert isinstance(whole, Unmapped) and whole.reason == "batch"


def test_a_sign_in_of_no_account_has_an_unknown_subject_and_keeps_the_name() -> None:
    # AADSTS50034 UserAccountNotFound: "the user mis-typed their username, or isn't in the tenant"
    (event,) = mapped_all(sign_in(50034, userId="", userPrincipalName="nobody@contoso.com"))
    assert event.subject == "unknown"
    assert event.data.reason == "user_account_not_found"  # type: ignore[attr-defined]
    assert event.data.attempted_name == "nobody@contoso.com"  # type: ignore[attr-defined]


def test_ids_locked_is_a_refused_sign_in_not_a_lock_report() -> None:
    # AADSTS50053 IdsLocked: "The account is locked because the user tried to sign in too many
    # times with an incorrect user ID or password" (or, the page adds, a malicious IP)
    (event,) = mapped_all(sign_in(50053, steps=[]))
    assert (event.type, event.data.outcome, event.data.reason) == (  # type: ignore[attr-defined]
        "auth.login.attempted",
        Outcome.FAILURE,
        "locked_out",
    )


def test_an_mfa_interrupt_without_steps_passed_the_first_factor() -> None:
    # AADSTS50076 UserStrongAuthClientAuthNRequired: the user must use MFA to go on
    sample = sign_in(50076, steps=[], authenticationRequirement="multiFactorAuthentication")
    (event,) = mapped_all(sample)
    assert (event.data.outcome, event.data.mfa_required) == (Outcome.SUCCESS, True)  # type: ignore[attr-defined]


# -- the MFA steps ------------------------------------------------------------------------


def test_a_completed_mfa_step_is_a_verification_of_the_factor_named() -> None:
    # howto-mfa-reporting: "MFA successfully completed"
    steps = [PASSWORD_OK, mfa_step("Mobile app notification", True, "MFA successfully completed")]
    login, mfa = mapped_all(
        sign_in(0, steps, authenticationRequirement="multiFactorAuthentication")
    )
    assert (login.type, login.data.outcome, login.data.mfa_required) == (  # type: ignore[attr-defined]
        "auth.login.attempted",
        Outcome.SUCCESS,
        True,
    )
    assert (mfa.type, mfa.data.factor) == ("mfa.verification.succeeded", Factor.PUSH)  # type: ignore[attr-defined]
    assert login.correlationid == mfa.correlationid and login.id != mfa.id


def test_a_declined_notification_is_a_push_rejection() -> None:
    # Microsoft Sentinel "Explicit MFA Deny": ResultType 500121 and "MFA denied; user declined
    # the authentication"
    steps = [
        PASSWORD_OK,
        mfa_step("Mobile app notification", False, "MFA denied; user declined the authentication"),
    ]
    login, mfa = mapped_all(sign_in(500121, steps))
    assert login.data.outcome is Outcome.SUCCESS  # type: ignore[attr-defined]  # the password was right
    assert (mfa.type, mfa.data.reason) == ("mfa.push.rejected", "user_rejected")  # type: ignore[attr-defined]


def test_a_failed_code_is_a_failed_verification_with_the_sign_ins_error() -> None:
    # authenticationDetail: "Software OATH token"; 500121 "Authentication failed during strong
    # authentication request"
    steps = [
        PASSWORD_OK,
        mfa_step("Software OATH token", False, "MFA denied; invalid verification code"),
    ]
    _, mfa = mapped_all(sign_in(500121, steps))
    assert mfa.type == "mfa.verification.failed"
    assert (mfa.data.factor, mfa.data.reason) == (Factor.TOTP, "error_500121")  # type: ignore[attr-defined]


def test_a_method_graph_does_not_resolve_leaves_the_factor_unknown() -> None:
    # "Authenticator App" is a notification or a code: Graph does not say which
    steps = [PASSWORD_OK, mfa_step("Authenticator App", True, "MFA successfully completed")]
    _, mfa = mapped_all(sign_in(0, steps))
    assert mfa.data.factor is Factor.UNKNOWN  # type: ignore[attr-defined]


def test_an_mfa_requirement_satisfied_earlier_is_no_verification() -> None:
    # authenticationDetail: "Previously satisfied"
    steps = [
        PASSWORD_OK,
        {
            **mfa_step(
                "Previously satisfied", True, "MFA requirement satisfied by claim in the token"
            )
        },
    ]
    (event,) = mapped_all(sign_in(0, steps))
    assert event.type == "auth.login.attempted"


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_named_is_a_factor(method: str) -> None:
    _, mfa = mapped_all(
        sign_in(0, [PASSWORD_OK, mfa_step(method, True, "MFA successfully completed")])
    )
    assert mfa.data.factor is METHODS[method][0]  # type: ignore[attr-defined]


# -- risk ---------------------------------------------------------------------------------


def test_a_risky_sign_in_is_entras_risk_report_with_its_types_in_snake_case() -> None:
    # signIn: riskLevelDuringSignIn low/medium/high; riskEventTypes_v2 unlikelyTravel,
    # anonymizedIPAddress, …
    sample = sign_in(
        0,
        [PASSWORD_OK],
        riskLevelDuringSignIn="high",
        riskEventTypes_v2=["unlikelyTravel", "anonymizedIPAddress"],
    )
    login, risk = mapped_all(sample)
    assert risk.type == "idp.risk.reported"
    data = risk.data
    assert (data.provider, data.level) == ("entra", RiskLevel.HIGH)  # type: ignore[attr-defined]
    assert data.risk_types == ["anonymized_ip_address", "unlikely_travel"]  # type: ignore[attr-defined]
    assert risk.subject == login.subject


@pytest.mark.parametrize("level", ["none", "hidden", "unknownFutureValue"])
def test_no_verdict_is_no_risk_report(level: str) -> None:
    # "hidden": the sign-in was not enabled for Identity Protection (no P2 licence)
    (event,) = mapped_all(sign_in(0, [PASSWORD_OK], riskLevelDuringSignIn=level))
    assert event.type == "auth.login.attempted"


# -- defects, ids -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "reason"),
    [
        (42, "not_an_object"),
        ({**GRAPH_SIGN_IN, "id": None}, "missing_record_id"),
        ({**GRAPH_SIGN_IN, "createdDateTime": "2021-06-30T16:34:32"}, "invalid_date"),
        ({**GRAPH_SIGN_IN, "status": {}}, "missing_status"),
        (sign_in(0, userId=None), "missing_subject"),
        (sign_in(0, userId="00000000-0000-0000-0000-000000000000"), "missing_subject"),
    ],
)
def test_defective_records_are_unmapped_with_the_reason(sample: Any, reason: str) -> None:
    (result,) = map_records(sample, SOURCE)
    assert isinstance(result, Unmapped) and result.reason == reason


def test_a_record_the_contract_refuses_is_unmapped_not_raised() -> None:
    results = map_records(GRAPH_SIGN_IN, EntraSource(tenant="not a tenant!", source=SOURCE.source))
    assert [result.reason for result in results] == ["invalid_record"]  # type: ignore[union-attr]


def test_the_same_sign_in_twice_is_the_same_events() -> None:
    sample = sign_in(
        500121, [PASSWORD_OK, mfa_step("SMS", False, "x")], riskLevelDuringSignIn="low"
    )
    first, again = mapped_all(sample), mapped_all(copy.deepcopy(sample))
    assert [event.id for event in first] == [event.id for event in again]
    assert len({event.id for event in first}) == 3  # one id per role


def test_ids_differ_by_source() -> None:
    (elsewhere,) = map_records(
        GRAPH_SIGN_IN, EntraSource("acme", "https://login.microsoftonline.com/other")
    )
    assert not isinstance(elsewhere, Unmapped)
    assert elsewhere.id != mapped_all(GRAPH_SIGN_IN)[0].id


# -- any JSON value -----------------------------------------------------------------------

steps = st.fixed_dictionaries(
    {},
    optional={
        "authenticationMethod": st.sampled_from([*METHODS, "Password", "Previously satisfied"])
        | json_values,
        "succeeded": st.booleans() | json_values,
        "authenticationStepResultDetail": st.text(max_size=80) | json_values,
        "authenticationStepRequirement": st.sampled_from(
            ["Primary authentication", "Multifactor authentication"]
        )
        | json_values,
    },
)
sign_ins = st.fixed_dictionaries(
    {},
    optional={
        "id": ids | json_values,
        "createdDateTime": st.datetimes(timezones=st.timezones()).map(datetime.isoformat)
        | json_values,
        "userId": ids | st.just("") | json_values,
        "userPrincipalName": st.text(max_size=400) | json_values,
        "status": st.fixed_dictionaries({"errorCode": st.integers() | json_values}) | json_values,
        "authenticationDetails": st.lists(steps, max_size=3) | json_values,
        "authenticationRequirement": st.sampled_from(["multiFactorAuthentication", "x"])
        | json_values,
        "riskLevelDuringSignIn": st.sampled_from(["low", "high", "none", "hidden"]) | json_values,
        "riskEventTypes_v2": st.lists(st.text(max_size=70) | json_values, max_size=3) | json_values,
        "riskDetail": st.text(max_size=1100) | json_values,
        "ipAddress": st.ip_addresses().map(str) | json_values,
        "location": st.fixed_dictionaries(
            {},
            optional={
                "countryOrRegion": st.sampled_from(["US", "us", ""]) | json_values,
                "geoCoordinates": st.fixed_dictionaries(
                    {"latitude": st.floats(), "longitude": st.floats()}
                ),
            },
        )
        | json_values,
        "correlationId": ids | json_values,
    },
)


@FUZZ
@given(
    sample=sign_ins | st.fixed_dictionaries({"value": st.lists(sign_ins, max_size=2)}) | json_values
)
def test_any_json_value_is_events_the_codec_takes_or_unmapped_with_a_reason(sample: Any) -> None:
    results = map_records(sample, SOURCE)
    assert results == map_records(sample, SOURCE)  # deterministic, no clock
    assert results or sample in ([], {"value": []})  # only nothing becomes nothing
    assert_sound(results, "entra")
    assert_sound([map_record(sample, SOURCE)], "entra")
