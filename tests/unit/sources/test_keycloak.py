"""Keycloak events mapped to the contract, from Keycloak's published shapes and source.

Shapes: ``EventRepresentation`` and ``AdminEventRepresentation`` (keycloak.org/docs-api/
latest/javadocs/org/keycloak/representations/idm/); event types: ``EventType``
(github.com/keycloak/keycloak, server-spi-private/src/main/java/org/keycloak/events/
EventType.java); errors: ``Errors`` and detail keys: ``Details`` (keycloak.org/docs-api/
latest/javadocs/org/keycloak/events/); the lockout events' details: ``DefaultBruteForceProtector
.sendEvent`` (services/src/main/java/org/keycloak/services/managers/); the log line: the
``jboss-logging`` listener (services/src/main/java/org/keycloak/events/log/
JBossLoggingEventListenerProvider.java) in Keycloak's JSON log format
(keycloak.org/server/logging). Values are invented where the pages give none (ids, times).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import Event
from schemas.fields import Channel, Factor, LockoutScope, Outcome
from schemas.registry import BY_NAME
from sources import Unmapped
from sources.keycloak import (
    EVENT_TYPES,
    LOGIN_ERRORS,
    NO_CONTRACT_TYPE,
    KeycloakSource,
    map_record,
    map_records,
)
from tests.unit.sources.fixtures import FUZZ, all_events, assert_sound, ids, json_values

SOURCE = KeycloakSource(tenant="acme", source="https://sso.acme.example/realms/acme")
USER_ID = "f7c1a8a2-5b1e-4a1c-9d4e-0c2b9f1e8a77"

# EventRepresentation: time (epoch ms), type, realmId, clientId, userId, sessionId,
# ipAddress, error, details; id in recent versions
LOGIN: dict[str, Any] = {
    "id": "0b9c6d3e-27a4-4e8f-9b1d-6a5c4e3f2a10",
    "time": 1705314600000,
    "type": "LOGIN",
    "realmId": "acme",
    "clientId": "account-console",
    "userId": USER_ID,
    "sessionId": "4e1b2c3d-0000-4a5b-8c7d-112233445566",
    "ipAddress": "192.0.2.44",
    # Details: AUTH_METHOD "auth_method", AUTH_TYPE "auth_type", USERNAME "username",
    # CODE_ID "code_id", REDIRECT_URI "redirect_uri"
    "details": {
        "auth_method": "openid-connect",
        "auth_type": "code",
        "redirect_uri": "https://app.acme.example/",
        "code_id": "4e1b2c3d-0000-4a5b-8c7d-112233445566",
        "username": "jane",
    },
}


def login_error(error: str, **fields: Any) -> dict[str, Any]:
    """A LOGIN_ERROR of the same shape: no session yet, the error (Errors' constants)."""
    sample = {**LOGIN, "type": "LOGIN_ERROR", "error": error, "id": f"err-{error}", **fields}
    del sample["sessionId"]
    return sample


def mapped_all(sample: Any) -> list[Event]:
    return all_events(map_records(sample, SOURCE))


def mapped(sample: Any) -> Event:
    (event,) = mapped_all(sample)
    return event


# -- logins -------------------------------------------------------------------------------


def test_login_is_a_successful_login() -> None:
    event = mapped(LOGIN)
    assert event.type == "auth.login.attempted"
    assert (event.subject, event.tenant) == (USER_ID, "acme")
    assert event.time == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert event.correlationid == LOGIN["sessionId"]
    data = event.data
    assert (data.outcome, data.method, data.reason) == (Outcome.SUCCESS, "openid-connect", None)  # type: ignore[attr-defined]
    assert (data.application, data.client.ip) == ("account-console", "192.0.2.44")  # type: ignore[attr-defined]


def test_invalid_user_credentials_is_a_failed_login_not_a_guessed_factor() -> None:
    # Errors.INVALID_USER_CREDENTIALS; OTPFormAuthenticator reports a wrong one-time code
    # with the same error as a wrong password: which credential it was is not said
    event = mapped(login_error("invalid_user_credentials"))
    assert event.type == "auth.login.attempted"
    data = event.data
    assert (data.outcome, data.reason) == (Outcome.FAILURE, "invalid_user_credentials")  # type: ignore[attr-defined]
    assert event.correlationid == LOGIN["details"]["code_id"]  # the authentication session


def test_user_not_found_has_an_unknown_subject_and_keeps_the_name_typed() -> None:
    # Errors.USER_NOT_FOUND: no userId; Details.USERNAME is what was typed
    details = {**LOGIN["details"], "username": "nobody@acme.example"}
    event = mapped(login_error("user_not_found", userId=None, details=details))
    assert event.subject == "unknown"
    assert event.data.reason == "user_not_found"  # type: ignore[attr-defined]
    assert event.data.attempted_name == "nobody@acme.example"  # type: ignore[attr-defined]


def test_a_login_of_a_temporarily_disabled_user_is_a_refused_login_and_a_lock() -> None:
    # Errors.USER_TEMPORARILY_DISABLED: the brute-force detector refused the login unseen
    login, lock = mapped_all(login_error("user_temporarily_disabled"))
    assert (login.type, login.data.reason) == ("auth.login.attempted", "locked_out")  # type: ignore[attr-defined]
    assert lock.type == "idp.lock.reported"
    assert (lock.data.scope, lock.data.reason) == (
        LockoutScope.SUBJECT,
        "user_temporarily_disabled",
    )  # type: ignore[attr-defined]
    assert login.id != lock.id  # one record, two roles, two ids
    assert map_record(login_error("user_temporarily_disabled"), SOURCE) == login


@pytest.mark.parametrize("error", ["invalid_redirect_uri", "expired_code", "user_disabled"])
def test_other_login_errors_are_unmapped_not_dropped(error: str) -> None:
    (result,) = map_records(login_error(error), SOURCE)
    assert isinstance(result, Unmapped) and result.reason == "not_mfa"
    assert error in result.detail


# -- the authenticator app ----------------------------------------------------------------


def test_update_totp_is_an_authenticator_app_enrolled() -> None:
    event = mapped({**LOGIN, "type": "UPDATE_TOTP", "id": "e-1"})
    assert event.type == "mfa.enrollment.completed"
    data = event.data
    assert (data.factor, data.channel) == (Factor.TOTP, Channel.AUTHENTICATOR_APP)  # type: ignore[attr-defined]
    assert data.enrollment_id == "e-1"  # type: ignore[attr-defined]  # Keycloak names none


def test_update_totp_error_is_a_failed_enrolment_with_keycloaks_error() -> None:
    event = mapped({**LOGIN, "type": "UPDATE_TOTP_ERROR", "error": "invalid_totp"})
    assert event.type == "mfa.enrollment.failed"
    assert event.data.reason == "invalid_totp"  # type: ignore[attr-defined]


def test_remove_totp_is_the_authenticator_app_removed() -> None:
    event = mapped({**LOGIN, "type": "REMOVE_TOTP"})
    assert (event.type, event.data.factor) == ("mfa.enrollment.removed", Factor.TOTP)  # type: ignore[attr-defined]


# -- lockouts -----------------------------------------------------------------------------

# DefaultBruteForceProtector.sendEvent: ipAddress = the last failure's IP, details reason
# "brute_force_attack detected", num_failures, and for a temporary lockout not_before
# (LocalDateTime in the server's zone, no offset); the event is a success event
TEMPORARY_LOCKOUT: dict[str, Any] = {
    "id": "7d2f0a41-3c5b-4e6d-8f7a-9b0c1d2e3f40",
    "time": 1705314660000,
    "type": "USER_DISABLED_BY_TEMPORARY_LOCKOUT",
    "realmId": "acme",
    "userId": USER_ID,
    "ipAddress": "203.0.113.9",
    "details": {
        "reason": "brute_force_attack detected",
        "num_failures": "5",
        "not_before": "2024-01-15T11:31:00",
    },
}


def test_a_temporary_lockout_is_keycloaks_report_of_a_subject_lock() -> None:
    event = mapped(TEMPORARY_LOCKOUT)
    assert (event.type, event.subject) == ("idp.lock.reported", USER_ID)
    data = event.data
    assert (data.provider, data.scope, data.reason) == (
        "keycloak",
        LockoutScope.SUBJECT,
        "temporary_lockout",
    )  # type: ignore[attr-defined]
    assert data.locked_until is None  # type: ignore[attr-defined]  # no offset: not guessed
    assert data.detail == (  # type: ignore[attr-defined]
        "reason=brute_force_attack detected; num_failures=5; not_before=2024-01-15T11:31:00"
    )
    assert data.client.ip == "203.0.113.9"  # type: ignore[attr-defined]


def test_a_permanent_lockout_is_a_subject_lock_too() -> None:
    sample = {**TEMPORARY_LOCKOUT, "type": "USER_DISABLED_BY_PERMANENT_LOCKOUT"}
    del sample["details"]["not_before"]  # type: ignore[attr-defined]
    event = mapped(sample)
    assert (event.type, event.data.reason) == ("idp.lock.reported", "permanent_lockout")  # type: ignore[attr-defined]


# AdminEventRepresentation: time, realmId, authDetails {realmId, clientId, userId, ipAddress},
# operationType, resourceType, resourcePath, representation, error; the path of
# AttackDetectionResource.clearBruteForceForUser: DELETE brute-force/users/{userId} ("Clear
# any user login failures for the user. This can release temporary disabled user")
ADMIN_UNLOCK: dict[str, Any] = {
    "time": 1705315000000,
    "realmId": "acme",
    "authDetails": {
        "realmId": "master",
        "clientId": "security-admin-console",
        "userId": "a1d2m3i4-n000-4000-8000-000000000001",
        "ipAddress": "198.51.100.7",
    },
    "operationType": "DELETE",
    "resourceType": "USER_LOGIN_FAILURE",
    "resourcePath": f"attack-detection/brute-force/users/{USER_ID}",
}


def test_an_administrator_clearing_a_users_login_failures_is_an_unlock() -> None:
    event = mapped(ADMIN_UNLOCK)
    assert (event.type, event.subject) == ("idp.unlock.reported", USER_ID)
    data = event.data
    assert (data.scope, data.reason) == (LockoutScope.SUBJECT, "login_failures_cleared")  # type: ignore[attr-defined]
    assert (data.application, data.client.ip) == ("security-admin-console", "198.51.100.7")  # type: ignore[attr-defined]


def test_clearing_every_users_failures_is_a_contract_gap() -> None:
    # AttackDetectionResource.clearAllBruteForce: DELETE brute-force/users
    (result,) = map_records(
        {**ADMIN_UNLOCK, "resourcePath": "attack-detection/brute-force/users"}, SOURCE
    )
    assert isinstance(result, Unmapped) and result.reason == "contract_gap"


def test_other_admin_events_are_not_mfa() -> None:
    sample = {
        **ADMIN_UNLOCK,
        "operationType": "UPDATE",
        "resourceType": "USER",
        "resourcePath": f"users/{USER_ID}",
    }
    (result,) = map_records(sample, SOURCE)
    assert isinstance(result, Unmapped)
    assert (result.reason, result.record_type) == ("not_mfa", "UPDATE USER")


# -- the jboss-logging listener's JSON lines ----------------------------------------------


def log_line(message: str) -> dict[str, Any]:
    """A JSON console line (Quarkus JSON format, keycloak.org/server/logging) of the events
    logger; ``message`` as JBossLoggingEventListenerProvider.onEvent writes it."""
    return {
        "timestamp": "2024-01-15T11:30:00.123+01:00",
        "sequence": 8812,
        "loggerClassName": "org.jboss.logging.Logger",
        "loggerName": "org.keycloak.events",
        "level": "WARN",
        "message": message,
        "threadName": "executor-thread-7",
        "threadId": 41,
        "hostName": "sso-0",
        "processName": "QuarkusEntryPoint",
        "processId": 1,
    }


def test_a_log_line_of_a_login_error_is_mapped_as_the_event_it_logs() -> None:
    message = (
        "type=LOGIN_ERROR, realmId=acme, clientId=account-console, userId=null, "
        "ipAddress=192.0.2.44, error=user_not_found, auth_method=openid-connect, "
        "auth_type=code, redirect_uri=https://app.acme.example/, "
        "code_id=4e1b2c3d-0000-4a5b-8c7d-112233445566, username=nobody, "
        "authSessionParentId=4e1b2c3d-0000-4a5b-8c7d-112233445566, authSessionTabId=x1Yz"
    )
    event = mapped(log_line(message))
    assert (event.type, event.subject) == ("auth.login.attempted", "unknown")
    assert event.time == datetime(2024, 1, 15, 10, 30, 0, 123000, tzinfo=UTC)
    data = event.data
    assert (data.reason, data.attempted_name, data.client.ip) == (
        "user_not_found",
        "nobody",
        "192.0.2.44",
    )  # type: ignore[attr-defined]


def test_quoted_values_of_a_log_line_are_read_whole() -> None:
    # the listener quotes a detail value that has a space in it ('…'); newer versions quote
    # every value ("…")
    message = (
        f'type="USER_DISABLED_BY_TEMPORARY_LOCKOUT", realmId="acme", clientId="null", '
        f'userId="{USER_ID}", ipAddress="203.0.113.9", '
        "reason='brute_force_attack detected', num_failures=5, not_before=2024-01-15T11:31"
    )
    event = mapped(log_line(message))
    assert (event.type, event.subject) == ("idp.lock.reported", USER_ID)
    assert event.data.detail.startswith("reason=brute_force_attack detected; num_failures=5")  # type: ignore[attr-defined]


def test_a_log_line_of_an_admin_unlock_is_an_unlock() -> None:
    message = (
        "operationType=DELETE, realmId=acme, clientId=security-admin-console, "
        "userId=a1d2m3i4-n000-4000-8000-000000000001, ipAddress=198.51.100.7, "
        "resourceType=USER_LOGIN_FAILURE, "
        f"resourcePath=attack-detection/brute-force/users/{USER_ID}"
    )
    event = mapped(log_line(message))
    assert (event.type, event.subject) == ("idp.unlock.reported", USER_ID)


# https://docs.oracle.com/en/industries/communications/cloud-native-core/3.25.2.2xx.0/cnc_console_troubleshooting_guide/login-error.html
# (Oracle's console troubleshooting guide quotes Keycloak's JSON event log): a wrong password,
# as it is, and the lockout that follows, with the attributes the guide lists
ORACLE_LOGIN_ERROR = (
    '{"timestamp":"2025-11-27T14:48:37.759646496Z","sequence":2543,"loggerClassName":'
    '"org.jboss.logging.Logger","loggerName":"org.keycloak.events","level":"WARN","me'
    'ssage":"type=\\"LOGIN_ERROR\\", realmId=\\"master\\", realmName=\\"master\\", clientId'
    '=\\"security-admin-console\\", userId=\\"4f960adf-d36a-4706-ae1b-24ca3508c05f\\", ip'
    'Address=\\"10.75.213.184\\", error=\\"invalid_user_credentials\\", auth_method=\\"ope'
    'nid-connect\\", auth_type=\\"code\\", redirect_uri=\\"http://10.75.213.184:30085/cnc'
    'c/auth/admin/master/console/#/master/realms\\", code_id=\\"8a6becd6-9f29-5ce3-fd85'
    '-9247e45b4ec1\\", username=\\"admin_test\\"","threadName":"executor-thread-54","thr'
    'eadId":109,"mdc":{},"ndc":"","hostName":"cncc-iam","processName":"/opt/java/jre/'
    'bin/java","processId":571}'
)
ORACLE_LOCKOUT_MESSAGE = (
    'type="USER_DISABLED_BY_TEMPORARY_LOCKOUT", realmId="master", realmName="master", '
    'clientId="null", userId="4f960adf-d36a-4706-ae1b-24ca3508c05f", ipAddress="10.75.213.184", '
    'reason="brute_force_attack detected", num_failures="5", not_before="2025-11-17T09:37:50"'
)


def test_keycloaks_json_event_log_as_oracle_quotes_it() -> None:
    failed = mapped(json.loads(ORACLE_LOGIN_ERROR))
    assert (failed.type, failed.subject) == (
        "auth.login.attempted",
        "4f960adf-d36a-4706-ae1b-24ca3508c05f",
    )
    data = failed.data
    assert (data.reason, data.method, data.application) == (  # type: ignore[attr-defined]
        "invalid_user_credentials",
        "openid-connect",
        "security-admin-console",
    )
    assert failed.correlationid == "8a6becd6-9f29-5ce3-fd85-9247e45b4ec1"
    assert failed.time == datetime(2025, 11, 27, 14, 48, 37, 759646, tzinfo=UTC)
    line = {**json.loads(ORACLE_LOGIN_ERROR), "level": "DEBUG", "message": ORACLE_LOCKOUT_MESSAGE}
    lock = mapped(line)
    assert (lock.type, lock.subject) == ("idp.lock.reported", failed.subject)
    assert lock.data.application is None  # type: ignore[attr-defined]  # clientId="null"
    assert lock.data.detail == (  # type: ignore[attr-defined]
        "reason=brute_force_attack detected; num_failures=5; not_before=2025-11-17T09:37:50"
    )


def test_a_line_of_another_logger_is_unmapped() -> None:
    (result,) = map_records({**log_line("Keycloak started"), "loggerName": "io.quarkus"}, SOURCE)
    assert isinstance(result, Unmapped) and result.reason == "not_mfa"


# -- what is not mapped, and why ----------------------------------------------------------


@pytest.mark.parametrize("kind", [*sorted(NO_CONTRACT_TYPE), "LOGOUT", "UPDATE_PASSWORD"])
def test_other_types_are_unmapped_not_dropped(kind: str) -> None:
    (result,) = map_records({**LOGIN, "type": kind}, SOURCE)
    assert isinstance(result, Unmapped)
    assert result.reason == ("no_contract_type" if kind in NO_CONTRACT_TYPE else "not_mfa")


@pytest.mark.parametrize(
    ("sample", "reason"),
    [
        (["a", "list"], "not_an_object"),
        ({**LOGIN, "type": None}, "missing_type"),
        ({**LOGIN, "time": "yesterday"}, "invalid_date"),
        ({**LOGIN, "time": 10**30}, "invalid_date"),
        ({**LOGIN, "userId": "has spaces"}, "missing_subject"),
        ({**LOGIN, "id": None, "x": float("inf")}, "missing_record_id"),
        (log_line("realmId=acme"), "missing_type"),
    ],
)
def test_defective_records_are_unmapped_with_the_reason(sample: Any, reason: str) -> None:
    (result,) = map_records(sample, SOURCE)
    assert isinstance(result, Unmapped) and result.reason == reason


def test_a_record_the_contract_refuses_is_unmapped_not_raised() -> None:
    (result,) = map_records(LOGIN, KeycloakSource(tenant="not a tenant!", source=SOURCE.source))
    assert isinstance(result, Unmapped) and result.reason == "invalid_record"


# -- ids ----------------------------------------------------------------------------------


def test_the_same_record_twice_is_the_same_event_with_or_without_keycloaks_id() -> None:
    assert mapped(LOGIN).id == mapped(dict(LOGIN)).id
    no_id = {key: value for key, value in LOGIN.items() if key != "id"}
    assert mapped(no_id).id == mapped(dict(no_id)).id != mapped(LOGIN).id
    assert mapped({**no_id, "ipAddress": "192.0.2.45"}).id != mapped(no_id).id


def test_ids_differ_by_source() -> None:
    (elsewhere,) = map_records(LOGIN, KeycloakSource("acme", "https://sso.other.example/realms/x"))
    assert not isinstance(elsewhere, Unmapped) and elsewhere.id != mapped(LOGIN).id


@pytest.mark.parametrize("kind", sorted(EVENT_TYPES))
def test_every_type_mapped_is_one_an_adapter_may_say(kind: str) -> None:
    for event in mapped_all({**LOGIN, "type": kind}):
        assert not BY_NAME[event.type].derived


@pytest.mark.parametrize("error", sorted(LOGIN_ERRORS))
def test_every_login_error_mapped_is_one_an_adapter_may_say(error: str) -> None:
    for event in mapped_all(login_error(error)):
        assert not BY_NAME[event.type].derived


# -- any JSON value -----------------------------------------------------------------------

login_events = st.fixed_dictionaries(
    {},
    optional={
        "id": ids | json_values,
        "time": st.integers(min_value=-(2**70), max_value=2**70) | json_values,
        "type": st.sampled_from([*EVENT_TYPES, "LOGIN_ERROR", "LOGOUT"]) | json_values,
        "error": st.sampled_from([*LOGIN_ERRORS, "expired_code"]) | json_values,
        "userId": ids | json_values,
        "sessionId": ids | json_values,
        "clientId": st.text(max_size=140) | json_values,
        "ipAddress": st.ip_addresses().map(str) | json_values,
        "details": st.dictionaries(
            st.sampled_from(["username", "auth_method", "code_id", "reason", "not_before"]),
            st.text(max_size=400) | json_values,
        )
        | json_values,
    },
)
admin_events = st.fixed_dictionaries(
    {"operationType": st.sampled_from(["DELETE", "UPDATE"]) | json_values},
    optional={
        "time": st.integers(min_value=0, max_value=2**45) | json_values,
        "resourcePath": st.sampled_from(
            ["attack-detection/brute-force/users/u1", "attack-detection/brute-force/users"]
        )
        | st.text(max_size=60)
        | json_values,
        "authDetails": st.fixed_dictionaries(
            {}, optional={"ipAddress": st.text(), "clientId": json_values}
        )
        | json_values,
    },
)
log_lines = st.fixed_dictionaries(
    {
        "loggerName": st.just("org.keycloak.events") | json_values,
        "message": st.text(max_size=200)
        | st.sampled_from(
            ["type=LOGIN, userId=u, ipAddress=1.2.3.4", "operationType=DELETE, x='a"]
        ),
    },
    optional={
        "timestamp": st.datetimes(timezones=st.timezones()).map(datetime.isoformat) | json_values
    },
)


@FUZZ
@given(sample=login_events | admin_events | log_lines | json_values)
def test_any_json_value_is_events_the_codec_takes_or_unmapped_with_a_reason(sample: Any) -> None:
    results = map_records(sample, SOURCE)
    assert results and results == map_records(sample, SOURCE)  # deterministic, no clock
    assert_sound(results, "keycloak")
    assert map_record(sample, SOURCE) == results[0]
