"""Keycloak events mapped to the contract: one event record in, its events (or an
:class:`~sources.unmapped.Unmapped`) out.

A record is a login event (``EventRepresentation``: ``time`` in epoch milliseconds,
``type``, ``realmId``, ``clientId``, ``userId``, ``sessionId``, ``ipAddress``, ``error``,
``details``) or an admin event (``AdminEventRepresentation``: ``operationType``,
``resourceType``, ``resourcePath``, ``authDetails``) as the admin REST API answers them
(``/admin/realms/{realm}/events``, ``/admin-events``), or a line of the ``jboss-logging``
event listener written as JSON (``loggerName`` ``org.keycloak.events``, the event in
``message`` as ``key=value, …``). Which type (and, for ``LOGIN_ERROR``, which error)
becomes which event is data (:data:`EVENT_TYPES`, :data:`LOGIN_ERRORS`).

What Keycloak does not say is not invented: ``invalid_user_credentials`` does not say
whether a password or a one-time code was wrong, so it is a failed login, not a failed
verification of a guessed factor; a failed login of a name with no account has the
subject ``unknown`` and keeps ``details.username`` as personal data; the end of a
temporary lockout (``details.not_before``, written in the server's local time without an
offset) is kept as text, not turned into a time. Keycloak's own id is used when the record
has one (``id``, recent versions); otherwise the id is a hash of what the record says.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

from schemas import Event
from schemas import payloads as p
from schemas.fields import Channel, Factor, LockoutScope, Outcome
from schemas.registry import BY_PAYLOAD
from sources.events import (
    UNKNOWN_SUBJECT,
    IdpSource,
    MappedRecord,
    RecordOrigin,
    client,
    content_id,
    not_mapped,
    not_mapped_rows,
    to_event,
)
from sources.reading import name, obj, reason_code, text, token, utc_time
from sources.unmapped import Unmapped

PROVIDER: Final = "keycloak"
EVENTS_LOGGER: Final = "org.keycloak.events"


@dataclass(frozen=True)
class KeycloakSource(IdpSource):
    """The adapter's configuration: our tenant the events are filed under (Keycloak never
    decides it) and their ``source``, e.g. ``https://sso.acme.example/realms/acme`` (the
    realm; ids derive from it)."""


@dataclass(frozen=True)
class KeycloakEvent:
    """The parts of a Keycloak event every mapping uses, already checked."""

    record_id: str
    type: str
    time: datetime
    subject: str
    record: Mapping[str, Any]

    @property
    def details(self) -> Mapping[str, Any]:
        return obj(self.record.get("details"))

    @property
    def error(self) -> str | None:
        return reason_code(self.record.get("error"))

    @property
    def context(self) -> dict[str, Any]:
        who = obj(self.record.get("authDetails")) if "operationType" in self.record else self.record
        return {
            "application": name(who.get("clientId")),
            "client": client(who.get("ipAddress"), None, None),
        }


PayloadMaker = Callable[[KeycloakEvent], p.Payload]
Roles = tuple[tuple[str | None, PayloadMaker], ...]
"""The events one record becomes: each with its role (``None`` for a record of one event)."""

# -- payloads, one small function per meaning ---------------------------------------------


def _login(outcome: Outcome, reason: str | None = None) -> PayloadMaker:
    def make(event: KeycloakEvent) -> p.Payload:
        unknown = event.subject == UNKNOWN_SUBJECT
        return p.LoginAttempted(
            outcome=outcome,
            method=name(event.details.get("auth_method")) or "unknown",
            reason=(reason or event.error or "failed") if outcome is Outcome.FAILURE else None,
            attempted_name=text(event.details.get("username"), 320) if unknown else None,
            **event.context,
        )

    return make


def _otp_enrolled(event: KeycloakEvent) -> p.Payload:
    return p.EnrollmentCompleted(
        factor=Factor.TOTP,
        enrollment_id=_credential_id(event),
        channel=Channel.AUTHENTICATOR_APP,
        **event.context,
    )


def _otp_enrollment_failed(event: KeycloakEvent) -> p.Payload:
    return p.EnrollmentFailed(
        factor=Factor.TOTP, reason=event.error or "enrollment_failed", **event.context
    )


def _otp_removed(event: KeycloakEvent) -> p.Payload:
    return p.EnrollmentRemoved(
        factor=Factor.TOTP, enrollment_id=_credential_id(event), reason="removed", **event.context
    )


def _lock(reason: str) -> PayloadMaker:
    def make(event: KeycloakEvent) -> p.Payload:
        return p.IdpLockReported(
            provider=PROVIDER,
            scope=LockoutScope.SUBJECT,
            reason=reason,
            detail=_lock_detail(event.details),
            **event.context,
        )

    return make


def _failures_cleared(event: KeycloakEvent) -> p.Payload:
    return p.IdpUnlockReported(
        provider=PROVIDER,
        scope=LockoutScope.SUBJECT,
        reason="login_failures_cleared",
        **event.context,
    )


EVENT_TYPES: Final[Mapping[str, Roles]] = {
    "LOGIN": ((None, _login(Outcome.SUCCESS)),),
    "UPDATE_TOTP": ((None, _otp_enrolled),),
    "UPDATE_TOTP_ERROR": ((None, _otp_enrollment_failed),),
    "REMOVE_TOTP": ((None, _otp_removed),),
    "USER_DISABLED_BY_TEMPORARY_LOCKOUT": ((None, _lock("temporary_lockout")),),
    "USER_DISABLED_BY_PERMANENT_LOCKOUT": ((None, _lock("permanent_lockout")),),
}
"""Keycloak event type → the events it becomes (``LOGIN_ERROR``: :data:`LOGIN_ERRORS`).

