"""Auth0 log records mapped to the contract, from Auth0's published log shapes.

Each sample's fields and example values come from the page named above it: Auth0's log
schemas (github.com/auth0/auth0-log-schemas, ``schemas/log-types/<type>.schema.json``,
whose examples give the log id, user agent, user name and date formats) and the tenant
log reference pages (auth0.com/docs/tenant-logs/…).
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import Event, decode, encode
from schemas.fields import Channel, Factor, LockoutScope, Outcome
from schemas.registry import BY_NAME
from sources import Unmapped
from sources.auth0 import (
    CONTRACT_GAPS,
    LOG_TYPES,
    NO_CONTRACT_TYPE,
    UNKNOWN_SUBJECT,
    Auth0Source,
    map_log,
    map_record,
    map_records,
)
from tests.unit.sources.fixtures import FUZZ, ids, json_values

SOURCE = Auth0Source(tenant="acme", source="https://acme.eu.auth0.com/")
SCHEMAS = "https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/"

# Common fields, as Auth0's log schemas give them (examples of log_id, user_agent, date).
COMMON: dict[str, Any] = {
    "log_id": "90020230131201509723467389426319763037",
    "date": "2024-01-15T10:30:00.000Z",
    "user_id": "auth0|1234567890",
    "user_name": "example@example.com",
    "client_id": "AbC12345dEf67890gHi12345",
    "client_name": "My Application",
    "ip": "192.0.2.10",
    "user_agent": "Chrome 120.0.0 / Mac OS X 10.15.7",
    "tenant_name": "example-tenant",
    "connection": "Username-Password-Authentication",
    "strategy": "auth0",
    "description": "",
}


def record(log_type: str, **fields: Any) -> dict[str, Any]:
    return {**COMMON, "type": log_type, **fields}


def mapped(sample: dict[str, Any]) -> Event:
    event = map_log(sample, SOURCE)
    assert not isinstance(event, Unmapped), event
    assert decode(encode(event)) == event
    return event


# -- Guardian enrollment ------------------------------------------------------------------


def test_gd_start_enroll_is_enrollment_started() -> None:
    # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/gd_start_enroll.schema.json
    event = mapped(record("gd_start_enroll", details={}))
    assert event.type == "mfa.enrollment.started"
    assert event.data.factor is Factor.UNKNOWN  # type: ignore[attr-defined]
    assert event.subject == "auth0|1234567890" and event.tenant == "acme"
    assert event.time == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)


def test_gd_enrollment_complete_names_the_factor_when_auth0_does() -> None:
    # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/gd_enrollment_complete.schema.json
    # details.authenticator {id, type, phone_number}, details.enrollment {_id, tenant, user_id}
    details = {
        "authenticator": {"id": "sms|dev_abc", "type": "sms", "phone_number": "+14155554321"},
        "enrollment": {"_id": "dev_abc", "tenant": "example-tenant", "user_id": COMMON["user_id"]},
    }
    event = mapped(record("gd_enrollment_complete", details=details))
    assert event.type == "mfa.enrollment.completed"
    data = event.data
    assert (data.factor, data.channel) == (Factor.SMS, Channel.SMS)  # type: ignore[attr-defined]
    assert data.enrollment_id == "dev_abc"  # type: ignore[attr-defined]
    assert data.destination == "+14155554321"  # type: ignore[attr-defined]


def test_gd_start_enroll_failed_keeps_guardians_error_code() -> None:
    # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/gd_start_enroll_failed.schema.json
    # error codes: https://auth0.com/docs/mfa/references/guardian-error-code-reference
    details = {"failure_details": {"errorCode": "enrollment_conflict", "message": "twice"}}
    event = mapped(record("gd_start_enroll_failed", details=details))
    assert event.type == "mfa.enrollment.failed"
    assert event.data.reason == "enrollment_conflict"  # type: ignore[attr-defined]


def test_gd_webauthn_enrollment_failed_is_a_webauthn_enrollment_failure() -> None:
    # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/gd_webauthn_enrollment_failed.schema.json
    event = mapped(record("gd_webauthn_enrollment_failed", details={}))
    assert event.type == "mfa.enrollment.failed"
    assert event.data.factor is Factor.WEBAUTHN  # type: ignore[attr-defined]


def test_gd_unenroll_is_enrollment_removed() -> None:
    # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/gd_unenroll.schema.json
    details = {"authenticator": {"id": "totp|dev_xyz", "type": "otp"}}
    event = mapped(record("gd_unenroll", details=details))
    assert event.type == "mfa.enrollment.removed"
    assert event.data.factor is Factor.TOTP  # type: ignore[attr-defined]
    assert event.data.enrollment_id == "totp|dev_xyz"  # type: ignore[attr-defined]


# -- challenges and deliveries ------------------------------------------------------------


def test_gd_start_auth_is_challenge_issued() -> None:
    # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/gd_start_auth.schema.json
    event = mapped(record("gd_start_auth", details={}))
    assert event.type == "mfa.challenge.issued"
    assert event.data.challenge_id == COMMON["log_id"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("log_type", "channel"),
    [
        # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/gd_send_sms.schema.json
        ("gd_send_sms", Channel.SMS),
        # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/gd_send_voice.schema.json
        ("gd_send_voice", Channel.VOICE),
        # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/gd_send_email.schema.json
        ("gd_send_email", Channel.EMAIL),
        # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/gd_send_pn.schema.json
        ("gd_send_pn", Channel.PUSH),
    ],
)
def test_gd_send_codes_are_challenge_sent(log_type: str, channel: Channel) -> None:
    event = mapped(record(log_type, details={"authenticator": {"id": "x", "type": "phone"}}))
    assert event.type == "mfa.challenge.sent"
    assert event.data.channel is channel  # type: ignore[attr-defined]
    assert event.data.factor.value == channel.value  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("log_type", "channel"),
    [
        # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/gd_send_sms_failure.schema.json
        ("gd_send_sms_failure", Channel.SMS),
        # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/gd_send_voice_failure.schema.json
        ("gd_send_voice_failure", Channel.VOICE),
        # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/gd_send_email_failure.schema.json
        ("gd_send_email_failure", Channel.EMAIL),
        # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/gd_send_pn_failure.schema.json
        ("gd_send_pn_failure", Channel.PUSH),
    ],
)
def test_gd_send_failures_are_delivery_failed(log_type: str, channel: Channel) -> None:
    # provider_error {errorCode, message}: the schemas above; the code from
    # https://auth0.com/docs/mfa/references/guardian-error-code-reference
    details = {"provider_error": {"errorCode": "error_sending_sms", "message": "carrier said no"}}
    event = mapped(record(log_type, details=details))
    assert event.type == "mfa.challenge.delivery_failed"
    assert event.data.channel is channel  # type: ignore[attr-defined]
    assert event.data.reason == "error_sending_sms"  # type: ignore[attr-defined]
    assert event.data.provider_error == "carrier said no"  # type: ignore[attr-defined]


# -- verification -------------------------------------------------------------------------


def test_gd_auth_succeed_is_verification_succeeded() -> None:
    # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/gd_auth_succeed.schema.json
    details = {"authenticator": {"id": "push|dev_1", "type": "push"}}
    event = mapped(record("gd_auth_succeed", details=details))
    assert event.type == "mfa.verification.succeeded"
    assert event.data.factor is Factor.PUSH  # type: ignore[attr-defined]


def test_gd_auth_failed_leaves_the_factor_unknown_when_auth0_does_not_name_it() -> None:
    # https://auth0.com/docs/tenant-logs/other/gd-auth-failed ("a wrong code entered for
    # SMS/Voice/Email/TOTP factors, or a system failure": the factor is not always named)
    event = mapped(record("gd_auth_failed", details={}))
    assert event.type == "mfa.verification.failed"
    assert event.data.factor is Factor.UNKNOWN  # type: ignore[attr-defined]
    assert event.data.reason == "failed"  # type: ignore[attr-defined]


def test_gd_auth_failed_with_guardians_error_code() -> None:
    # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/gd_auth_failed.schema.json
    details = {
        "authenticator": {"id": "totp|dev_2", "type": "otp"},
        "failure_details": {"errorCode": "invalid_otp", "message": "Invalid OTP"},
    }
    event = mapped(record("gd_auth_failed", details=details))
    assert (event.data.factor, event.data.reason) == (Factor.TOTP, "invalid_otp")  # type: ignore[attr-defined]


def test_gd_webauthn_challenge_failed_is_a_webauthn_verification_failure() -> None:
    # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/gd_webauthn_challenge_failed.schema.json
    event = mapped(record("gd_webauthn_challenge_failed", details={}))
    assert event.type == "mfa.verification.failed"
    assert event.data.factor is Factor.WEBAUTHN  # type: ignore[attr-defined]


def test_gd_auth_rejected_is_push_rejected() -> None:
    # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/gd_auth_rejected.schema.json
    event = mapped(record("gd_auth_rejected", details={}))
    assert event.type == "mfa.push.rejected"


def test_gd_recovery_failed_is_recovery_failed() -> None:
    # https://auth0.com/docs/tenant-logs/other/gd-recovery-failed
    # ("A user entered a wrong Recovery Code when attempting to authenticate")
    event = mapped(record("gd_recovery_failed", details={}))
    assert event.type == "mfa.recovery.failed"
    assert event.data.reason == "invalid_code"  # type: ignore[attr-defined]


def test_mfar_is_mfa_required() -> None:
    # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/mfar.schema.json
    event = mapped(record("mfar", details={}))
    assert event.type == "mfa.required"
    assert event.data.required is True  # type: ignore[attr-defined]


# -- logins -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("log_type", "outcome", "reason"),
    [
        # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/s.schema.json
        ("s", Outcome.SUCCESS, None),
        # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/f.schema.json
        ("f", Outcome.FAILURE, "failed"),
        # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/fp.schema.json
        ("fp", Outcome.FAILURE, "invalid_password"),
    ],
)
def test_logins(log_type: str, outcome: Outcome, reason: str | None) -> None:
    event = mapped(record(log_type, details={}))
    assert event.type == "auth.login.attempted"
    data = event.data
    assert (data.outcome, data.reason, data.method) == (outcome, reason, "auth0")  # type: ignore[attr-defined]
    assert data.attempted_name is None  # type: ignore[attr-defined]
    assert data.client.ip == "192.0.2.10"  # type: ignore[attr-defined]


def test_fu_has_an_unknown_subject_and_keeps_the_name_typed_as_personal_data() -> None:
    # https://github.com/auth0/auth0-log-schemas/blob/main/schemas/log-types/fu.schema.json
    # (user_id: "for failure logs … a valid ID, an invalid ID, or empty string")
    event = mapped(record("fu", user_id="", user_name="nobody@example.com"))
    assert event.subject == UNKNOWN_SUBJECT
    assert event.partitionkey == f"acme/{UNKNOWN_SUBJECT}"
    assert event.data.reason == "unknown_user"  # type: ignore[attr-defined]
    assert event.data.attempted_name == "nobody@example.com"  # type: ignore[attr-defined]
    assert "data.attempted_name" in _personal(event.type)


def _personal(event_type: str) -> list[str]:
    from schemas import personal_paths

    return personal_paths(BY_NAME[event_type])


def test_location_info_becomes_the_clients_geo() -> None:
    # location_info: https://schemas.apis.io/schemas/auth0/auth0-log/ (Log.location_info)
    location = {"country_code": "US", "city_name": "San Francisco", "latitude": 37.77}
    event = mapped(record("s", location_info={**location, "longitude": -122.41}))
    geo = event.data.client.geo  # type: ignore[attr-defined]
    assert (geo.country, geo.city, geo.latitude, geo.longitude) == (
        "US",
        "San Francisco",
        37.77,
        -122.41,
    )


def test_a_log_streams_webhook_item_is_unwrapped() -> None:
    # Log Streams custom webhook items: {"log_id": …, "data": {<the log>}}
    # https://auth0.com/docs/customize/log-streams/custom-log-streams
    item = {"log_id": COMMON["log_id"], "data": record("gd_auth_succeed", details={})}
    assert mapped(item) == mapped(record("gd_auth_succeed", details={}))


# -- blocks and unblocks: Auth0's own reports ---------------------------------------------


@pytest.mark.parametrize(
    ("log_type", "scope", "reason"),
    [
        # https://auth0.com/docs/tenant-logs/system-notification/limit-wc ("An IP address is
        # blocked because it reached the maximum failed login attempts into a single account")
        ("limit_wc", LockoutScope.IP, "blocked_account"),
        # https://auth0.com/docs/tenant-logs/system-notification/limit-mu ("An IP address is
        # blocked because it attempted too many failed logins without a successful login")
        ("limit_mu", LockoutScope.IP, "blocked_ip_address"),
    ],
)
def test_ip_blocks_are_idp_lock_reported_naming_the_ip(
    log_type: str, scope: LockoutScope, reason: str
) -> None:
    event = mapped(record(log_type, description="Too many failed login attempts"))
    assert event.type == "idp.lock.reported"
    data = event.data
    assert (data.provider, data.scope, data.reason) == ("auth0", scope, reason)  # type: ignore[attr-defined]
    assert data.ip == "192.0.2.10" and data.factor is None  # type: ignore[attr-defined]
    assert data.locked_until is None  # type: ignore[attr-defined]  # Auth0 does not say


def test_an_ip_block_of_no_named_account_has_an_unknown_subject() -> None:
    # limit_mu concerns many accounts: the record need not name one
    event = mapped(record("limit_mu", user_id=""))
    assert event.subject == UNKNOWN_SUBJECT


def test_limit_sul_is_a_subject_lock() -> None:
    # https://auth0.com/docs/tenant-logs/other/limit-sul ("A user is temporarily prevented
    # from logging in because they reached the maximum logins per time period from the same
    # IP address")
    event = mapped(record("limit_sul"))
    assert (event.type, event.data.scope) == ("idp.lock.reported", LockoutScope.SUBJECT)  # type: ignore[attr-defined]
    assert event.data.ip is None  # type: ignore[attr-defined]


def test_gd_otp_rate_limit_exceed_locks_the_factor_auth0_names_else_unknown() -> None:
    # https://auth0.com/docs/tenant-logs/other/gd-otp-rate-limit-exceed ("A user, during
    # enrollment or authentication, enters an incorrect code more than the maximum allowed
    # number of times"): the authenticator is named only when details.authenticator says it
    unnamed = mapped(record("gd_otp_rate_limit_exceed", details={}))
    assert unnamed.type == "idp.lock.reported"
    assert (unnamed.data.scope, unnamed.data.factor) == (LockoutScope.FACTOR, Factor.UNKNOWN)  # type: ignore[attr-defined]
    details = {"authenticator": {"id": "totp|dev_9", "type": "otp"}}
    named = mapped(record("gd_otp_rate_limit_exceed", details=details))
    assert named.data.factor is Factor.TOTP  # type: ignore[attr-defined]


def test_ublkdu_is_an_unlock_of_the_users_blocks() -> None:
    # https://auth0.com/docs/tenant-logs/user-notification/ublkdu ("User block setup by
    # anomaly detection has been released")
    event = mapped(record("ublkdu"))
    assert event.type == "idp.unlock.reported"
    assert (event.data.scope, event.data.reason) == (LockoutScope.SUBJECT, "user_block_released")  # type: ignore[attr-defined]


def test_map_record_and_map_records_say_what_map_log_says() -> None:
    sample = record("gd_auth_failed", details={})
    assert map_record(sample, SOURCE) == map_log(sample, SOURCE)
    assert map_records(sample, SOURCE) == [map_log(sample, SOURCE)]


# -- what is not mapped, and why ----------------------------------------------------------


@pytest.mark.parametrize("log_type", sorted(CONTRACT_GAPS))
def test_contract_gaps_are_unmapped_with_the_reason(log_type: str) -> None:
    result = map_log(record(log_type), SOURCE)
    assert isinstance(result, Unmapped)
    assert (result.reason, result.record_type) == ("contract_gap", log_type)
    assert result.record_id == COMMON["log_id"] and result.detail


@pytest.mark.parametrize("log_type", [*sorted(NO_CONTRACT_TYPE), "sapi", "seacft", "du"])
def test_other_types_are_unmapped_not_dropped(log_type: str) -> None:
    result = map_log(record(log_type), SOURCE)
    assert isinstance(result, Unmapped)
    expected = "no_contract_type" if log_type in NO_CONTRACT_TYPE else "not_mfa"
    assert result.reason == expected


@pytest.mark.parametrize(
    ("sample", "reason"),
    [
        ([], "not_an_object"),
        ({**COMMON, "type": "s", "log_id": None, "_id": None}, "missing_log_id"),
        ({**COMMON, "log_id": "1"}, "missing_type"),
        (record("s", date="yesterday"), "invalid_date"),
        (record("s", date="2024-01-15T10:30:00"), "invalid_date"),  # no offset: not guessed
        (record("gd_auth_succeed", user_id=""), "missing_subject"),
        (record("s", user_id="auth0 with spaces"), "missing_subject"),
    ],
)
def test_defective_records_are_unmapped_with_the_reason(sample: Any, reason: str) -> None:
    result = map_log(sample, SOURCE)
    assert isinstance(result, Unmapped) and result.reason == reason


def test_the_legacy_id_field_is_accepted() -> None:
    sample = {**record("s"), "_id": "legacy-1"}
    del sample["log_id"]
    assert mapped(sample).correlationid == "legacy-1"


def test_a_record_the_contract_refuses_is_unmapped_not_raised() -> None:
    result = map_log(record("s"), Auth0Source(tenant="not a tenant!", source=SOURCE.source))
    assert isinstance(result, Unmapped) and result.reason == "invalid_record"
    assert "tenant" in result.detail


# -- ids, time, and agreement with the registry -------------------------------------------


def test_the_same_record_twice_is_the_same_event() -> None:
    sample = record("gd_auth_failed", details={})
    assert mapped(sample).id == mapped(dict(sample)).id == mapped(sample).id


def test_ids_differ_by_log_id_and_by_source() -> None:
    one = mapped(record("gd_auth_failed", log_id="a"))
    other_log = mapped(record("gd_auth_failed", log_id="b"))
    elsewhere = map_log(record("gd_auth_failed", log_id="a"), Auth0Source("acme", "urn:other"))
    assert not isinstance(elsewhere, Unmapped)
    assert len({one.id, other_log.id, elsewhere.id}) == 3


def test_time_is_the_records_date_in_utc() -> None:
    event = mapped(record("s", date="2024-01-15T12:30:00.250+02:00"))
    assert event.time == datetime(2024, 1, 15, 10, 30, 0, 250000, tzinfo=UTC)
    assert event.time.tzinfo is UTC
    assert event.id.startswith("018d0cab-c53a")  # UUIDv7 of that instant: ids sort by time


REFINEMENTS = {"fp": "f", "fu": "f"}
"""Auth0 codes more precise than the one the registry names for the same event."""

REPORTED_AS: Final = {
    "idp.lock.reported": "lockout.applied",
    "idp.unlock.reported": "lockout.cleared",
}
"""A provider's report of a lock, and the lock the pipeline applies from it: the registry
names Auth0's code on the latter (``limit_mu`` on ``ip.block.applied``)."""


