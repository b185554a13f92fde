"""Ledger rows as OCSF 1.1.0 Authentication (3002) and Account Change (3001) events.

The class and activity of each event type come from ``schemas.registry`` (``ocsf``);
this module only knows how to fill the attributes of those two classes, and exports no
other. ``audit/data/ocsf-1.1.0-iam.schema.json`` holds both classes' 1.1.0 definitions:
an activity 1.1.0 lacks is written as ``activity_id`` 99 (Other) with its name in
``activity_name``. Erased personal data stays erased (each erased path appears in
``unmapped`` as ``[erased]``); every other ``data`` field no attribute takes lands in
``unmapped`` under its dotted path. The attributes filled: docs/auditors.md#the-ocsf-export.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, Final

from audit.rows import ERASED, LedgerRow, event_time, flatten
from schemas.registry import BY_NAME

OCSF_VERSION: Final = "1.1.0"
SCHEMA_RESOURCE: Final = "data/ocsf-1.1.0-iam.schema.json"
PRODUCT: Final = {"name": "factorstream", "vendor_name": "factorstream"}
LOG_NAME: Final = "factorstream compliance ledger"

AUTHENTICATION: Final = 3002
ACCOUNT_CHANGE: Final = 3001
IAM_CATEGORY: Final = (3, "Identity & Access Management")
OTHER: Final = 99

SEVERITY_NAMES: Final = {
    0: "Unknown",
    1: "Informational",
    2: "Low",
    3: "Medium",
    4: "High",
    5: "Critical",
    6: "Fatal",
    99: "Other",
}
STATUS_NAMES: Final = {0: "Unknown", 1: "Success", 2: "Failure", 99: "Other"}
SUCCESS, FAILURE = 1, 2

FAILED_TYPES: Final = {
    "mfa.enrollment.failed": None,
    "mfa.verification.failed": None,
    "mfa.recovery.failed": None,
    "mfa.push.rejected": "rejected",
    "mfa.push.expired": "expired",
    "mfa.push.reported_fraud": "reported_fraud",
    "device.trust_refused": None,
}
"""Types whose event records a failed attempt, with the status detail used when the
payload gives no ``reason``. ``auth.login.attempted`` says so in its ``outcome``."""

FACTOR_OF_TYPE: Final = {"mfa.push": "push", "mfa.recovery": "recovery_code"}
"""The factor of types whose payload has no ``factor`` field, by type prefix."""

ACTOR_FIELDS: Final = (
    "data.removed_by",
    "data.cleared_by",
    "data.requested_by",
    "data.revoked_by",
)
"""Payload fields naming who acted on the subject (an administrator, a DPO)."""

USER_TYPES: Final = {"admin": (2, "Admin"), "business": (1, "User"), "customer": (1, "User")}
"""OCSF user type by policy tier; the tier stays in ``unmapped`` too."""


@functools.cache
def ocsf_schema() -> dict[str, Any]:
    """The shipped JSON Schema (Draft 2020-12) of both classes at OCSF 1.1.0."""
    text = resources.files("audit").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def defined_activities() -> Mapping[int, frozenset[int]]:
    """class_uid -> the activity ids OCSF 1.1.0 defines for it (from the shipped schema)."""
    defs = ocsf_schema()["$defs"]
    found: dict[int, frozenset[int]] = {}
    for option in ocsf_schema()["oneOf"]:
        properties = defs[option["$ref"].rsplit("/", 1)[-1]]["properties"]
        found[properties["class_uid"]["const"]] = frozenset(properties["activity_id"]["enum"])
    return found


def ocsf_record(row: LedgerRow) -> dict[str, Any] | None:
    """``row`` as one OCSF 1.1.0 event, or ``None`` when its type maps to neither class."""
    event = row.event
    kind = BY_NAME.get(str(event.get("type")))
    mapping = kind.ocsf if kind is not None else None
    if kind is None or mapping is None or mapping.class_uid not in defined_activities():
        return None
    erased = sorted(set(row.erased))
    flat = flatten(row)
    fields = {
        path: value
        for path, value in flat.items()
        if path.startswith("data.") and value is not None and path not in erased
    }
    used: set[str] = set()

    def take(path: str) -> Any:
        value = fields.get(path)
        if value is not None:
            used.add(path)
        return value

    activity_id = mapping.activity_id
    if activity_id not in defined_activities()[mapping.class_uid]:
        activity_id = OTHER
    status_id, status_detail = _status(kind.name, take)
    severity_id = _severity(kind.name, status_id, fields)
    record: dict[str, Any] = {
        "category_uid": IAM_CATEGORY[0],
        "category_name": IAM_CATEGORY[1],
        "class_uid": mapping.class_uid,
        "class_name": mapping.class_name,
        "activity_id": activity_id,
        "activity_name": mapping.activity_name,
        "type_uid": mapping.class_uid * 100 + activity_id,
        "type_name": f"{mapping.class_name}: {mapping.activity_name}",
        "time": _millis(event_time(event)),
        "timezone_offset": 0,
        "severity_id": severity_id,
        "severity": SEVERITY_NAMES[severity_id],
        "status_id": status_id,
        "status": STATUS_NAMES[status_id],
        "message": kind.summary,
        "metadata": _metadata(row),
        "user": {**_user_type(fields), "uid": event["subject"], "org": {"uid": event["tenant"]}},
    }
    if status_detail is not None:
        record["status_detail"] = status_detail
    actor = next((take(path) for path in ACTOR_FIELDS if path in fields), None)
    if actor is not None:
        record["actor"] = {"user": {"type_id": 0, "uid": str(actor)}}
    endpoint = _src_endpoint(take, fields)
    if endpoint:
        record["src_endpoint"] = endpoint
    user_agent = take("data.client.user_agent")
    if user_agent is not None:
        record["http_request"] = {"user_agent": user_agent}
    if mapping.class_uid == AUTHENTICATION:
        record.update(_authentication(kind.name, event, take))
    present = {**(flat["extra"] or {}), **flat}
    unmapped = _unmapped(
        event, fields, used, erased, [p for p in erased if present.get(p) == ERASED]
    )
    if unmapped:
        record["unmapped"] = unmapped
    return record


def _status(type_name: str, take: Callable[[str], Any]) -> tuple[int, str | None]:
    if type_name == "auth.login.attempted":
        failed = take("data.outcome") == "failure"
    else:
        failed = type_name in FAILED_TYPES
    if not failed:
        return SUCCESS, None
    reason = take("data.reason")
    return FAILURE, str(reason) if reason is not None else FAILED_TYPES.get(type_name)


def _severity(type_name: str, status_id: int, fields: Mapping[str, Any]) -> int:
    if type_name == "mfa.push.reported_fraud":
        return 4  # High: the subject says someone else is signing in as them
    if type_name == "lockout.applied":
        return 4 if fields.get("data.permanent") else 3
    return 2 if status_id == FAILURE else 1


def _user_type(fields: Mapping[str, Any]) -> dict[str, Any]:
    """OCSF 1.1.0 requires ``user.type_id``; 0 (Unknown) when the tier does not say."""
    type_id, name = USER_TYPES.get(str(fields.get("data.policy_tier")), (0, "Unknown"))
    return {"type_id": type_id, "type": name}


def _metadata(row: LedgerRow) -> dict[str, Any]:
    event = row.event
    metadata: dict[str, Any] = {
        "version": OCSF_VERSION,
        "product": dict(PRODUCT),
        "uid": event["id"],
        "original_time": str(event["time"]),
        "logged_time": _millis(row.recorded_at),
        "sequence": row.sequence,
        "event_code": event["type"],
        "log_name": LOG_NAME,
        "log_provider": event["source"],
    }
    if event.get("correlationid"):
        metadata["correlation_uid"] = event["correlationid"]
    return metadata


def _src_endpoint(take: Callable[[str], Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """Where the request came from.

    OCSF names an endpoint by its address, and a 1.1.0 location needs coordinates: without
    an IP there is no endpoint, without both coordinates no location (the geo fields then
    stay in ``unmapped``).
    """
    ip = take("data.client.ip")
    if ip is None:
        return {}
    geo = "data.client.geo."
    if fields.get(f"{geo}longitude") is None or fields.get(f"{geo}latitude") is None:
        return {"ip": ip}
    location: dict[str, Any] = {"coordinates": [take(f"{geo}longitude"), take(f"{geo}latitude")]}
    for name in ("country", "region", "city"):
        value = take(f"{geo}{name}")
        if value is not None:
            location[name] = value
    return {"ip": ip, "location": location}


def _authentication(
    type_name: str, event: Mapping[str, Any], take: Callable[[str], Any]
) -> dict[str, Any]:
    """Attributes only Authentication has: the service signed in to, MFA and factor."""
    service = take("data.application") or event["source"]
    extra: dict[str, Any] = {"service": {"name": service}}
    if type_name.startswith("mfa."):
        extra["is_mfa"] = True
    factor = take("data.factor") or FACTOR_OF_TYPE.get(type_name.rsplit(".", 1)[0])
    if factor is not None:
        extra["auth_protocol_id"] = OTHER
        extra["auth_protocol"] = str(factor)
    return extra


def _unmapped(
    event: Mapping[str, Any],
    fields: Mapping[str, Any],
    used: set[str],
    erased: list[str],
    erased_present: list[str],
) -> dict[str, Any]:
    unmapped = {path: value for path, value in fields.items() if path not in used}
    for name in ("dataschema", "traceparent"):
        if event.get(name):
            unmapped[name] = event[name]
    for path in erased_present:
        unmapped[path] = ERASED
    if erased:
        unmapped["erased"] = erased
    return unmapped


def _millis(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware (UTC)")
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
