"""An alert: what one derived event (or a group of them) tells the SOC."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from alerts.config import GroupingPolicy, Severity
from schemas import Event, encode
from schemas.payloads import IpBlockApplied, LockoutApplied, RiskDetected

GroupKey = tuple[str, str, str, str]
"""(tenant, type, detection or lockout scope, key: subject, IP or ``*``)."""


@dataclass(frozen=True)
class Alert:
    id: str
    """The event's id; a summary's is ``<first event id>/summary``."""
    kind: Literal["alert", "summary", "test"]
    type: str
    tenant: str
    severity: Severity
    title: str
    text: str
    group: GroupKey
    time: datetime
    """Event time of the (first) event."""
    subject: str
    detection: str | None = None
    ip: str | None = None
    count: int = 1
    last_time: datetime | None = None
    keys: tuple[str, ...] = ()
    """Summaries: the subjects or IPs the group's events named (at most ``samples``)."""
    event_ids: tuple[str, ...] = ()
    event: dict[str, Any] | None = field(default=None, compare=False)
    """Single alerts: the CloudEvent itself (JSON)."""

    def dedup_key(self, destination: str) -> str:
        """Stable across redeliveries and replays: the same alert to the same destination
        has the same key, so a receiver drops repeats."""
        return hashlib.sha256(f"{destination}|{self.id}".encode()).hexdigest()[:32]


_LOCKOUT_SEVERITY: dict[str, Severity] = {"subject": "medium", "factor": "low", "ip": "medium"}


def lockout_severity(data: LockoutApplied) -> Severity:
    """Permanent lockouts are high; subject and IP lockouts medium; one factor's low."""
    return "high" if data.permanent else _LOCKOUT_SEVERITY[str(data.scope)]


def alert_of(event: Event, policy: GroupingPolicy) -> Alert | None:
    """The alert ``event`` raises, or ``None`` when its type is not alerted."""
    data = event.data
    base: dict[str, Any] = {
        "id": event.id,
        "kind": "alert",
        "type": event.type,
        "tenant": event.tenant,
        "time": event.time,
        "subject": event.subject,
        "event_ids": (event.id,),
        "event": json.loads(encode(event)),
    }
    if isinstance(data, RiskDetected):
        ip = data.client.ip if data.client is not None else None
        return Alert(
            **base,
            severity=str(data.severity),  # type: ignore[arg-type]
            title=f"Risk detected: {data.detection} ({data.severity}, score {data.score})",
            text=data.summary,
            group=(event.tenant, event.type, str(data.detection), event.subject),
            detection=str(data.detection),
            ip=ip,
            keys=(event.subject,),
        )
    if isinstance(data, LockoutApplied):
        what = {"subject": event.subject, "factor": f"{event.subject} ({data.factor})"}
        locked = data.ip if data.scope == "ip" else what.get(str(data.scope), event.subject)
        until = "permanently" if data.permanent else f"until {_at(data.locked_until)}"
        key = (data.ip or "*") if data.scope == "ip" else event.subject
        if data.scope != "ip" and policy.lockouts_by == "tenant":
            key = "*"
        return Alert(
            **base,
            severity=lockout_severity(data),
            title=f"Lockout: {data.scope} {locked} locked {until}",
            text=f"{data.scope} {locked} locked {until} after {data.failures} failures "
            f"(reason {data.reason}, lockout #{data.lockout_count}).",
            group=(event.tenant, event.type, str(data.scope), key),
            ip=data.ip,
            keys=(data.ip if data.scope == "ip" and data.ip else event.subject,),
        )
    if isinstance(data, IpBlockApplied):
        return Alert(
            **base,
            severity="medium",
            title=f"IP blocked: {data.ip} until {_at(data.blocked_until)}",
            text=f"IP {data.ip} blocked until {_at(data.blocked_until)}: {data.failures} "
            f"failures against {data.distinct_subjects} subjects (reason {data.reason}).",
            group=(event.tenant, event.type, "ip", data.ip),
            ip=data.ip,
            keys=(data.ip,),
        )
    return None


def summary_of(
    first: Alert, *, count: int, last: datetime, keys: tuple[str, ...], event_ids: tuple[str, ...]
) -> Alert:
    """The summary closing a group that began with ``first``: ``count`` alerts in all (the
    first, sent at once, among them)."""
    tenant, kind, what, key = first.group
    about = f" for {key}" if key != "*" else ""
    span = f"{_at(first.time)} to {_at(last)}"
    return replace(
        first,
        id=f"{first.id}/summary",
        kind="summary",
        title=f"{count}× {kind} {what}{about} in tenant {tenant}",
        text=f"{count} alerts of {kind} {what}{about} in tenant {tenant} between {span} "
        f"(the first was sent at once: {first.title}).",
        count=count,
        last_time=last,
        keys=keys,
        event_ids=event_ids,
        event=None,
    )


def _at(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.isoformat().replace("+00:00", "Z")