@pytest.mark.parametrize("log_type", sorted(LOG_TYPES))
def test_every_mapping_agrees_with_the_registrys_auth0_code(log_type: str) -> None:
    event = mapped(record(log_type, details={}))
    kind = BY_NAME[event.type]
    assert not kind.derived
    if kind.name in REPORTED_AS:
        derived = [BY_NAME[REPORTED_AS[kind.name]], BY_NAME["ip.block.applied"]]
        codes = {
            code
            for made in derived
            if made.auth0 is not None
            for code in (made.auth0.default, *made.auth0.cases.values())
        }
        assert log_type in codes
    else:
        assert kind.auth0_code(event.data) == REFINEMENTS.get(log_type, log_type)


def test_every_auth0_code_the_registry_names_is_mapped_or_explained() -> None:
    named = set()
    for kind in BY_NAME.values():
        if kind.auth0 is not None:
            named |= {kind.auth0.default, *kind.auth0.cases.values()} - {None}
    explained = set(LOG_TYPES) | set(CONTRACT_GAPS)
    assert named <= explained, named - explained


# -- any JSON object ----------------------------------------------------------------------

dates = st.datetimes(timezones=st.timezones()).map(datetime.isoformat)
types = st.sampled_from([*LOG_TYPES, *CONTRACT_GAPS, "sapi"])
user_ids = st.sampled_from(["auth0|1", "", "a b", "x" * 129]) | ids
details = st.fixed_dictionaries(
    {},
    optional={
        "authenticator": st.fixed_dictionaries(
            {}, optional={"type": st.sampled_from(["otp", "sms", "phone"]) | json_values}
        ),
        "failure_details": st.fixed_dictionaries({"errorCode": st.text(max_size=70)}),
    },
)
optional_fields = {
    "user_id": user_ids | json_values,
    "user_name": st.text(max_size=400) | json_values,
    "client_name": st.text(max_size=200) | json_values,
    "strategy": st.text(max_size=200) | json_values,
    "ip": st.ip_addresses().map(str) | json_values,
    "user_agent": st.text(max_size=20) | json_values,
    "correlation_id": ids | json_values,
    "details": details | json_values,
    "location_info": st.dictionaries(
        st.sampled_from(["country_code", "city_name", "latitude", "longitude"]),
        st.floats() | st.sampled_from(["US", "us", "ÄÖ", ""]) | json_values,
    ),
}
plausible = st.fixed_dictionaries(
    {"log_id": ids, "date": dates, "type": types}, optional=optional_fields
)
anything_in_the_fields = st.fixed_dictionaries(
    {},
    optional={
        "log_id": ids | json_values,
        "_id": ids | json_values,
        "date": dates | json_values,
        "type": types | json_values,
        **optional_fields,
    },
)
log_records = (plausible | anything_in_the_fields).flatmap(
    lambda known: st.dictionaries(st.text(max_size=12), json_values, max_size=4).map(
        lambda extra: {**extra, **known}
    )
)
AUTH0_FUZZ = settings(FUZZ, max_examples=500)


