"""``bench codec``: decode + validate throughput of our codec against stdlib json.

Baseline (named by the issue): ``json.loads`` plus hand-written dict checks of the same
bytes (required attributes and their types, known type, partition key, time parses,
required payload fields present). Our codec checks strictly more (every nested type and
constraint). A pydantic v2 model of the envelope alone (``data`` left a dict) is shown
too: it is why the contract is written in msgspec (see schemas/README.md).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

import msgspec
from pydantic import AwareDatetime, BaseModel, ConfigDict

from factorstream.bench import BenchResult, best_rate, named
from factorstream.bench.events import synthetic_events
from schemas import decode, encode
from schemas.registry import BY_NAME, EVENT_TYPES

_ATTRIBUTES: dict[str, type] = {
    "specversion": str,
    "id": str,
    "source": str,
    "type": str,
    "time": str,
    "subject": str,
    "datacontenttype": str,
    "dataschema": str,
    "tenant": str,
    "partitionkey": str,
    "correlationid": str,
    "data": dict,
}
_REQUIRED_DATA = {
    kind.name: tuple(f.encode_name for f in msgspec.structs.fields(kind.payload) if f.required)
    for kind in EVENT_TYPES
}


def stdlib_decode(raw: bytes) -> dict[str, Any]:
    """The baseline: json.loads and dict checks."""
    document = json.loads(raw)
    if not isinstance(document, dict):
        raise ValueError("event: not an object")
    for name, kind in _ATTRIBUTES.items():
        if not isinstance(document.get(name), kind):
            raise ValueError(f"{name}: missing or not a {kind.__name__}")
    if document["specversion"] != "1.0" or document["type"] not in BY_NAME:
        raise ValueError("specversion/type: unsupported")
    if document["partitionkey"] != f"{document['tenant']}/{document['subject']}":
        raise ValueError("partitionkey: mismatch")
    if datetime.fromisoformat(document["time"]).tzinfo is None:
        raise ValueError("time: no offset")
    data = document["data"]
    for name in _REQUIRED_DATA[document["type"]]:
        if name not in data:
            raise ValueError(f"data.{name}: missing")
    return document


class PydanticEnvelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"]
    id: str
    source: str
    type: str
    time: AwareDatetime
    subject: str
    datacontenttype: Literal["application/json"]
    dataschema: str
    tenant: str
    partitionkey: str
    correlationid: str
    traceparent: str | None = None
    data: dict[str, Any]


def run(*, quick: bool) -> BenchResult:
    count, rounds = (2_000, 2) if quick else (50_000, 5)
    values = [encode(event) for event in synthetic_events(count)]
    mean_size = sum(map(len, values)) / len(values)

    def loop(decoder: Any) -> Any:
        def go() -> int:
            for value in values:
                decoder(value)
            return len(values)

        return go

    ours = best_rate(loop(decode), rounds=rounds)
    baseline = best_rate(loop(stdlib_decode), rounds=rounds)
    pydantic = best_rate(loop(PydanticEnvelope.model_validate_json), rounds=rounds)
    return BenchResult(
        bench="codec",
        baseline=named("stdlib json.loads + dict checks", baseline),
        contenders=[
            named("factorstream codec (msgspec, full validation)", ours),
            named("pydantic v2 (envelope only, data as dict)", pydantic),
        ],
        goal_ratio=3.0,
        goal_text="decode+validate ≥ 3× stdlib",
        notes={"events": f"{count:,} mixed sign-in events, mean {mean_size:.0f} bytes"},
    )