A lockout is Keycloak's own report (``idp.lock.reported``, scope subject): the brute-force
detector's ``USER_DISABLED_BY_TEMPORARY_LOCKOUT`` / ``…_PERMANENT_LOCKOUT``."""

LOGIN_ERRORS: Final[Mapping[str, Roles]] = {
    "invalid_user_credentials": ((None, _login(Outcome.FAILURE)),),
    "user_not_found": ((None, _login(Outcome.FAILURE)),),
    "user_temporarily_disabled": (
        ("login", _login(Outcome.FAILURE, "locked_out")),
        ("lock", _lock("user_temporarily_disabled")),
    ),
}
"""``LOGIN_ERROR``'s ``error`` → the events it becomes. A sign-in refused because the user
is temporarily disabled is a failed login that was never checked (reason ``locked_out``:
no guess, the lockout fold does not count it) and Keycloak's word that the user is locked
(the only one Keycloak versions before the lockout event types give)."""

ADMIN_UNLOCK: Final = re.compile(r"(?:^|/)attack-detection/brute-force/users/([^/]+)$")
"""An administrator cleared one user's login failures (``DELETE`` on this path), which
"can release temporary disabled user": Keycloak's word that the user is unlocked."""

CONTRACT_GAPS: Final[Mapping[str, str]] = {
    "DELETE attack-detection/brute-force/users": "clearing every user's login failures "
    "releases every lock but names no subject to file an unlock under",
}
"""MFA-related records the contract cannot carry yet without inventing facts."""

NO_CONTRACT_TYPE: Final[Mapping[str, str]] = {
    "REMOVE_TOTP_ERROR": "a failed removal of an authenticator app has no event type",
}
"""MFA-adjacent event types with no event type in the contract."""

# -- the mapping --------------------------------------------------------------------------


