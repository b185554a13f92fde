"""The CloudEvents HTTP binding (1.0) in, our events out: pure parsing and admission.

Three modes, told apart by the request's ``Content-Type`` (HTTP binding §3):

* **structured** ``application/cloudevents+json``: the body is one event;
* **batch** ``application/cloudevents-batch+json``: the body is a JSON array of events;
* **binary** any other content type *with* a ``ce-specversion`` header: the attributes are
  ``ce-*`` headers (values percent-decoded, §3.1.3.2), ``Content-Type`` is
  ``datacontenttype`` and the body is ``data``.

Every event goes through the contract's codec (:func:`schemas.decode`), exactly as the
worker decodes it, so what is accepted here is what the worker accepts (extension
attributes included). :func:`parse_request` reports each bad event with its index and
reason; :func:`admit` then refuses what the caller may not say: another tenant's event,
a type the pipeline derives, a control event without a trusted signature, an event
dated too far ahead. A request with any problem is refused whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal
from urllib.parse import unquote

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas import Event, EventDecodeError, decode
from schemas.envelope import STRUCTURED_CONTENT_TYPE
from schemas.registry import Producer
from schemas.signing import GATED, check_signature

BATCH_CONTENT_TYPE: Final = "application/cloudevents-batch+json"
Mode = Literal["structured", "binary", "batch"]

INVALID = "invalid_event"
OTHER_TENANT = "other_tenant"
DERIVED_TYPE = "derived_type"
UNSIGNED_CONTROL = "unsigned_control"
FROM_THE_FUTURE = "from_the_future"
FORBIDDEN: Final = frozenset({OTHER_TENANT, DERIVED_TYPE, UNSIGNED_CONTROL})
"""Problems that are a question of permission (403), not of form (422)."""


class RequestRefused(Exception):
    """The request as a whole is not CloudEvents we can read: ``status`` 400, 413 or 415."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail


@dataclass(frozen=True)
class EventProblem:
    """Why the event at ``index`` of the request (0 outside batch mode) is refused."""

    index: int
    error: str
    field: str
    reason: str

    def as_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "error": self.error,
            "field": self.field,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ParsedRequest:
    mode: Mode
    events: list[Event] = field(default_factory=list)
    """The events that decoded, in request order (only complete when ``problems`` is empty)."""
    indexes: list[int] = field(default_factory=list)
    """The request index of each of ``events``."""
    problems: list[EventProblem] = field(default_factory=list)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_request(headers: Mapping[str, str], body: bytes, *, max_events: int) -> ParsedRequest:
    """The events of one request (``headers`` with lower-case names). Raises
    :class:`RequestRefused` when the request is not a CloudEvents request at all."""
    media = media_type(headers.get("content-type"))
    if media == STRUCTURED_CONTENT_TYPE:
        parsed = ParsedRequest("structured")
        _decode_one(parsed, 0, body, None)
        return parsed
    if media == BATCH_CONTENT_TYPE:
        return _batch(body, max_events)
    if "ce-specversion" in headers:
        parsed = ParsedRequest("binary")
        _decode_one(parsed, 0, body, _kafka_style_headers(headers))
        return parsed
    raise RequestRefused(
        415,
        "unsupported_media_type",
        f"send CloudEvents: Content-Type {STRUCTURED_CONTENT_TYPE} (one event), "
        f"{BATCH_CONTENT_TYPE} (a JSON array of events), or binary mode (ce-* headers, "
        "data in the body as application/json)",
    )


def _batch(body: bytes, max_events: int) -> ParsedRequest:
    try:
        members = msgspec.json.decode(body, type=list[msgspec.Raw])
    except msgspec.ValidationError:
        raise RequestRefused(400, "malformed_batch", "a batch is a JSON array of events") from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise RequestRefused(400, "malformed_json", "the request body is not valid JSON") from None
    if len(members) > max_events:
        raise RequestRefused(
            413, "batch_too_large", f"a batch holds at most {max_events} events, not {len(members)}"
        )
    parsed = ParsedRequest("batch")
    for index, member in enumerate(members):
        _decode_one(parsed, index, bytes(member), None)
    return parsed


def _decode_one(
    parsed: ParsedRequest, index: int, value: bytes, headers: list[tuple[str, bytes]] | None
) -> None:
    try:
        event = decode(value, headers)
    except EventDecodeError as error:
        parsed.problems.append(EventProblem(index, INVALID, error.field, error.reason))
        return
    parsed.events.append(event)
    parsed.indexes.append(index)


def _kafka_style_headers(headers: Mapping[str, str]) -> list[tuple[str, bytes]]:
    """HTTP binary mode as the codec's binary mode (Kafka's ``ce_*`` headers)."""
    found: list[tuple[str, bytes]] = []
    for name, value in headers.items():
        if name == "content-type":
            found.append(("content-type", value.encode()))
        elif name.startswith("ce-") and len(name) > 3:
            found.append((f"ce_{name[3:]}", unquote(value, errors="replace").encode()))
    return found


def admit(
    parsed: ParsedRequest,
    *,
    tenant: str,
    control_keys: Mapping[str, Ed25519PublicKey],
    now: datetime,
    max_ahead: timedelta | None,
) -> list[EventProblem]:
    """What the caller of ``tenant`` may not put on the events topic, event by event:
    another tenant's event, a type the pipeline derives, a control event not signed by a
    key in ``control_keys``, an event more than ``max_ahead`` after ``now`` (the worker
    would dead-letter it)."""
    problems: list[EventProblem] = []
    for index, event in zip(parsed.indexes, parsed.events, strict=True):
        if event.tenant != tenant:
            problems.append(
                EventProblem(
                    index,
                    OTHER_TENANT,
                    "tenant",
                    f"this credential writes tenant {tenant!r} only, not {event.tenant!r}",
                )
            )
            continue
        made_by = GATED.get(event.type)
        if made_by is Producer.PIPELINE:
            problems.append(
                EventProblem(
                    index, DERIVED_TYPE, "type", f"{event.type} is derived by the pipeline itself"
                )
            )
            continue
        if made_by is Producer.CONTROL:
            try:
                check_signature(event, control_keys)
            except EventDecodeError as error:
                problems.append(EventProblem(index, UNSIGNED_CONTROL, error.field, error.reason))
                continue
        if max_ahead is not None and event.time > now + max_ahead:
            problems.append(
                EventProblem(
                    index,
                    FROM_THE_FUTURE,
                    "time",
                    f"{event.time.isoformat()} is more than {max_ahead.total_seconds():g} s "
                    "ahead of the ingest's clock",
                )
            )
    return problems


def refusal_status(problems: Sequence[EventProblem]) -> int:
    """403 when any problem is one of permission, else 422."""
    return 403 if any(problem.error in FORBIDDEN for problem in problems) else 422
