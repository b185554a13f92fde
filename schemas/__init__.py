"""factorstream's event contract: CloudEvents envelope, typed payloads, registry, codec.

This package imports nothing else of factorstream. Services in other languages use the
JSON Schema files in ``schemas/json/`` and the catalogue in ``schemas/README.md``.
"""

from schemas.codec import MAX_EVENT_BYTES, decode, encode, encode_binary, kafka_key
from schemas.envelope import CloudEvent, Event, derive_event, new_event, uuid7
from schemas.errors import BreakingSchemaChange, EventDecodeError, SchemaError
from schemas.registry import BY_NAME, EVENT_TYPES, EventType, event_type, personal_paths

__all__ = [
    "BY_NAME",
    "EVENT_TYPES",
    "MAX_EVENT_BYTES",
    "BreakingSchemaChange",
    "CloudEvent",
    "Event",
    "EventDecodeError",
    "EventType",
    "SchemaError",
    "decode",
    "derive_event",
    "encode",
    "encode_binary",
    "event_type",
    "kafka_key",
    "new_event",
    "personal_paths",
    "uuid7",
]
