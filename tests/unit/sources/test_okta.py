"""Okta System Log events mapped to the contract, from Okta's published LogEvent shapes.

The LogEvent's shape (``uuid``, ``published``, ``eventType``, ``actor``, ``client``,
``outcome``, ``target``, ``authenticationContext``, ``debugContext.debugData``) is Okta's
System Log API reference (developer.okta.com/docs/reference/api/system-log/, the LogEvent
object); the samples below are the Event Hooks guide's delivery and Elastic's Okta
integration test log, and each other record names the page its event type, outcome and
fields come from.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import Event, decode, encode
from schemas.fields import Channel, Factor, LockoutScope, Outcome
from schemas.registry import BY_NAME
from sources import Unmapped
from sources.okta import (
    CONTRACT_GAPS,
    EVENT_TYPES,
    NO_CONTRACT_TYPE,
    OktaSource,
    map_record,
    map_records,
)
from tests.unit.sources.fixtures import FUZZ, assert_sound, ids, json_values

SOURCE = OktaSource(tenant="acme", source="https://acme.okta.com/")

# https://developer.okta.com/docs/concepts/event-hooks/ ("Sample Event Delivery Payload"),
# the one LogEvent of the delivery, as it is
HOOK_EVENT: dict[str, Any] = {
    "version": "0",
    "severity": "INFO",
    "client": {
        "zone": "OFF_NETWORK",
        "device": "Unknown",
        "userAgent": {"os": "Unknown", "browser": "UNKNOWN", "rawUserAgent": "UNKNOWN-DOWNLOAD"},
        "ipAddress": "12.97.85.90",
    },
    "actor": {
        "id": "00u1qw6mqitPHM8AJ0g7",
        "type": "User",
        "alternateId": "admin@example.com",
        "displayName": "Example Admin",
    },
    "outcome": {"result": "SUCCESS"},
    "uuid": "f790999f-fe87-467a-9880-6982a583986c",
    "published": "2018-03-28T22:23:07.777Z",
    "eventType": "user.session.start",
    "displayMessage": "User login to Okta",
    "transaction": {"type": "WEB", "id": "V04Oy4ubUOc5UuG6s9DyNQAABtc"},
    "legacyEventType": "core.user_auth.login_success",
    "authenticationContext": {
        "authenticationStep": 0,
        "externalSessionId": "1013FfF-DKQSvCI4RVXChzX-w",
    },
}
HOOK_DELIVERY: dict[str, Any] = {
    "eventType": "com.okta.event_hook",
    "eventTypeVersion": "1.0",
    "cloudEventsVersion": "0.1",
    "contentType": "application/json",
    "eventId": "b5a188b9-5ece-4636-b041-482ffda96311",
    "eventTime": "2019-03-27T16:59:53.032Z",
    "source": "https://{yourOktaDomain}/api/v1/eventHooks/whoql0HfiLGPWc8Jx0g3",
    "data": {"events": [HOOK_EVENT]},
}

# https://github.com/elastic/integrations/blob/main/packages/okta/data_stream/system/_dev/test/pipeline/test-okta-system-events.log
# (its user.session.start line: client with geographicalContext, a debugData, the session)
ELASTIC_SESSION_START: dict[str, Any] = {
    "actor": {
        "alternateId": "xxxxxx@elastic.co",
        "detailEntry": None,
        "displayName": "xxxxxx",
        "id": "00u1abvz4pYqdM8ms4x6",
        "type": "User",
    },
    "authenticationContext": {
        "authenticationProvider": None,
        "authenticationStep": 0,
        "credentialProvider": None,
        "credentialType": None,
        "externalSessionId": "102bZDNFfWaQSyEZQuDgWt-uQ",
        "interface": None,
        "issuer": None,
    },
    "client": {
        "device": "Computer",
        "geographicalContext": {
            "city": "Dublin",
            "country": "United States",
            "geolocation": {"lat": 37.7201, "lon": -121.919},
            "postalCode": "94568",
            "state": "California",
        },
        "id": None,
        "ipAddress": "175.16.199.1",
        "userAgent": {
            "browser": "FIREFOX",
            "os": "Mac OS X",
            "rawUserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:72.0) "
            "Gecko/20100101 Firefox/72.0",
        },
        "zone": "null",
    },
    "debugContext": {
        "debugData": {
            "deviceFingerprint": "541daf91d15bef64a7e08c946fd9a9d0",
            "requestId": "XkcAsWb8WjwDP76xh@1v8wAABp0",
            "requestUri": "/api/v1/authn",
            "threatSuspected": "false",
            "url": "/api/v1/authn?",
        }
    },
    "displayMessage": "User login to Okta",
    "eventType": "user.session.start",
    "legacyEventType": "core.user_auth.login_success",
    "outcome": {"reason": None, "result": "SUCCESS"},
    "published": "2020-02-14T20:18:57.718Z",
    "severity": "INFO",
    "target": None,
    "transaction": {"detail": {}, "id": "XkcAsWb8WjwDP76xh@1v8wAABp0", "type": "WEB"},
    "uuid": "3aeede38-4f67-11ea-abd3-1f5d113f2546",
    "version": "0",
}

USER = {"id": "00u1abvz4pYqdM8ms4x6", "type": "User", "alternateId": "jane@example.com"}
ADMIN = {"id": "00u9admin00000000000", "type": "User", "alternateId": "admin@example.com"}


def log_event(event_type: str, result: str | None = "SUCCESS", **fields: Any) -> dict[str, Any]:
    """A LogEvent of the Elastic sample's shape with another type, outcome and fields."""
    outcome = {"result": result, "reason": fields.pop("reason", None)}
    return {**ELASTIC_SESSION_START, "eventType": event_type, "outcome": outcome, **fields}