def map_records(record: Any, source: KeycloakSource) -> list[MappedRecord]:
    """Every event one Keycloak record becomes (a ``LOGIN_ERROR`` of a temporarily disabled
    user is two), or one :class:`Unmapped` with the reason. Never raises for any JSON value:
    an event returned has been through the codec."""
    if not isinstance(record, Mapping):
        return [_unmapped(None, None, "not_an_object", "a Keycloak event is a JSON object")]
    if isinstance(record.get("message"), str) or "loggerName" in record:
        parsed = _from_log_line(record)
        if isinstance(parsed, Unmapped):
            return [parsed]
        record = parsed
    admin = "operationType" in record
    kind = _admin_type(record) if admin else _text(record.get("type"))
    record_id = token(record.get("id")) or content_id(record)
    if record_id is None:
        return [_unmapped(None, kind, "missing_record_id", "no id, and not JSON to hash")]
    if kind is None:
        return [_unmapped(record_id, None, "missing_type", "no type (or operationType)")]
    found = _admin_roles(record, kind) if admin else _roles(record, kind)
    if isinstance(found, str):
        origin = RecordOrigin(PROVIDER, record_id, kind)
        return [not_mapped(origin, CONTRACT_GAPS, NO_CONTRACT_TYPE, found)]
    roles, subject = found
    time = _time(record.get("time"))
    if time is None:
        return [_unmapped(record_id, kind, "invalid_date", "time is not epoch milliseconds")]
    if subject is None:
        return [_unmapped(record_id, kind, "missing_subject", "no usable userId")]
    event = KeycloakEvent(record_id, kind, time, subject, record)
    correlation = _correlation(record) or record_id
    return [
        to_event(
            RecordOrigin(PROVIDER, record_id, kind, role),
            source,
            partial(make, event),
            subject=subject,
            correlation=correlation,
            time=time,
        )
        for role, make in roles
    ]


def map_record(record: Any, source: KeycloakSource) -> Event | Unmapped:
    """The first event one record becomes (for every type but a ``LOGIN_ERROR`` of a
    temporarily disabled user, the only one); :func:`map_records` gives them all."""
    return map_records(record, source)[0]


def _roles(record: Mapping[str, Any], kind: str) -> tuple[Roles, str | None] | str:
    """The events a login event becomes and its subject, or why it becomes none."""
    if kind == "LOGIN_ERROR":
        error = _text(record.get("error")) or ""
        roles = LOGIN_ERRORS.get(error)
        if roles is None:
            return f"error {error or 'missing'}: no credential failure or lock"
        if error == "user_not_found":
            return roles, UNKNOWN_SUBJECT
    else:
        found = EVENT_TYPES.get(kind)
        if found is None:
            return "not an MFA-related event type"
        roles = found
    return roles, token(record.get("userId"))


def _admin_roles(record: Mapping[str, Any], kind: str) -> tuple[Roles, str | None] | str:
    path = _text(record.get("resourcePath")) or ""
    unlocked = ADMIN_UNLOCK.search(path)
    if record.get("operationType") != "DELETE" or unlocked is None:
        return "not an MFA-related admin event"
    return ((None, _failures_cleared),), token(unlocked.group(1))


def _admin_type(record: Mapping[str, Any]) -> str | None:
    """An admin event's type, for people: the operation and the path without its ids
    (``DELETE attack-detection/brute-force/users``)."""
    operation = token(record.get("operationType"))
    if operation is None:
        return None
    path = _text(record.get("resourcePath")) or ""
    unlocked = ADMIN_UNLOCK.search(path)
    if unlocked is not None:
        return f"{operation} {path[: unlocked.start(1) - 1]}"
    if path.rstrip("/").endswith("attack-detection/brute-force/users"):
        return f"{operation} attack-detection/brute-force/users"
    return f"{operation} {token(record.get('resourceType')) or 'unknown'}"


def _unmapped(record_id: str | None, kind: str | None, reason: str, detail: str) -> Unmapped:
    return Unmapped(PROVIDER, record_id, kind, reason, detail)


# -- reading a record --------------------------------------------------------------------


def _text(value: Any) -> str | None:
    return text(value, 128)


