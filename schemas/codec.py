"""Encode and decode events on the wire.

Structured mode (what factorstream writes): the whole event is the Kafka value, JSON,
``content-type: application/cloudevents+json``. Binary mode (also accepted): attributes
in ``ce_*`` headers, ``data`` alone in the value. Every failure to decode raises
:class:`EventDecodeError` naming the offending field; nothing else escapes.

**Extension attributes the contract does not know are kept**, within bounds: a name of
CloudEvents' form (1–20 lower-case ASCII letters and digits), a value that is a string
(at most :data:`~schemas.envelope.MAX_EXTENSION_LENGTH` characters), a 32-bit integer or
a boolean, at most :data:`~schemas.envelope.MAX_EXTENSIONS` of them; ``null`` is an
absent attribute. They land in :attr:`CloudEvent.extensions` and are written back as
top-level members (structured) or ``ce_*`` headers (binary), so a worker re-encoding an
event passes them on. Anything else outside the contract (a misspelt attribute such as
``tennant``: its name is a valid extension name, so it is *kept* and the required
``tenant`` is then missing; ``data_base64``; an object value) is still refused.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import Any, Final

import msgspec

from schemas.envelope import (
    ATTRIBUTE_PATTERNS,
    EXTENSION_INT_RANGE,
    EXTENSION_NAME_PATTERN,
    MAX_EXTENSION_LENGTH,
    MAX_EXTENSIONS,
    STRUCTURED_CONTENT_TYPE,
    CloudEvent,
    Event,
)
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
_KNOWN_MEMBERS = frozenset(CloudEvent.__struct_fields__) - {"extensions"}
_EXTENSION_NAME = re.compile(EXTENSION_NAME_PATTERN, re.ASCII)
_members_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_UNKNOWN_AT_TOP = re.compile(
    r"^(?:Object contains unknown field `[^`]*`|.* - at `\$\.extensions(?:[.\[][^`]*)?`)$",
    re.DOTALL,
)
_AT = re.compile(r"^(?P<reason>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED = re.compile(r"(?:unknown field|required field|Invalid) `(?P<name>[^`]+)`")


def encode(event: Event) -> bytes:
    """The structured-mode Kafka value of ``event`` (extension attributes as members)."""
    if not event.extensions:
        return _encoder.encode(event)
    body = _encoder.encode(msgspec.structs.replace(event, extensions=None))
    return body[:-1] + b"," + _encoder.encode(event.extensions)[1:]


def kafka_key(event: Event) -> bytes:
    return event.partitionkey.encode()


def structured_headers() -> list[tuple[str, bytes]]:
    return [("content-type", STRUCTURED_CONTENT_TYPE.encode())]


def encode_binary(event: Event) -> tuple[list[tuple[str, bytes]], bytes]:
    """Binary mode: ``ce_*`` headers and the bare ``data`` value."""
    attributes = msgspec.to_builtins(event)
    data = attributes.pop("data")
    attributes.update(attributes.pop("extensions", None) or {})
    headers = [("content-type", attributes.pop("datacontenttype").encode())]
    headers += [(f"ce_{name}", _header_text(value)) for name, value in attributes.items()]
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
    if event.extensions is not None:  # a member named ``extensions``: the slow path says why
        return None
    _check_envelope(event)
    return event


def _decode_in_two_passes(raw: bytes) -> Event:
    """The envelope first (``data`` kept raw), then ``data`` by the type it names."""
    try:
        envelope: CloudEvent[msgspec.Raw] | None = _strict_envelope(raw)
    except _UnknownMember:
        envelope = None
    if envelope is None or envelope.extensions is not None:
        envelope = _envelope_with_extensions(raw)
    kind = _check_envelope(envelope)
    try:
        data: Payload = _payload_decoders[kind.dataschema].decode(envelope.data)
    except msgspec.ValidationError as exc:
        raise _field_error(str(exc), "data") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise EventDecodeError("data", f"not valid JSON text: {exc}") from None
    return msgspec.structs.replace(envelope, data=data)  # type: ignore[arg-type]


class _UnknownMember(Exception):
    """The envelope has a top-level member the contract does not name."""


def _strict_envelope(raw: bytes) -> CloudEvent[msgspec.Raw]:
    try:
        return _envelope_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        if _UNKNOWN_AT_TOP.match(str(exc)):
            raise _UnknownMember from None
        raise _field_error(str(exc), "") from None
    except msgspec.DecodeError as exc:
        raise EventDecodeError("event", f"not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise EventDecodeError("event", "not valid UTF-8") from None


def _envelope_with_extensions(raw: bytes) -> CloudEvent[msgspec.Raw]:
    """The envelope of an event with members the contract does not name: each must be an
    extension attribute within bounds (kept), else the event is refused naming it."""
    try:
        members = _members_decoder.decode(raw)
    except msgspec.ValidationError:
        raise EventDecodeError("event", "an event is a JSON object") from None
    except msgspec.DecodeError as exc:
        raise EventDecodeError("event", f"not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise EventDecodeError("event", "not valid UTF-8") from None
    known: dict[str, msgspec.Raw] = {}
    extensions: dict[str, str | int | bool] = {}
    for name, value in members.items():
        if name in _KNOWN_MEMBERS:
            known[name] = value
            continue
        kept = _extension(name, value)
        if kept is not None:
            extensions[name] = kept
    if len(extensions) > MAX_EXTENSIONS:
        raise EventDecodeError(
            "event",
            f"{len(extensions)} extension attributes the contract does not know; at most "
            f"{MAX_EXTENSIONS} are kept",
        )
    try:
        envelope = _strict_envelope(_encoder.encode(known))
    except _UnknownMember:  # pragma: no cover - every member left is a known one
        raise EventDecodeError("event", "unknown attribute") from None
    return msgspec.structs.replace(envelope, extensions=extensions or None)


def _extension(name: str, raw: msgspec.Raw) -> str | int | bool | None:
    """The value of extension attribute ``name`` (``None``: JSON null, absent), or
    :class:`EventDecodeError` saying why it is not one."""
    if name == "data_base64":
        raise EventDecodeError(
            name, "binary data is not accepted: data is a JSON object of the type's schema"
        )
    if name == "extensions" or not _EXTENSION_NAME.fullmatch(name):
        printable = name.isprintable() and 0 < len(name) <= 64
        raise EventDecodeError(
            name if printable else "event",
            f"{name[:64]!r} is not an attribute of the contract, nor an extension attribute it "
            "keeps (a name of 1-20 lower-case letters and digits, not 'extensions')",
        )
    value = msgspec.json.decode(raw)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        low, high = EXTENSION_INT_RANGE
        if not low <= value <= high:
            raise EventDecodeError(name, f"integer {value} is outside CloudEvents' 32-bit range")
        return value
    if isinstance(value, str):
        if len(value) > MAX_EXTENSION_LENGTH:
            raise EventDecodeError(
                name, f"extension value of {len(value)} characters exceeds {MAX_EXTENSION_LENGTH}"
            )
        return value
    raise EventDecodeError(
        name,
        f"an extension attribute is a string, an integer or a boolean, not {type(value).__name__}",
    )


def _header_text(value: object) -> bytes:
    """An attribute's value as a binary-mode header (CloudEvents' canonical string form)."""
    if isinstance(value, bool):
        return b"true" if value else b"false"
    return str(value).encode()


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
