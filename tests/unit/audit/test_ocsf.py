"""OCSF export: every mapped sample event validates against the shipped 1.1.0 schema."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest

from audit.export import write_export
from audit.ocsf import OCSF_VERSION, defined_activities, ocsf_record, ocsf_schema
from audit.rows import ERASED, LedgerRow
from schemas import encode
from schemas.registry import BY_NAME, personal_paths
from tests.factories import PAYLOADS, sample_event

RECORDED = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
OCSF_CLASSES = {3001, 3002}
MAPPED = sorted(
    name for name, kind in BY_NAME.items() if kind.ocsf and kind.ocsf.class_uid in OCSF_CLASSES
)
FAILED = {
    "mfa.enrollment.failed": "invalid_phone_number",
    "mfa.verification.failed": "invalid_code",
    "mfa.push.rejected": "not_me",
    "mfa.push.expired": "expired",
    "mfa.push.reported_fraud": "reported_fraud",
    "mfa.recovery.failed": "unknown_code",
    "auth.login.attempted": "invalid_password",
    "device.trust_refused": "wrong_device",
}
"""The sample events (tests/factories.py) that record a failure, and why."""


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = ocsf_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def row_of(type_name: str, *, sequence: int = 7, erase: bool = False) -> LedgerRow:
    event: dict[str, Any] = msgspec.json.decode(encode(sample_event(type_name)))
    paths: list[str] = []
    if erase:
        for path in personal_paths(BY_NAME[type_name]):
            *parents, leaf = path.split(".")
            node: Any = event
            for name in parents:
                node = node.get(name) if isinstance(node, dict) else None
            if isinstance(node, dict) and node.get(leaf) is not None:
                node[leaf] = ERASED
                paths.append(path)
    return LedgerRow(sequence, RECORDED, event, tuple(paths))


def record_of(type_name: str, **kwargs: Any) -> dict[str, Any]:
    record = ocsf_record(row_of(type_name, **kwargs))
    assert record is not None
    return record


def test_both_classes_are_mapped_by_the_registry() -> None:
    classes = {BY_NAME[name].ocsf.class_uid for name in MAPPED}  # type: ignore[union-attr]
    assert classes == OCSF_CLASSES
    assert len(MAPPED) == 25


@pytest.mark.parametrize("type_name", MAPPED)
def test_mapped_sample_event_validates(
    type_name: str, validator: jsonschema.protocols.Validator
) -> None:
    record = record_of(type_name)

    errors = [error.message for error in validator.iter_errors(record)]
    assert errors == []
    mapping = BY_NAME[type_name].ocsf
    assert mapping is not None
    assert record["class_uid"] == mapping.class_uid
    assert record["category_uid"] == 3
    assert record["type_uid"] == record["class_uid"] * 100 + record["activity_id"]
    assert record["activity_name"] == mapping.activity_name
    assert record["metadata"]["version"] == OCSF_VERSION == "1.1.0"
    assert record["user"]["uid"] == "u-1001"


@pytest.mark.parametrize("type_name", MAPPED)
def test_activity_is_the_registrys_where_ocsf_1_1_defines_it(type_name: str) -> None:
    mapping = BY_NAME[type_name].ocsf
    assert mapping is not None

    record = record_of(type_name)

    if mapping.activity_id in defined_activities()[mapping.class_uid]:
        assert record["activity_id"] == mapping.activity_id
    else:  # OCSF: 99 Other, "see the activity_name attribute"
        assert record["activity_id"] == 99
        assert record["type_uid"] == mapping.class_uid * 100 + 99


def test_preauth_is_other_at_1_1_0(validator: jsonschema.protocols.Validator) -> None:
    record = record_of("mfa.challenge.issued")
    assert (record["class_uid"], record["activity_id"]) == (3002, 99)
    assert record["activity_name"] == "Preauth"

    as_1_2 = {**record, "activity_id": 6, "type_uid": 300206}
    assert not validator.is_valid(as_1_2)


@pytest.mark.parametrize("type_name", MAPPED)
def test_status_says_success_or_failure_and_why(type_name: str) -> None:
    record = record_of(type_name)

    if type_name in FAILED:
        assert (record["status_id"], record["status"]) == (2, "Failure")
        assert record["status_detail"] == FAILED[type_name]
        assert record["severity_id"] >= 2
    else:
        assert (record["status_id"], record["status"]) == (1, "Success")
        assert "status_detail" not in record


def test_unmapped_types_are_not_exported() -> None:
    for name in set(PAYLOADS) - set(MAPPED):
        assert ocsf_record(row_of(name)) is None


def test_authentication_fills_the_request_context() -> None:
    record = record_of("mfa.verification.failed", sequence=41)

    assert record["time"] == 1_793_611_800_000  # 2026-11-02T09:30:00Z
    assert record["metadata"]["original_time"] == "2026-11-02T09:30:00Z"
    assert record["metadata"]["logged_time"] == 1_793_613_600_000
    assert record["metadata"]["sequence"] == 41
    assert record["metadata"]["product"] == {"name": "factorstream", "vendor_name": "factorstream"}
    assert record["metadata"]["correlation_uid"] == "login-1"
    assert record["user"] == {
        "type_id": 1,  # policy tier "business"
        "type": "User",
        "uid": "u-1001",
        "org": {"uid": "acme"},
    }
    assert record["unmapped"]["data.policy_tier"] == "business"
    assert record["src_endpoint"] == {
        "ip": "203.0.113.7",
        "location": {"country": "DE", "city": "Berlin", "coordinates": [13.405, 52.52]},
    }
    assert record["http_request"] == {"user_agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    assert record["service"] == {"name": "payroll"}
    assert record["is_mfa"] is True
    assert (record["auth_protocol_id"], record["auth_protocol"]) == (99, "totp")
    assert record["unmapped"]["data.attempts_remaining"] == 3
    assert "data.reason" not in record["unmapped"]  # it is the status_detail


def test_location_needs_coordinates_at_1_1_0(validator: jsonschema.protocols.Validator) -> None:
    row = row_of("mfa.verification.succeeded")
    del row.event["data"]["client"]["geo"]["latitude"]

    record = ocsf_record(row)

    assert record is not None
    assert validator.is_valid(record)
    assert record["src_endpoint"] == {"ip": "203.0.113.7"}
    assert record["unmapped"]["data.client.geo.city"] == "Berlin"
    assert record["unmapped"]["data.client.geo.longitude"] == 13.405


def test_admin_tier_is_an_admin_user() -> None:
    row = row_of("mfa.verification.succeeded")
    row.event["data"]["policy_tier"] = "admin"

    record = ocsf_record(row)

    assert record is not None
    assert (record["user"]["type_id"], record["user"]["type"]) == (2, "Admin")


def test_account_change_names_the_acting_administrator() -> None:
    record = record_of("mfa.enrollment.removed")

    assert (record["class_uid"], record["activity_id"]) == (3001, 11)
    assert record["actor"] == {"user": {"type_id": 0, "uid": "admin-7"}}
    assert record["unmapped"]["data.factor"] == "sms"


@pytest.mark.parametrize("type_name", MAPPED)
def test_erased_data_stays_erased_and_still_validates(
    type_name: str, validator: jsonschema.protocols.Validator
) -> None:
    row = row_of(type_name, erase=True)
    clear = json.dumps(ocsf_record(row_of(type_name)))

    record = ocsf_record(row)

    assert record is not None
    assert validator.is_valid(record)
    text = json.dumps(record)
    for path in row.erased:
        assert record["unmapped"][path] == ERASED
    if row.erased:
        assert record["unmapped"]["erased"] == sorted(row.erased)
        assert "203.0.113.7" in clear
        for value in ("203.0.113.7", "Mozilla/5.0", "Berlin", "dev-1", "52.52"):
            assert value not in text
        assert "src_endpoint" not in record  # no address left to name the endpoint


# -- the schema bites -------------------------------------------------------------------


def broken(record: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``record`` with ``path`` set to ``value`` (``...`` deletes it)."""
    copied = copy.deepcopy(record)
    *parents, leaf = path.split(".")
    node = copied
    for name in parents:
        node = node[name]
    if value is ...:
        del node[leaf]
    else:
        node[leaf] = value
    return copied