def mapped(sample: Any) -> Event:
    event = map_record(sample, SOURCE)
    assert not isinstance(event, Unmapped), event
    assert decode(encode(event)) == event
    return event


# -- sign-ins -----------------------------------------------------------------------------


def test_the_event_hook_samples_session_start_is_a_successful_login() -> None:
    event = mapped(HOOK_EVENT)
    assert event.type == "auth.login.attempted"
    assert (event.subject, event.tenant, event.source) == (
        "00u1qw6mqitPHM8AJ0g7",
        "acme",
        "https://acme.okta.com/",
    )
    assert event.time == datetime(2018, 3, 28, 22, 23, 7, 777000, tzinfo=UTC)
    assert event.correlationid == "1013FfF-DKQSvCI4RVXChzX-w"  # Okta's session
    data = event.data
    assert (data.outcome, data.method, data.reason) == (Outcome.SUCCESS, "okta", None)  # type: ignore[attr-defined]
    assert data.client.ip == "12.97.85.90"  # type: ignore[attr-defined]


def test_an_event_hook_delivery_is_mapped_event_by_event() -> None:
    assert map_records(HOOK_DELIVERY, SOURCE) == [map_record(HOOK_EVENT, SOURCE)]
    whole = map_record(HOOK_DELIVERY, SOURCE)
    assert isinstance(whole, Unmapped) and whole.reason == "batch"


def test_a_page_of_the_system_log_api_is_mapped_event_by_event() -> None:
    # GET /api/v1/logs answers a JSON array of LogEvents
    page = [HOOK_EVENT, ELASTIC_SESSION_START]
    assert map_records(page, SOURCE) == [map_record(item, SOURCE) for item in page]


def test_the_client_and_where_okta_places_it() -> None:
    geo = mapped(ELASTIC_SESSION_START).data.client.geo  # type: ignore[attr-defined]
    assert (geo.region, geo.city, geo.latitude, geo.longitude) == (
        "California",
        "Dublin",
        37.7201,
        -121.919,
    )
    assert geo.country is None  # Okta gives "United States", not an ISO code: not guessed
    assert geo.source == "okta"


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        # https://support.okta.com/help/s/article/common-okta-login-failures (INVALID_CREDENTIALS,
        # LOCKED_OUT, VERIFICATION_ERROR as outcome.reason of failed sign-ins)
        ("INVALID_CREDENTIALS", "invalid_credentials"),
        ("LOCKED_OUT", "locked_out"),
        ("VERIFICATION_ERROR", "verification_error"),
        ("Sign-in failed: a reason Okta writes as a sentence", "failed"),
    ],
)
def test_a_failed_session_start_keeps_oktas_reason(reason: str, expected: str) -> None:
    event = mapped(log_event("user.session.start", "FAILURE", reason=reason))
    data = event.data
    assert (data.outcome, data.reason) == (Outcome.FAILURE, expected)  # type: ignore[attr-defined]
    assert data.attempted_name is None  # type: ignore[attr-defined]


