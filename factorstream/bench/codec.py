"""``bench codec``: decode + validate throughput of our codec against stdlib json.

Baseline (named by the issue): ``json.loads`` plus dict checks of the same bytes. To
compare like with like, the checks enforce the same contract as our codec (they are
built from the same type information: required and unknown fields, types, enums,
lengths, ranges, patterns, time zones, IP addresses and country codes), in plain Python.

For context the table also shows ``json.loads`` alone (parsing with no validation at
all) and a pydantic v2 model of the envelope alone (``data`` left a dict): the second is
why the contract is written in msgspec rather than pydantic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import msgspec.inspect as mi
from pydantic import AwareDatetime, BaseModel, ConfigDict

from factorstream.bench import BenchResult, best_rates
from factorstream.bench.events import synthetic_events
from schemas import CloudEvent, decode, encode
from schemas.envelope import ATTRIBUTE_PATTERNS
from schemas.fields import check_country, check_ip
from schemas.registry import BY_NAME, EVENT_TYPES

Check = Callable[[Any, str], None]


def _checker(info: Any) -> Check:
    """A plain-Python check of one value against msgspec's description of its type.

    Built once from the same type information our codec compiles, so the baseline
    enforces the same contract: required and unknown fields, types, enums, lengths,
    ranges, patterns, time zones, and the same IP and country checks.
    """
    if isinstance(info, mi.Metadata):
        return _checker(info.type)
    if isinstance(info, mi.StructType):
        fields = {f.encode_name: (_checker(f.type), f.required) for f in info.fields}
        required = [name for name, (_, needed) in fields.items() if needed]
        post_init = getattr(info.cls, "__post_init__", None)

        def check_struct(value: Any, at: str) -> None:
            if not isinstance(value, dict):
                raise ValueError(f"{at}: expected an object")
            for name in required:
                if name not in value:
                    raise ValueError(f"{at}.{name}: missing")
            for name, item in value.items():
                if name not in fields:
                    raise ValueError(f"{at}.{name}: unknown field")
                fields[name][0](item, f"{at}.{name}")
            if post_init is not None:
                _run_field_checks(value)

        return check_struct
    if isinstance(info, mi.UnionType):
        options = [_checker(t) for t in info.types if not isinstance(t, mi.NoneType)]
        nullable = any(isinstance(t, mi.NoneType) for t in info.types)

        def check_union(value: Any, at: str) -> None:
            if value is None and nullable:
                return
            for option in options:
                try:
                    option(value, at)
                    return
                except ValueError:
                    continue
            raise ValueError(f"{at}: no alternative matches")

        return check_union
    if isinstance(info, mi.StrType):
        pattern = re.compile(info.pattern) if info.pattern else None
        low, high = info.min_length or 0, info.max_length

        def check_str(value: Any, at: str) -> None:
            if not isinstance(value, str) or len(value) < low:
                raise ValueError(f"{at}: expected a string")
            if high is not None and len(value) > high:
                raise ValueError(f"{at}: too long")
            if pattern is not None and pattern.search(value) is None:
                raise ValueError(f"{at}: pattern")

        return check_str
    if isinstance(info, mi.IntType | mi.FloatType):
        integral = isinstance(info, mi.IntType)
        ge: float | None = info.ge
        le: float | None = info.le

        def check_number(value: Any, at: str) -> None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{at}: expected a number")
            if integral and not isinstance(value, int):
                raise ValueError(f"{at}: expected an integer")
            number = float(value)
            if (ge is not None and number < ge) or (le is not None and number > le):
                raise ValueError(f"{at}: out of range")

        return check_number
    if isinstance(info, mi.BoolType):
        return lambda value, at: _expect(isinstance(value, bool), at)
    if isinstance(info, mi.EnumType | mi.LiteralType):
        allowed = (
            {member.value for member in info.cls}
            if isinstance(info, mi.EnumType)
            else set(info.values)
        )
        return lambda value, at: _expect(value in allowed, at)
    if isinstance(info, mi.DateTimeType):

        def check_time(value: Any, at: str) -> None:
            if datetime.fromisoformat(value).tzinfo is None:
                raise ValueError(f"{at}: no offset")

        return check_time
    if isinstance(info, mi.ListType):
        item = _checker(info.item_type)

        def check_list(value: Any, at: str) -> None:
            _expect(isinstance(value, list), at)
            for element in value:
                item(element, at)

        return check_list
    if isinstance(info, mi.DictType):
        key, item = _checker(info.key_type), _checker(info.value_type)

        def check_dict(value: Any, at: str) -> None:
            _expect(isinstance(value, dict), at)
            for k, v in value.items():
                key(k, at)
                item(v, at)

        return check_dict
    if isinstance(info, mi.AnyType | mi.NoneType):
        return lambda value, at: None
    raise TypeError(f"no baseline check for {info!r}")


def _expect(ok: bool, at: str) -> None:
    if not ok:
        raise ValueError(f"{at}: invalid")


def _run_field_checks(value: dict[str, Any]) -> None:
    """The checks our structs run after decoding (IP address, country code)."""
    if "ip" in value:
        check_ip("ip", value["ip"])
    for name in ("country", "destination_country"):
        if name in value:
            check_country(name, value[name])


_ENVELOPE_PATTERNS = {name: re.compile(p) for name, p in ATTRIBUTE_PATTERNS.items()}
_DATA_CHECKS = {kind.name: _checker(mi.type_info(kind.payload)) for kind in EVENT_TYPES}
_ENVELOPE_CHECK = _checker(mi.type_info(CloudEvent[Any]))


def stdlib_decode(raw: bytes) -> dict[str, Any]:
    """The baseline: ``json.loads`` and hand-run checks of the same contract."""
    document: dict[str, Any] = json.loads(raw)
    _ENVELOPE_CHECK(document, "$")
    for name, pattern in _ENVELOPE_PATTERNS.items():
        if pattern.fullmatch(document[name]) is None:
            raise ValueError(f"{name}: pattern")
    kind = BY_NAME.get(document["type"])
    if kind is None or document["dataschema"] != kind.dataschema:
        raise ValueError("type/dataschema: unknown or mismatched")
    if document["partitionkey"] != f"{document['tenant']}/{document['subject']}":
        raise ValueError("partitionkey: mismatch")
    _DATA_CHECKS[kind.name](document["data"], "data")
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
    count, rounds = (2_000, 2) if quick else (20_000, 15)
    values = [encode(event) for event in synthetic_events(count)]
    mean_size = sum(map(len, values)) / len(values)

    def loop(decoder: Any) -> Any:
        def go() -> int:
            for value in values:
                decoder(value)
            return len(values)

        return go

    ours, baseline = "factorstream codec (msgspec)", "stdlib json.loads + dict checks"
    pydantic, parse_only = (
        "pydantic v2, envelope only (data as dict)",
        "json.loads alone, no checks",
    )
    rates = best_rates(
        {
            ours: loop(decode),
            baseline: loop(stdlib_decode),
            pydantic: loop(PydanticEnvelope.model_validate_json),
            parse_only: loop(json.loads),
        },
        rounds=rounds,
    )
    return BenchResult(
        bench="codec",
        baseline=rates[baseline],
        contenders=[rates[ours], rates[pydantic], rates[parse_only]],
        goal_ratio=3.0,
        goal_text="decode+validate ≥ 3× stdlib",
        notes={"events": f"{count:,} mixed sign-in events, mean {mean_size:.0f} bytes"},
    )