@pytest.mark.parametrize(
    ("type_name", "path", "value"),
    [
        ("mfa.verification.failed", "class_uid", ...),
        ("lockout.applied", "class_uid", ...),
        ("mfa.verification.failed", "activity_id", 7),
        ("mfa.verification.failed", "activity_id", 10),
        ("lockout.applied", "activity_id", 12),
        ("mfa.verification.failed", "class_uid", 3001),
        ("mfa.verification.failed", "category_uid", 2),
        ("mfa.verification.failed", "type_uid", 300202),
        ("mfa.verification.failed", "status_id", 3),
        ("mfa.verification.failed", "severity_id", 7),
        ("mfa.verification.failed", "severity_id", ...),
        ("mfa.verification.failed", "time", "2026-11-02T09:30:00Z"),
        ("mfa.verification.failed", "user", ...),
        ("lockout.applied", "user", ...),
        ("mfa.verification.failed", "user.uid", ...),
        ("mfa.verification.failed", "user.type_id", ...),
        ("mfa.verification.failed", "user.type_id", "1"),
        ("mfa.verification.failed", "src_endpoint.location.coordinates", ...),
        ("mfa.verification.failed", "src_endpoint.location.coordinates", [13.4]),
        ("mfa.verification.failed", "metadata", ...),
        ("mfa.verification.failed", "metadata.version", ...),
        ("mfa.verification.failed", "metadata.product.vendor_name", ...),
        ("mfa.verification.failed", "service", ...),
        ("mfa.verification.failed", "src_endpoint.ip", ERASED),
        ("mfa.verification.failed", "auth_protocol_id", 11),
        ("mfa.verification.failed", "is_mfa", "yes"),
        ("mfa.verification.failed", "mfa", True),
        ("lockout.applied", "is_mfa", True),
    ],
)
def test_schema_refuses_a_broken_record(
    type_name: str, path: str, value: Any, validator: jsonschema.protocols.Validator
) -> None:
    record = record_of(type_name)
    assert validator.is_valid(record)

    assert not validator.is_valid(broken(record, path, value))


def test_ocsf_export_writes_one_valid_record_per_mapped_event(
    tmp_path: Path, validator: jsonschema.protocols.Validator
) -> None:
    rows = [row_of(name, sequence=i) for i, name in enumerate(PAYLOADS)]
    out = tmp_path / "ledger.ocsf.jsonl"

    assert write_export(rows, fmt="ocsf", out=out) == len(MAPPED)

    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["metadata"]["event_code"] for r in records) == MAPPED
    assert all(validator.is_valid(record) for record in records)
    assert [r["metadata"]["sequence"] for r in records] == sorted(
        r["metadata"]["sequence"] for r in records
    )