def test_a_sign_in_of_an_unknown_user_has_an_unknown_subject_and_keeps_the_name() -> None:
    # https://support.okta.com/help/s/article/common-okta-login-failures ("UNKNOWN_USER: The
    # system cannot find the user attempting to authenticate")
    actor = {"id": "unknown", "type": "User", "alternateId": "nobody@example.com"}
    event = mapped(log_event("user.session.start", "FAILURE", reason="UNKNOWN_USER", actor=actor))
    assert event.subject == "unknown"
    assert event.data.reason == "unknown_user"  # type: ignore[attr-defined]
    assert event.data.attempted_name == "nobody@example.com"  # type: ignore[attr-defined]


def test_user_authentication_sso_is_a_login_to_the_application_named() -> None:
    # https://docs.axonius.com/docs/okta-user-auth-category-events ("user.authentication.sso: A
    # user attempted single sign-on (SSO) … created even when the sign-on is unsuccessful");
    # the application is the AppInstance target
    app = {"id": "0oa1abc", "type": "AppInstance", "displayName": "Salesforce"}
    event = mapped(log_event("user.authentication.sso", target=[app]))
    assert event.type == "auth.login.attempted"
    assert (event.data.method, event.data.application) == ("sso", "Salesforce")  # type: ignore[attr-defined]


def test_a_sign_on_policy_challenge_is_mfa_required() -> None:
    # Elastic's sample log has policy.evaluate_sign_on (outcome ALLOW); Okta's event type
    # catalog gives its outcomes ALLOW, CHALLENGE (a further factor asked for) and DENY
    event = mapped(log_event("policy.evaluate_sign_on", "CHALLENGE"))
    assert (event.type, event.data.required) == ("mfa.required", True)  # type: ignore[attr-defined]
    allowed = map_record(log_event("policy.evaluate_sign_on", "ALLOW"), SOURCE)
    assert isinstance(allowed, Unmapped) and allowed.reason == "outcome_not_mapped"


# -- factors: enrolment -------------------------------------------------------------------


def test_user_mfa_factor_activate_is_enrollment_completed_of_the_target_user() -> None:
    # https://help.okta.com/wf/en-us/Content/Topics/workflows/connector-reference/oktadevices/events/usermfafactoractivated.htm
    # (user.mfa.factor.activate: the admin acting, the Okta user whose factor it is)
    debug = {"debugData": {"factor": "OKTA_VERIFY_PUSH"}}
    event = mapped(
        log_event("user.mfa.factor.activate", actor=ADMIN, target=[USER], debugContext=debug)
    )
    assert event.type == "mfa.enrollment.completed"
    assert event.subject == USER["id"]
    data = event.data
    assert (data.factor, data.channel) == (Factor.PUSH, Channel.PUSH)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("event_type", "reason", "factor"),
    [
        # https://help.okta.com/wf/en-us/Content/Topics/workflows/connector-reference/oktadevices/events/usermfafactordeactivated.htm
        ("user.mfa.factor.deactivate", "deactivated", Factor.SMS),
        # https://docs.axonius.com/docs/okta-user-auth-category-events ("user.mfa.factor.reset_all:
        # All of a user's multifactor authentication (MFA) factors were reset"): no one factor
        ("user.mfa.factor.reset_all", "reset_all", Factor.UNKNOWN),
    ],
)
def test_deactivated_and_reset_factors_are_enrollment_removed(
    event_type: str, reason: str, factor: Factor
) -> None:
    debug = {"debugData": {"factor": "sms"}}
    event = mapped(log_event(event_type, actor=ADMIN, target=[USER], debugContext=debug))
    assert event.type == "mfa.enrollment.removed"
    data = event.data
    assert (data.reason, data.factor) == (reason, factor)  # type: ignore[attr-defined]
    assert data.removed_by == ADMIN["id"]  # type: ignore[attr-defined]


