"""What receivers get: RFC 5424 framing, the Slack shape, OCSF fields, the webhook's JSON."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from importlib import resources

import jsonschema
import pytest

from alerts.config import Destination, GroupingPolicy
from alerts.formats import (
    MAX_UDP_BYTES,
    SD_ID,
    alert_document,
    ocsf_event,
    octet_counted,
    slack_message,
    syslog_message,
)
from alerts.grouping import EMPTY, Arrival, fold, tick
from alerts.model import Alert, alert_of
from tests.factories import T0
from tests.unit.alerts.fixtures import ip_block, lockout, risk

SYSLOG = Destination(name="siem", kind="syslog", host="127.0.0.1", hostname="alerts-1")
RFC5424 = re.compile(
    rb"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<proc>\S+) (?P<msgid>\S+) "
    rb"(?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+) (?P<msg>.*)$",
    re.S,
)


def _alert(event: object) -> Alert:
    alert = alert_of(event, GroupingPolicy())  # type: ignore[arg-type]
    assert alert is not None
    return alert


def _summary() -> Alert:
    alerts = [_alert(risk(at=T0 + timedelta(seconds=i))) for i in range(7)]
    state, _ = fold(EMPTY, [Arrival(a) for a in alerts], GroupingPolicy())
    _, closed = tick(state, T0 + timedelta(hours=1), GroupingPolicy())
    return closed[0]


def _params(sd: bytes) -> dict[str, str]:
    body = sd.decode()
    assert body.startswith(f"[{SD_ID} ") and body.endswith("]")
    pairs = re.findall(r'(\w+)="((?:[^"\\\]]|\\.)*)"', body[len(SD_ID) + 2 : -1])
    return {k: re.sub(r"\\(.)", r"\1", v) for k, v in pairs}


def test_syslog_is_rfc_5424_with_the_key_fields_as_structured_data() -> None:
    alert = _alert(risk())
    message = syslog_message(alert, SYSLOG, "k" * 32, now=T0)
    parsed = RFC5424.match(message)
    assert parsed is not None, message
    assert int(parsed["pri"]) == 10 * 8 + 3  # authpriv, error (a high alert)
    assert parsed["ts"] == b"2026-11-02T09:30:00.000Z"
    assert (parsed["host"], parsed["app"], parsed["msgid"]) == (
        b"alerts-1",
        b"factorstream",
        b"risk.detected",
    )
    params = _params(parsed["sd"])
    assert params["dedup"] == "k" * 32
    assert params["tenant"] == "acme" and params["subject"] == "u-1"
    assert params["detection"] == "push_fatigue" and params["severity"] == "high"
    assert params["ip"] == "203.0.113.7"
    assert parsed["msg"].startswith(b"\xef\xbb\xbf")  # UTF-8, said with the BOM
    assert "push_fatigue for u-1" in parsed["msg"][3:].decode()


def test_syslog_escapes_quotes_backslashes_and_brackets_in_sd_values() -> None:
    tricky = 'u-"a]b\\c'
    alert = _alert(risk(subject=tricky))
    parsed = RFC5424.match(syslog_message(alert, SYSLOG, "k", now=T0))
    assert parsed is not None
    assert _params(parsed["sd"])["subject"] == tricky


def test_syslog_severity_follows_the_alert_and_the_facility_the_destination() -> None:
    audit = Destination(name="a", kind="syslog", host="h", facility=13)
    low = _alert(lockout())  # a subject lockout is medium
    assert syslog_message(low, audit, "k", now=T0).startswith(b"<108>1 ")  # 13*8+4


def test_octet_counting_frames_a_message_by_its_length_in_bytes() -> None:
    message = syslog_message(_alert(risk(subject="ü-1")), SYSLOG, "k", now=T0)
    framed = octet_counted(message)
    length, _, rest = framed.partition(b" ")
    assert int(length) == len(rest) == len(message)


def test_a_udp_message_is_cut_to_a_datagram_and_stays_utf8() -> None:
    big = _alert(risk()).__class__
    alert = _alert(risk())
    long = big(**{**alert.__dict__, "text": "é" * 10_000})
    message = syslog_message(long, SYSLOG, "k", now=T0)
    assert len(message) <= MAX_UDP_BYTES
    message.decode("utf-8")


def test_syslog_can_carry_ocsf_json_in_msg() -> None:
    siem = Destination(name="s", kind="syslog", host="h", format="ocsf")
    parsed = RFC5424.match(syslog_message(_alert(risk()), siem, "k", now=T0))
    assert parsed is not None
    assert json.loads(parsed["msg"][3:])["class_uid"] == 2004


def test_slack_message_has_text_and_blocks() -> None:
    alert = _alert(risk(subject="<@here>"))
    message = slack_message(alert, "key")
    assert isinstance(message["text"], str) and "push_fatigue" in message["text"]
    types = [block["type"] for block in message["blocks"]]
    assert types == ["header", "section", "section", "context"]
    assert message["blocks"][0]["text"]["type"] == "plain_text"
    assert len(message["blocks"][0]["text"]["text"]) <= 150
    rendered = json.dumps(message)
    assert "<@here>" not in rendered and "&lt;@here&gt;" in rendered  # no mention injected
    assert "key" in message["blocks"][3]["elements"][0]["text"]


def test_a_slack_summary_says_the_count() -> None:
    message = slack_message(_summary(), "key")
    assert message["text"].startswith(":red_circle: [HIGH] 7×")
    fields = {f["text"].split("\n")[0]: f["text"] for f in message["blocks"][2]["fields"]}
    assert fields["*Count*"].endswith("7")


def _ocsf_iam_schema() -> dict[str, object]:
    text = resources.files("audit").joinpath("data/ocsf-1.1.0-iam.schema.json").read_text()
    schema: dict[str, object] = json.loads(text)
    return schema


def test_a_lockout_is_an_ocsf_1_1_account_change_lock_valid_against_its_schema() -> None:
    record = ocsf_event(_alert(lockout()), "key")
    assert (record["class_uid"], record["activity_id"], record["type_uid"]) == (3001, 9, 300109)
    assert record["user"]["uid"] == "u-1" and record["user"]["org"]["uid"] == "acme"
    schema = _ocsf_iam_schema()
    jsonschema.validate(record, {**schema, "oneOf": [{"$ref": "#/$defs/account_change"}]})


@pytest.mark.parametrize("make", [risk, ip_block])
def test_detections_and_ip_blocks_are_ocsf_detection_findings(make: object) -> None:
    alert = _alert(make())  # type: ignore[operator]
    record = ocsf_event(alert, "key")
    assert (record["category_uid"], record["class_uid"], record["type_uid"]) == (2, 2004, 200401)
    assert record["severity_id"] == {"high": 4, "medium": 3}[alert.severity]
    assert record["time"] == int(T0.timestamp() * 1000)
    finding = record["finding_info"]
    assert finding["uid"] == alert.id and finding["title"] == alert.title
    assert finding["related_events"] == [{"uid": alert.id}]
    assert record["metadata"]["version"] == "1.1.0" and record["metadata"]["uid"] == "key"


def test_an_ocsf_summary_carries_count_and_span() -> None:
    record = ocsf_event(_summary(), "key")
    assert record["count"] == 7
    assert record["end_time"] - record["start_time"] == 6000


def test_the_webhook_document_has_the_key_the_alert_and_the_event() -> None:
    alert = _alert(risk())
    document = alert_document(alert, "key")
    assert document["dedup_key"] == "key" and document["id"] == alert.id
    assert document["event"]["id"] == alert.id and document["event"]["type"] == "risk.detected"
    summary = alert_document(_summary(), "key2")
    assert summary["kind"] == "summary" and summary["count"] == 7 and "event" not in summary


def test_severities_of_lockouts_and_ip_blocks() -> None:
    assert _alert(lockout()).severity == "medium"
    assert _alert(lockout(permanent=True)).severity == "high"
    assert _alert(ip_block()).severity == "medium"
