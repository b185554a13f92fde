"""What each destination receives, built from an alert (pure: time comes in).

* :func:`alert_document`: the webhook's JSON (``format`` ``alert``);
* :func:`slack_message`: a Slack incoming-webhook message (``text`` + ``blocks``);
* :func:`ocsf_event`: OCSF 1.1.0 (a detection or an IP block as Detection Finding 2004,
  a lockout as Account Change 3001 / Lock, the class the registry names);
* :func:`syslog_message`: RFC 5424 with structured data ``[factorstream@32473 …]``, and
  :func:`octet_counted` (RFC 6587 framing on TCP).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from alerts.config import Destination
from alerts.model import Alert
from schemas.registry import BY_NAME

OCSF_VERSION: Final = "1.1.0"
PRODUCT: Final = {"name": "factorstream", "vendor_name": "factorstream"}
SD_ID: Final = "factorstream@32473"
"""Structured-data id: 32473 is the enterprise number RFC 5612 reserves for examples;
a site with its own number can rewrite it in its collector."""
SYSLOG_SEVERITY: Final = {"critical": 2, "high": 3, "medium": 4, "low": 5, "none": 6}
OCSF_SEVERITY: Final = {"none": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
OCSF_SEVERITY_NAME: Final = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
MAX_UDP_BYTES: Final = 8192
"""A syslog message over UDP is cut to this many bytes (its MSG shortened)."""
DETECTION_FINDING: Final = (2004, "Detection Finding", 2, "Findings")


def _at(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def alert_document(alert: Alert, dedup_key: str) -> dict[str, Any]:
    """The webhook's body: the alert, its key, and (single alerts) the event itself."""
    document: dict[str, Any] = {
        "version": 1,
        "id": alert.id,
        "dedup_key": dedup_key,
        "kind": alert.kind,
        "type": alert.type,
        "tenant": alert.tenant,
        "severity": alert.severity,
        "title": alert.title,
        "text": alert.text,
        "subject": alert.subject,
        "detection": alert.detection,
        "ip": alert.ip,
        "time": _at(alert.time),
        "count": alert.count,
        "group": dict(zip(("tenant", "type", "what", "key"), alert.group, strict=True)),
    }
    if alert.kind == "summary":
        document |= {
            "last_time": _at(alert.last_time),
            "keys": list(alert.keys),
            "event_ids": list(alert.event_ids),
        }
    if alert.event is not None:
        document["event"] = alert.event
    return document


def json_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


_EMOJI: Final = {
    "critical": ":rotating_light:",
    "high": ":red_circle:",
    "medium": ":large_orange_circle:",
    "low": ":large_yellow_circle:",
    "none": ":white_circle:",
}


def _mrkdwn(text: str) -> str:
    """Slack's three escaped characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(alert: Alert, dedup_key: str) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (notifications, fallback) and ``blocks``."""
    fields = [
        ("Severity", alert.severity),
        ("Tenant", alert.tenant),
        ("Type", alert.type + (f" / {alert.detection}" if alert.detection else "")),
        (
            "Subject" if alert.kind != "summary" else "Count",
            alert.subject if alert.kind != "summary" else str(alert.count),
        ),
    ]
    if alert.ip:
        fields.append(("IP", alert.ip))
    if alert.kind == "summary" and alert.keys:
        fields.append(("Among them", ", ".join(alert.keys)))
    text = f"{_EMOJI[alert.severity]} [{alert.severity.upper()}] {_mrkdwn(alert.title)}"
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": alert.title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(alert.text)[:3000]}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{name}*\n{_mrkdwn(value)[:1900]}"}
                    for name, value in fields[:10]
                ],
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"{_at(alert.time)} · alert {alert.id} · key {dedup_key}",
                    }
                ],
            },
        ],
    }


