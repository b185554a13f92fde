"""The lake's tables as Arrow schemas, and which event types feed each typed table.

``analytics.tables`` flattens events into rows of these schemas; every file of a table has
exactly its schema (compaction casts older files to it). The hive partition column
``date`` is the directory, never a column of the files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import pyarrow as pa

_TS = pa.timestamp("us", tz="UTC")
_S, _I, _F, _B = pa.string(), pa.int64(), pa.float64(), pa.bool_()

ENVELOPE: Final = [
    ("id", _S),
    ("time", _TS),
    ("type", _S),
    ("tenant", _S),
    ("subject", _S),
    ("correlationid", _S),
]
GEO: Final = [("ip", _S), ("country", _S), ("city", _S), ("latitude", _F), ("longitude", _F)]
DEVICE: Final = [("device_id", _S), ("device_kind", _S), ("device_os", _S), ("device_browser", _S)]

SCHEMAS: Final[Mapping[str, pa.Schema]] = {
    "events": pa.schema(
        [
            *ENVELOPE,
            ("source", _S),
            ("dataschema", _S),
            ("traceparent", _S),
            ("application", _S),
            ("policy_tier", _S),
            ("factor", _S),
            ("channel", _S),
            ("reason", _S),
            ("outcome", _S),
            ("challenge_id", _S),
            ("enrollment_id", _S),
            ("attempt", _I),
            ("elapsed_ms", _I),
            *GEO,
            ("asn", _I),
            ("geo_source", _S),
            *DEVICE,
            ("device_trusted", _B),
            ("role", _S),
            ("reasons", pa.list_(_S)),
            ("risk_level", _S),
            ("detection", _S),
            ("severity", _S),
            ("score", _I),
            ("data", _S),
        ]
    ),
    "verifications": pa.schema(
        [
            *ENVELOPE,
            ("application", _S),
            ("policy_tier", _S),
            ("factor", _S),
            ("success", _B),
            ("reason", _S),
            ("attempt", _I),
            ("elapsed_ms", _I),
            ("challenge_id", _S),
            ("enrollment_id", _S),
            ("country", _S),
            ("device_kind", _S),
        ]
    ),
    "challenges": pa.schema(
        [
            *ENVELOPE,
            ("application", _S),
            ("policy_tier", _S),
            ("factor", _S),
            ("status", _S),
            ("challenge_id", _S),
            ("channel", _S),
            ("provider", _S),
            ("reason", _S),
            ("destination_country", _S),
            ("resend", _B),
            ("cost_micros", _I),
            ("currency", _S),
            ("delivery_status", _S),
        ]
    ),
    "enrollments": pa.schema(
        [
            *ENVELOPE,
            ("application", _S),
            ("policy_tier", _S),
            ("factor", _S),
            ("status", _S),
            ("enrollment_id", _S),
            ("channel", _S),
            ("reason", _S),
            ("removed_by", _S),
            ("imported_from", _S),
            ("invited", _B),
        ]
    ),
    "lockouts": pa.schema(
        [
            *ENVELOPE,
            ("action", _S),
            ("scope", _S),
            ("reason", _S),
            ("factor", _S),
            ("ip", _S),
            ("policy_tier", _S),
            ("failures", _I),
            ("permanent", _B),
            ("locked_until", _TS),
            ("lockout_count", _I),
            ("distinct_subjects", _I),
        ]
    ),
    "risk_detections": pa.schema(
        [
            *ENVELOPE,
            ("detection", _S),
            ("severity", _S),
            ("score", _I),
            ("summary", _S),
            ("evidence", _S),
            ("related_event_ids", pa.list_(_S)),
            *GEO,
        ]
    ),
    "lifecycle": pa.schema(
        [
            *ENVELOPE,
            ("ceremony", _S),
            ("status", _S),
            ("application", _S),
            ("policy_tier", _S),
            ("reason", _S),
            ("action", _S),
            ("stage", _S),
            ("request_id", _S),
            ("trust_id", _S),
            ("grant_id", _S),
            ("requested_by", _S),
            ("approved_by", _S),
            ("attempted_by", _S),
            ("revoked_by", _S),
            ("ticket", _S),
            ("approve_before", _TS),
            ("expires_at", _TS),
            ("single_use", _B),
            ("uses", _I),
            ("devices_revoked", _I),
        ]
    ),
}
TABLES: Final = tuple(SCHEMAS)

PERSONAL: Final[Mapping[str, frozenset[str]]] = {
    "events": frozenset({"ip", "city", "latitude", "longitude", "device_id", "data"}),
    "lockouts": frozenset({"ip"}),
    "risk_detections": frozenset({"ip", "city", "latitude", "longitude", "summary", "evidence"}),
}
"""Columns that can hold a subject's personal data, by table (``analytics/erasure.py``
redacts them when the subject is erased): the columns flattened from the fields the schemas
mark as personal (``x-personal-data``: IP, city, coordinates, device id, a risk detection's
summary and evidence). ``data`` (the payload as JSON) holds them too, and keeps its other
fields. A test checks that no personal value of any event type survives a redaction."""

VERIFICATION_TYPES: Final = frozenset(
    {
        "mfa.verification.succeeded",
        "mfa.verification.failed",
        "mfa.push.approved",
        "mfa.push.rejected",
        "mfa.push.expired",
        "mfa.push.reported_fraud",
        "mfa.recovery.succeeded",
        "mfa.recovery.failed",
    }
)
LIFECYCLE_CEREMONIES: Final[Mapping[str, str]] = {
    "device.": "trusted_device",
    "admin.override.": "override",
    "access.temporary.": "temporary_access",
}
"""The ``lifecycle`` table's ceremonies, by the prefix of their event types: trusted devices
(``device.trusted|revoked|trust_refused``), the two-person override
(``admin.override.requested|approved|refused``) and its temporary-access codes
(``access.temporary.granted|used|refused``). Their personal fields (a device's name, an
override's justification) stay in ``events.data`` only, which erasure redacts."""
SUCCESS_TYPES: Final = frozenset(
    {"mfa.verification.succeeded", "mfa.push.approved", "mfa.recovery.succeeded"}
)
SIGN_IN_TYPES: Final = frozenset({"auth.login.attempted"}) | VERIFICATION_TYPES
"""What counts as a sign-in step: the password attempt and every verification outcome."""
PRIVILEGED_ROLES: Final = ("admin", "administrator", "root", "security_admin", "superuser")
"""Roles that count as privileged (``verifiers.policy.PRIVILEGED_ROLES``)."""
PHISHING_RESISTANT: Final = ("webauthn",)
"""Phishing-resistant factors (``verifiers.policy.PHISHING_RESISTANT``)."""