# -- challenges and verifications ---------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "channel"),
    [
        # https://support.okta.com/help/s/article/User-Signin-and-Recovery-Events-in-the-Okta-System-Log
        # (the MFA deliveries of a sign-in: push, e-mail, SMS and voice, and the phone
        # verification messages and calls)
        ("system.push.send_factor_verify_push", Channel.PUSH),
        ("system.email.send_factor_verify_message", Channel.EMAIL),
        ("system.sms.send_factor_verify_message", Channel.SMS),
        ("system.sms.send_phone_verification_message", Channel.SMS),
        ("system.voice.send_mfa_challenge_call", Channel.VOICE),
        ("system.voice.send_phone_verification_call", Channel.VOICE),
    ],
)
def test_deliveries_are_challenge_sent_and_failed_ones_delivery_failed(
    event_type: str, channel: Channel
) -> None:
    sent = mapped(log_event(event_type))
    assert sent.type == "mfa.challenge.sent"
    assert (sent.data.channel, sent.data.provider) == (channel, "okta")  # type: ignore[attr-defined]
    assert sent.data.factor.value == channel.value  # type: ignore[attr-defined]
    failed = mapped(log_event(event_type, "FAILURE", reason="Provider error"))
    assert failed.type == "mfa.challenge.delivery_failed"
    assert failed.data.provider_error == "Provider error"  # type: ignore[attr-defined]
    assert failed.data.reason == "delivery_failed"  # type: ignore[attr-defined]


def test_auth_via_mfa_success_names_the_factor_okta_names() -> None:
    # https://research.splunk.com/application/ (Okta Mismatch Between Source and Response for
    # Verify Push Request: user.authentication.auth_via_mfa with the factor OKTA_VERIFY_PUSH
    # in debugContext.debugData.factor)
    debug = {"debugData": {"factor": "OKTA_VERIFY_PUSH", "factorIntent": "AUTHENTICATION"}}
    event = mapped(log_event("user.authentication.auth_via_mfa", debugContext=debug))
    assert event.type == "mfa.verification.succeeded"
    assert event.data.factor is Factor.PUSH  # type: ignore[attr-defined]


def test_a_failed_auth_via_mfa_is_verification_failed_with_an_unknown_factor_if_unnamed() -> None:
    # https://help.okta.com/oie/en-us/Content/Topics/Reports/suspicious-activity-report.htm
    # ("Failed ${factor} factor attempt: user.authentication.auth_via_mfa … outcome.result eq
    # FAILURE"); the record need not name the factor
    event = mapped(
        log_event("user.authentication.auth_via_mfa", "FAILURE", reason="INVALID_CREDENTIALS")
    )
    assert event.type == "mfa.verification.failed"
    data = event.data
    assert (data.factor, data.reason) == (Factor.UNKNOWN, "invalid_credentials")  # type: ignore[attr-defined]


def test_the_credential_type_names_sms_and_email() -> None:
    # LogEvent authenticationContext.credentialType (LogCredentialType: OTP, SMS, PASSWORD,
    # ASSERTION, IWA, EMAIL, …), https://developer.okta.com/docs/reference/api/system-log/
    context = {**ELASTIC_SESSION_START["authenticationContext"], "credentialType": "SMS"}
    event = mapped(log_event("user.authentication.auth_via_mfa", authenticationContext=context))
    assert event.data.factor is Factor.SMS  # type: ignore[attr-defined]


def test_an_attempt_to_bypass_mfa_is_a_failed_verification() -> None:
    # https://help.okta.com/en-us/Content/Topics/Reports/suspicious-activity-report.htm
    # (user.mfa.attempt_bypass with outcome SUCCESS is suspicious activity)
    event = mapped(log_event("user.mfa.attempt_bypass"))
    assert event.type == "mfa.verification.failed"
    assert (event.data.factor, event.data.reason) == (Factor.UNKNOWN, "bypass_attempt")  # type: ignore[attr-defined]


def test_a_denied_okta_verify_push_is_push_rejected() -> None:
    # https://github.com/elastic/detection-rules hunting query "Rapid MFA Deny Push
    # Notifications (MFA Bombing)": event.action user.mfa.okta_verify.deny_push
    event = mapped(log_event("user.mfa.okta_verify.deny_push", "FAILURE"))
    assert event.type == "mfa.push.rejected"
    assert event.data.reason == "user_rejected"  # type: ignore[attr-defined]


# -- locks --------------------------------------------------------------------------------