def ocsf_event(alert: Alert, dedup_key: str) -> dict[str, Any]:
    """The alert as one OCSF 1.1.0 event of the class the registry names for its type
    (Detection Finding where it names none: an IP block is a finding about an address).
    A summary carries ``count``, ``start_time`` and ``end_time``."""
    kind = BY_NAME[alert.type]
    severity_id = OCSF_SEVERITY[alert.severity]
    base: dict[str, Any] = {
        "time": _millis(alert.time),
        "timezone_offset": 0,
        "severity_id": severity_id,
        "severity": OCSF_SEVERITY_NAME[severity_id],
        "message": alert.title,
        "metadata": {
            "version": OCSF_VERSION,
            "product": dict(PRODUCT),
            "uid": dedup_key,
            "event_code": alert.type,
            "original_time": _at(alert.time),
            "log_name": "factorstream alerts",
        },
        "unmapped": {"tenant": alert.tenant, "alert_id": alert.id, "kind": alert.kind},
    }
    if alert.event is not None:
        base["metadata"]["correlation_uid"] = alert.event.get("correlationid")
    if alert.kind == "summary":
        base |= {
            "count": alert.count,
            "start_time": _millis(alert.time),
            "end_time": _millis(alert.last_time or alert.time),
        }
        base["unmapped"]["keys"] = list(alert.keys)
    if kind.ocsf is not None and kind.ocsf.class_uid == 3001:
        activity = kind.ocsf.activity_id
        record = {
            "category_uid": 3,
            "category_name": "Identity & Access Management",
            "class_uid": 3001,
            "class_name": kind.ocsf.class_name,
            "activity_id": activity,
            "activity_name": kind.ocsf.activity_name,
            "type_uid": 3001 * 100 + activity,
            "type_name": f"{kind.ocsf.class_name}: {kind.ocsf.activity_name}",
            "status_id": 1,
            "status": "Success",
            "user": {"type_id": 0, "uid": alert.subject, "org": {"uid": alert.tenant}},
            **base,
        }
        if alert.ip:
            record["src_endpoint"] = {"ip": alert.ip}
        return record
    class_uid, class_name, category_uid, category_name = DETECTION_FINDING
    finding: dict[str, Any] = {
        "uid": alert.id,
        "title": alert.title,
        "desc": alert.text,
        "types": [alert.detection or alert.type],
        "created_time": _millis(alert.time),
        "first_seen_time": _millis(alert.time),
        "last_seen_time": _millis(alert.last_time or alert.time),
        "related_events": [{"uid": uid} for uid in alert.event_ids],
    }
    record = {
        "category_uid": category_uid,
        "category_name": category_name,
        "class_uid": class_uid,
        "class_name": class_name,
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": class_uid * 100 + 1,
        "type_name": f"{class_name}: Create",
        "status_id": 1,
        "status": "New",
        "finding_info": finding,
        **base,
    }
    data = (alert.event or {}).get("data") or {}
    if isinstance(data.get("score"), int):
        record["risk_score"] = data["score"]
    record["unmapped"]["subject"] = alert.subject
    if alert.ip:
        record["src_endpoint"] = {"ip": alert.ip}
    return record


def _sd_value(value: object) -> str:
    """An SD-PARAM value: ``"``, ``\\`` and ``]`` escaped (RFC 5424 §6.3.3)."""
    text = str(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslog_message(
    alert: Alert, destination: Destination, dedup_key: str, *, now: datetime, procid: str = "-"
) -> bytes:
    """One RFC 5424 message: ``<PRI>1 TIMESTAMP HOSTNAME factorstream PROCID MSGID [SD] MSG``;
    MSGID is the event type, PRI the destination's facility and the alert's severity,
    MSG (UTF-8 with BOM) the alert's text, or its OCSF JSON with ``format`` ``ocsf``."""
    pri = destination.facility * 8 + SYSLOG_SEVERITY[alert.severity]
    params = {
        "id": alert.id,
        "dedup": dedup_key,
        "kind": alert.kind,
        "tenant": alert.tenant,
        "type": alert.type,
        "severity": alert.severity,
        "subject": alert.subject,
        "detection": alert.detection,
        "ip": alert.ip,
        "count": alert.count,
        "time": _at(alert.time),
    }
    sd = (
        "["
        + SD_ID
        + "".join(
            f' {name}="{_sd_value(value)}"' for name, value in params.items() if value is not None
        )
        + "]"
    )
    timestamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    host, proc = _token(destination.hostname, 255), _token(procid, 128)
    header = f"<{pri}>1 {timestamp} {host} factorstream {proc} {alert.type[:32]} {sd} "
    if destination.format == "ocsf":
        body = json_bytes(ocsf_event(alert, dedup_key))
    else:
        body = f"{alert.title}: {alert.text}".encode()
    message = header.encode() + b"\xef\xbb\xbf" + body
    if destination.transport == "udp" and len(message) > MAX_UDP_BYTES:
        message = message[:MAX_UDP_BYTES]
        message = message.decode("utf-8", "ignore").encode()  # no cut character
    return message


def _token(value: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, or ``-``."""
    cleaned = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return cleaned or "-"


def octet_counted(message: bytes) -> bytes:
    """RFC 6587 §3.4.1 framing: ``MSG-LEN SP SYSLOG-MSG``."""
    return str(len(message)).encode() + b" " + message
