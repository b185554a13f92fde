"""Encode and decode events on the wire.

Structured mode (what factorstream writes): the whole event is the Kafka value, JSON,
``content-type: application/cloudevents+json``. Binary mode (also accepted): attributes
in ``ce_*`` headers, ``data`` alone in the value. Every failure to decode raises
:class:`EventDecodeError` naming the offending field; nothing else escapes.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import Any, Final

import msgspec

from schemas.envelope import ATTRIBUTE_PATTERNS, STRUCTURED_CONTENT_TYPE, CloudEvent, Event
from schemas.errors import EventDecodeError
from schemas.payloads import Payload
from schemas.registry import BY_DATASCHEMA, BY_NAME, EventType

MAX_EVENT_BYTES: Final = 64 * 1024
"""Largest accepted event (an MFA event is about 1 KiB; anything this big is abuse)."""

Headers = Iterable[tuple[str, bytes | None]]

_envelope_decoder = msgspec.json.Decoder(CloudEvent[msgspec.Raw])
_payload_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    t.dataschema: msgspec.json.Decoder(t.payload) for t in BY_NAME.values()
}
_event_decoders: dict[bytes, msgspec.json.Decoder[Any]] = {
    t.dataschema.encode(): msgspec.json.Decoder(CloudEvent[t.payload])  # type: ignore[name-defined]
    for t in BY_NAME.values()
}
_DATASCHEMA_KEY = b'"dataschema":"'
_encoder = msgspec.json.Encoder()
_ATTRIBUTES = tuple(ATTRIBUTE_PATTERNS)
_attribute_values = operator.attrgetter(*_ATTRIBUTES)
_ATTRIBUTE_RES = {name: re.compile(pattern) for name, pattern in ATTRIBUTE_PATTERNS.items()}
_ALL_ATTRIBUTES = re.compile(
    "\n".join(pattern.strip("^$") for pattern in ATTRIBUTE_PATTERNS.values()), re.ASCII
)
_AT = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED = re.compile(r"(?:unknown field|required field|Invalid) `(?P<name>[^`]+)`")


def encode(event: Event) -> bytes:
    """The structured-mode Kafka value of ``event``."""
    return _encoder.encode(event)


def kafka_key(event: Event) -> bytes:
    return event.partitionkey.encode()


def structured_headers() -> list[tuple[str, bytes]]:
    return [("content-type", STRUCTURED_CONTENT_TYPE.encode())]


def encode_binary(event: Event) -> tuple[list[tuple[str, bytes]], bytes]:
    """Binary mode: ``ce_*`` headers and the bare ``data`` value."""
    attributes = msgspec.to_builtins(event)
    data = attributes.pop("data")
    headers = [("content-type", attributes.pop("datacontenttype").encode())]
    headers += [(f"ce_{name}", str(value).encode()) for name, value in attributes.items()]
    # to_builtins already left out attributes at their default (traceparent None)
    return headers, _encoder.encode(data)


def decode(value: bytes | bytearray | memoryview | str, headers: Headers | None = None) -> Event:
    """Decode and validate one Kafka record's value (structured or binary mode)."""
    try:
        raw = value.encode() if isinstance(value, str) else bytes(value)
    except UnicodeEncodeError:
        raise EventDecodeError("event", "text is not encodable as UTF-8") from None
    if len(raw) > MAX_EVENT_BYTES:
        raise EventDecodeError("event", f"value of {len(raw)} bytes exceeds {MAX_EVENT_BYTES}")
    binary = _binary_attributes(headers) if headers is not None else None
    if binary is not None:
        raw = _structured_from_binary(binary, raw)
    event = _decode_in_one_pass(raw)
    if event is None:
        event = _decode_in_two_passes(raw)
    if event.time.tzinfo is not UTC:
        event = msgspec.structs.replace(event, time=event.time.astimezone(UTC))
    return event