# Google SecOps SDK (github.com/google/secops-wrapper), its OKTA parser test log: a
# user.account.lock as Okta writes it
ACCOUNT_LOCK: dict[str, Any] = {
    "actor": {
        "alternateId": "mark.taylor@cymbal-investments.org",
        "displayName": "Mark Taylor",
        "id": "00u4j7xcb5N6zfiRP5d8",
        "type": "User",
    },
    "client": {
        "userAgent": {
            "rawUserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/112.0.0.0 Safari/537.36",
            "os": "Windows 10",
            "browser": "CHROME",
        },
        "ipAddress": "96.6.127.53",
        "geographicalContext": {
            "city": "New York",
            "state": "New York",
            "country": "United States",
            "postalCode": "10118",
            "geolocation": {"lat": 40.7123, "lon": -74.0068},
        },
    },
    "displayMessage": "Max sign in attempts exceeded",
    "eventType": "user.account.lock",
    "outcome": {"result": "FAILURE", "reason": "LOCKED_OUT"},
    "published": "2025-06-19T21:51:50.116Z",
    "securityContext": {
        "asNumber": 20940,
        "asOrg": "akamai technologies inc.",
        "isp": "akamai international b.v.",
        "domain": "akamaitechnologies.com",
        "isProxy": False,
    },
    "severity": "DEBUG",
    "legacyEventType": "core.user_auth.account_locked",
    "uuid": "5b90a94a-d7ba-11ea-834a-85c24a1b2121",
    "version": "0",
}


def test_user_account_lock_is_oktas_report_of_a_subject_lock() -> None:
    event = mapped(ACCOUNT_LOCK)
    assert (event.type, event.subject) == ("idp.lock.reported", "00u4j7xcb5N6zfiRP5d8")
    data = event.data
    assert (data.provider, data.scope, data.reason) == ("okta", LockoutScope.SUBJECT, "locked_out")  # type: ignore[attr-defined]
    assert data.detail == "Max sign in attempts exceeded"  # type: ignore[attr-defined]
    assert data.locked_until is None  # type: ignore[attr-defined]  # Okta does not say
    assert data.client.ip == "96.6.127.53"  # type: ignore[attr-defined]


def test_user_account_lock_limit_is_a_subject_lock_too() -> None:
    # https://developer.okta.com/docs/reference/api/event-types/ (user.account.lock.limit);
    # https://help.okta.com/en-us/Content/Topics/Reports/suspicious-activity-report.htm
    event = mapped({**ACCOUNT_LOCK, "eventType": "user.account.lock.limit"})
    assert (event.type, event.data.reason) == ("idp.lock.reported", "lock_limit")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("event_type", "reason", "actor"),
    [
        # https://help.okta.com/wf/en-us/Content/Topics/Workflows/connector-reference/okta/events/useraccountunlocked.htm
        ("user.account.unlock", "unlocked", USER),
        # https://help.okta.com/wf/en-us/Content/Topics/Workflows/connector-reference/okta/events/useraccountunlockedbyadmin.htm
        ("user.account.unlock_by_admin", "unlocked_by_admin", ADMIN),
    ],
)
def test_unlocks_are_oktas_report_of_an_unlock(
    event_type: str, reason: str, actor: dict[str, str]
) -> None:
    event = mapped(log_event(event_type, actor=actor, target=[USER]))
    assert (event.type, event.subject) == ("idp.unlock.reported", USER["id"])
    assert (event.data.scope, event.data.reason) == (LockoutScope.SUBJECT, reason)  # type: ignore[attr-defined]


# -- what is not mapped, and why ----------------------------------------------------------


@pytest.mark.parametrize("event_type", sorted(CONTRACT_GAPS))
def test_contract_gaps_are_unmapped_with_the_reason(event_type: str) -> None:
    result = map_record(log_event(event_type), SOURCE)
    assert isinstance(result, Unmapped)
    assert (result.reason, result.record_type) == ("contract_gap", event_type)
    assert result.record_id == ELASTIC_SESSION_START["uuid"] and result.detail


@pytest.mark.parametrize("event_type", [*sorted(NO_CONTRACT_TYPE), "user.session.end"])
def test_other_types_are_unmapped_not_dropped(event_type: str) -> None:
    result = map_record(log_event(event_type), SOURCE)
    assert isinstance(result, Unmapped)
    assert result.reason == ("no_contract_type" if event_type in NO_CONTRACT_TYPE else "not_mfa")


@pytest.mark.parametrize(
    ("sample", "reason"),
    [
        ("a string", "not_an_object"),
        ({**HOOK_EVENT, "uuid": None}, "missing_record_id"),
        ({**HOOK_EVENT, "eventType": 7}, "missing_type"),
        ({**HOOK_EVENT, "published": "2018-03-28T22:23:07"}, "invalid_date"),  # no offset
        ({**HOOK_EVENT, "actor": {"type": "PublicClientApp", "id": "x"}}, "missing_subject"),
        ({**HOOK_EVENT, "outcome": None}, "outcome_not_mapped"),
    ],
)
def test_defective_records_are_unmapped_with_the_reason(sample: Any, reason: str) -> None:
    result = map_record(sample, SOURCE)
    assert isinstance(result, Unmapped) and result.reason == reason