@AUTH0_FUZZ
@given(sample=log_records | json_values)
def test_any_json_value_is_an_event_the_codec_takes_or_unmapped_with_a_reason(sample: Any) -> None:
    result = map_log(sample, SOURCE)
    if isinstance(result, Unmapped):
        assert result.reason and result.detail
    else:
        assert decode(encode(result)) == result
        assert map_log(sample, SOURCE) == result  # deterministic, no clock


IO_MODULES = {
    "cursors", "delivery", "idp_http", "pages", "polling", "webhooks",
    "auth0_api", "okta_api", "keycloak_api", "entra_api",
    "http_ingest", "ingest_server", "credentials", "signatures",
}  # fmt: skip
"""The adapters' thin I/O (files, HTTP, the broker): they may touch the OS and Kafka, but
never factorstream, Faust or the clock (time is passed in). Every other module of
``sources`` is pure."""


def test_sources_never_imports_factorstream_faust_or_the_clock() -> None:
    for path in (Path(__file__).resolve().parents[3] / "sources").rglob("*.py"):
        refused = {"factorstream", "faust"}
        if path.stem not in IO_MODULES:
            refused |= {"aiokafka", "kafka", "time", "os", "httpx", "fastapi", "uvicorn"}
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not {name.split(".")[0] for name in names} & refused, (path, names)
        assert ".now(" not in path.read_text() and "utcnow" not in path.read_text(), path


def test_docs_sources_md_is_current() -> None:
    from sources.reference import document

    path = Path(__file__).resolve().parents[3] / "docs" / "sources.md"
    assert path.read_text() == document(), "run `factorstream docs`"