def _decode_in_one_pass(raw: bytes) -> Event | None:
    """The fast path: find ``dataschema`` textually, decode envelope and payload together.

    Returns ``None`` whenever that shortcut does not apply or the event is invalid; the
    two-pass path then decides, and words any error exactly.
    """
    start = raw.find(_DATASCHEMA_KEY)
    if start < 0:
        return None
    start += len(_DATASCHEMA_KEY)
    dataschema = raw[start : raw.find(b'"', start)]
    decoder = _event_decoders.get(dataschema)
    if decoder is None:
        return None
    try:
        event: Event = decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        return None
    if event.dataschema.encode() != dataschema:  # the text found was inside ``data``
        return None
    _check_envelope(event)
    return event


def _decode_in_two_passes(raw: bytes) -> Event:
    """The envelope first (``data`` kept raw), then ``data`` by the type it names."""
    try:
        envelope = _envelope_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise _field_error(str(exc), "") from None
    except msgspec.DecodeError as exc:
        raise EventDecodeError("event", f"not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise EventDecodeError("event", "not valid UTF-8") from None
    kind = _check_envelope(envelope)
    try:
        data: Payload = _payload_decoders[kind.dataschema].decode(envelope.data)
    except msgspec.ValidationError as exc:
        raise _field_error(str(exc), "data") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise EventDecodeError("data", f"not valid JSON text: {exc}") from None
    return msgspec.structs.replace(envelope, data=data)  # type: ignore[arg-type]


def _check_envelope(envelope: CloudEvent[Any]) -> EventType:
    """The rules that span attributes: patterns, known type and schema, partition key."""
    values = _attribute_values(envelope)
    if _ALL_ATTRIBUTES.fullmatch("\n".join(values)) is None:
        for name, value in zip(_ATTRIBUTES, values, strict=True):
            if _ATTRIBUTE_RES[name].fullmatch(value) is None:
                raise EventDecodeError(
                    name, f"{value!r} does not match {ATTRIBUTE_PATTERNS[name]!r}"
                )
    kind = BY_NAME.get(envelope.type)
    if kind is None:
        raise EventDecodeError("type", f"unknown event type {envelope.type!r}")
    schema_kind = BY_DATASCHEMA.get(envelope.dataschema)
    if schema_kind is None or schema_kind.name != kind.name:
        raise EventDecodeError(
            "dataschema",
            f"expected a schema of {kind.name!r} (e.g. {kind.dataschema!r}), "
            f"got {envelope.dataschema!r}",
        )
    expected_key = f"{envelope.tenant}/{envelope.subject}"
    if envelope.partitionkey != expected_key:
        raise EventDecodeError(
            "partitionkey",
            f"expected tenant/subject {expected_key!r}, got {envelope.partitionkey!r}",
        )
    return schema_kind


def _field_error(message: str, prefix: str) -> EventDecodeError:
    match = _AT.match(message)
    assert match is not None  # noqa: S101 - the pattern matches any string
    path = (match["path"] or "").lstrip(".")
    named = _NAMED.search(match["reason"])
    if named and not path.endswith(named["name"]):
        path = f"{path}.{named['name']}".lstrip(".")
    field = ".".join(part for part in (prefix, path) if part) or "event"
    return EventDecodeError(field, match["reason"])


def _binary_attributes(headers: Headers) -> dict[str, str] | None:
    """The ``ce_*`` headers as attributes, or ``None`` when the record is structured mode."""
    attributes: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if lower == "content-type" and value is not None:
            content_type = value.decode("utf-8", "replace")
            if content_type.startswith(STRUCTURED_CONTENT_TYPE):
                return None
            attributes["datacontenttype"] = content_type.split(";")[0].strip()
        elif lower.startswith("ce_"):
            attribute = lower[3:] or f"header {name!r}"
            if value is None:
                raise EventDecodeError(attribute, "header present without a value")
            try:
                attributes[attribute] = value.decode("utf-8")
            except UnicodeDecodeError:
                raise EventDecodeError(attribute, "header is not UTF-8") from None
    return attributes if "specversion" in attributes else None


def _structured_from_binary(attributes: Mapping[str, str], data: bytes) -> bytes:
    try:
        msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise EventDecodeError("data", f"not valid JSON: {exc}") from None
    document: dict[str, Any] = dict(attributes)
    document["data"] = msgspec.Raw(data)
    return _encoder.encode(document)