def _time(value: Any) -> datetime | None:
    """Epoch milliseconds (``time``), or an ISO 8601 time with offset (a log line's)."""
    if isinstance(value, str):
        return utc_time(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _correlation(record: Mapping[str, Any]) -> str | None:
    """The user session, else the authentication session (``details.code_id``)."""
    return token(record.get("sessionId")) or token(obj(record.get("details")).get("code_id"))


def _credential_id(event: KeycloakEvent) -> str:
    return token(event.details.get("credential_id")) or event.record_id


def _lock_detail(details: Mapping[str, Any]) -> str | None:
    """What the brute-force detector says: its reason, the failures, the end as written."""
    said = [
        f"{key}={details[key]}"
        for key in ("reason", "num_failures", "not_before")
        if isinstance(details.get(key), str | int) and not isinstance(details.get(key), bool)
    ]
    return text("; ".join(said), 1024)


# -- the jboss-logging listener's lines ---------------------------------------------------

_PAIR = re.compile(r"""([A-Za-z_][\w.-]*)=('[^']*'|"(?:[^"\\]|\\.)*"|[^,]*)(?:,\s*|$)""")
_FIELDS: Final = frozenset(
    {"type", "operationType", "realmId", "realmName", "clientId", "userId", "ipAddress"}
    | {"error", "resourceType", "resourcePath", "sessionId"}
)
_LISTENER_NOTES: Final = frozenset({"authSessionParentId", "authSessionTabId"})


def _from_log_line(line: Mapping[str, Any]) -> Mapping[str, Any] | Unmapped:
    """A JSON log line of the ``jboss-logging`` listener as the event record it logs."""
    logger = line.get("loggerName")
    message = line.get("message")
    if logger != EVENTS_LOGGER or not isinstance(message, str):
        return _unmapped(None, None, "not_mfa", "a log line of another logger than events")
    fields: dict[str, Any] = {}
    details: dict[str, str] = {}
    for key, raw in _PAIR.findall(message):
        value = _unquote(raw)
        if value is None or key in _LISTENER_NOTES:
            continue
        (fields if key in _FIELDS else details)[key] = value
    if "type" not in fields and "operationType" not in fields:
        return _unmapped(None, None, "missing_type", "the log message names no event type")
    record: dict[str, Any] = {**fields, "details": details, "time": line.get("timestamp")}
    if "operationType" in fields:
        who = {key: fields.pop(key) for key in ("clientId", "userId", "ipAddress") if key in fields}
        record = {**fields, "authDetails": who, "time": line.get("timestamp")}
    return record


def _unquote(raw: str) -> str | None:
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return None if value in ("", "null") else value


# -- the reference ------------------------------------------------------------------------


def _stub(kind: str) -> KeycloakEvent:
    return KeycloakEvent("k", kind, datetime(2000, 1, 1, tzinfo=UTC), "u", {})


def _types(roles: Roles, kind: str) -> str:
    return ", ".join(f"`{BY_PAYLOAD[type(make(_stub(kind)))].name}`" for _, make in roles)


def reference() -> str:
    """The Keycloak part of ``docs/sources.md``."""
    lines = [
        "## Keycloak",
        "",
        "Records: login and admin events of the admin REST API (`/admin/realms/{realm}/events`,",
        "`/admin-events`), or JSON log lines of the `jboss-logging` event listener (logger",
        "`org.keycloak.events`). Event ids derive from the source and Keycloak's `id`, or, for",
        "versions that give none, a hash of the record (read a realm from one of the two, not",
        "both). Time is `time` (epoch ms), or the log line's `timestamp`. Keycloak does not say",
        "which credential `invalid_user_credentials` refused (password or one-time code): it is",
        "a failed login, not a guessed factor.",
        "",
        "| Keycloak event | events |",
        "|---|---|",
        *(f"| `{kind}` | {_types(roles, kind)} |" for kind, roles in sorted(EVENT_TYPES.items())),
        *(
            f"| `LOGIN_ERROR` error `{error}` | {_types(roles, 'LOGIN_ERROR')} |"
            for error, roles in sorted(LOGIN_ERRORS.items())
        ),
        "| admin `DELETE attack-detection/brute-force/users/{userId}` | `idp.unlock.reported` |",
        "",
        "Not mapped (yet):",
        "",
        *not_mapped_rows("Keycloak event", CONTRACT_GAPS, NO_CONTRACT_TYPE),
        "",
        "Every other type, `LOGIN_ERROR` error and admin event is `not_mfa`.",
        "",
    ]
    return "\n".join(lines)