def test_a_record_the_contract_refuses_is_unmapped_not_raised() -> None:
    result = map_record(HOOK_EVENT, OktaSource(tenant="not a tenant!", source=SOURCE.source))
    assert isinstance(result, Unmapped) and result.reason == "invalid_record"


# -- ids ----------------------------------------------------------------------------------


def test_the_same_record_twice_is_the_same_event() -> None:
    assert mapped(ACCOUNT_LOCK).id == mapped(dict(ACCOUNT_LOCK)).id


def test_ids_differ_by_uuid_and_by_source() -> None:
    one = mapped(HOOK_EVENT)
    other = mapped({**HOOK_EVENT, "uuid": "another-uuid"})
    elsewhere = map_record(HOOK_EVENT, OktaSource("acme", "https://other.okta.com/"))
    assert not isinstance(elsewhere, Unmapped)
    assert len({one.id, other.id, elsewhere.id}) == 3


@pytest.mark.parametrize(
    ("event_type", "outcome"),
    [(kind, outcome) for kind, by_outcome in sorted(EVENT_TYPES.items()) for outcome in by_outcome],
)
def test_every_mapping_is_a_type_an_adapter_may_say(event_type: str, outcome: str) -> None:
    result = "SUCCESS" if outcome == "*" else outcome
    event = mapped(log_event(event_type, result, target=[USER]))
    assert not BY_NAME[event.type].derived


# -- any JSON value -----------------------------------------------------------------------

users = st.fixed_dictionaries(
    {},
    optional={
        "id": ids | st.just("unknown") | json_values,
        "type": st.sampled_from(["User", "AppInstance", "AuthenticatorEnrollment"]) | json_values,
        "alternateId": st.text(max_size=400) | json_values,
        "displayName": st.text(max_size=200) | json_values,
    },
)
fields = {
    "uuid": ids | json_values,
    "published": st.datetimes(timezones=st.timezones()).map(datetime.isoformat) | json_values,
    "eventType": st.sampled_from([*EVENT_TYPES, *CONTRACT_GAPS, "user.session.end"]) | json_values,
    "outcome": st.fixed_dictionaries(
        {},
        optional={
            "result": st.sampled_from(["SUCCESS", "FAILURE", "CHALLENGE", "success"]) | json_values,
            "reason": st.sampled_from(["UNKNOWN_USER", "LOCKED_OUT"]) | st.text(max_size=80),
        },
    )
    | json_values,
    "actor": users | json_values,
    "target": st.lists(users, max_size=3) | json_values,
    "client": st.fixed_dictionaries(
        {},
        optional={
            "ipAddress": st.ip_addresses().map(str) | json_values,
            "userAgent": st.fixed_dictionaries(
                {"rawUserAgent": st.text(max_size=30) | json_values}
            ),
            "geographicalContext": st.dictionaries(
                st.sampled_from(["city", "state", "country", "geolocation"]),
                st.text(max_size=140)
                | st.fixed_dictionaries({"lat": st.floats(), "lon": st.floats()}),
            ),
        },
    )
    | json_values,
    "debugContext": st.fixed_dictionaries(
        {
            "debugData": st.fixed_dictionaries(
                {"factor": st.sampled_from(["sms", "PUSH"]) | json_values}
            )
        }
    )
    | json_values,
    "authenticationContext": st.fixed_dictionaries(
        {},
        optional={"externalSessionId": ids | json_values, "credentialType": st.text(max_size=8)},
    )
    | json_values,
    "displayMessage": st.text(max_size=1100) | json_values,
}
log_events = st.fixed_dictionaries({}, optional=fields)
deliveries = st.fixed_dictionaries(
    {"data": st.fixed_dictionaries({"events": st.lists(log_events, max_size=3)})}
)


@FUZZ
@given(sample=log_events | deliveries | st.lists(log_events, max_size=2) | json_values)
def test_any_json_value_is_events_the_codec_takes_or_unmapped_with_a_reason(sample: Any) -> None:
    results = map_records(sample, SOURCE)
    assert results == map_records(sample, SOURCE)  # deterministic, no clock
    assert results or sample in ([], {"data": {"events": []}})  # only nothing becomes nothing
    assert_sound(results, "okta")
    assert_sound([map_record(sample, SOURCE)], "okta")
