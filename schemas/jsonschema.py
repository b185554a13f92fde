"""JSON Schema files generated from the typed payloads, and the compatibility rule.

One file per event type and version, ``schemas/json/<type>.v<version>.json``, each a
self-contained schema of the whole CloudEvent (envelope + typed ``data``), so a service
in any language can validate what it emits.

A published version never breaks: every event valid under the committed schema must
stay valid under the regenerated one. :func:`breaking_changes` lists what would break
it (a removed or renamed field, a changed type, a new required field, a dropped enum
value, a tightened constraint). Adding an optional field or an enum value is allowed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec

from schemas.envelope import (
    EXTENSION_INT_RANGE,
    MAX_EXTENSION_LENGTH,
    MAX_EXTENSIONS,
    CloudEvent,
)
from schemas.errors import BreakingSchemaChange
from schemas.registry import EVENT_TYPES, EventType

JSON_DIR = Path(__file__).resolve().parent / "json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

Schema = dict[str, Any]


def event_schema(kind: EventType) -> Schema:
    """The full JSON Schema of one event type and version."""
    body = msgspec.json.schema(CloudEvent[kind.payload])  # type: ignore[name-defined]
    defs = body.pop("$defs", {})
    root = defs.pop(body["$ref"].rsplit("/", 1)[-1])
    root["properties"]["type"] = {"const": kind.name}
    root["properties"]["dataschema"] = {"const": kind.dataschema}
    root["properties"].pop("extensions")
    root["patternProperties"] = {_extension_pattern(root["properties"]): EXTENSION_VALUE}
    return {
        "$schema": DIALECT,
        "$id": kind.dataschema,
        "title": kind.name,
        "description": kind.summary,
        **{k: v for k, v in root.items() if k not in ("title", "description")},
        "$defs": dict(sorted(defs.items())),
    }


EXTENSION_VALUE: Schema = {
    "description": f"An extension attribute the contract does not know, kept as sent (at "
    f"most {MAX_EXTENSIONS} an event; JSON null: absent).",
    "anyOf": [
        {"type": "string", "maxLength": MAX_EXTENSION_LENGTH},
        {"type": "integer", "minimum": EXTENSION_INT_RANGE[0], "maximum": EXTENSION_INT_RANGE[1]},
        {"type": "boolean"},
        {"type": "null"},
    ],
}


def _extension_pattern(known: Mapping[str, Any]) -> str:
    """Names of extension attributes: CloudEvents' form, none of the contract's own."""
    names = "|".join(sorted({*known, "extensions"}))
    return rf"^(?!(?:{names})$)[a-z0-9]{{1,20}}$"


def generate() -> dict[str, Schema]:
    """Every schema file, by file name."""
    return {kind.schema_filename: event_schema(kind) for kind in EVENT_TYPES}


def render(schema: Schema) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export(directory: Path = JSON_DIR, *, allow_breaking: bool = False) -> list[str]:
    """Write the schema files; refuse to break a published version. Returns names written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in generate().items():
        path = directory / name
        if path.exists():
            problems = breaking_changes(json.loads(path.read_text()), schema)
            if problems and not allow_breaking:
                raise BreakingSchemaChange(
                    f"{name}: " + "; ".join(problems) + " (publish a new version instead)"
                )
            if path.read_text() == render(schema):
                continue
        path.write_text(render(schema))
        written.append(name)
    return written


def check(directory: Path = JSON_DIR) -> list[str]:
    """Problems with the committed schema files: breaking, stale, missing or extra."""
    problems: list[str] = []
    wanted = generate()
    for name, schema in wanted.items():
        path = directory / name
        if not path.exists():
            problems.append(f"{name}: missing (run `factorstream schemas export`)")
            continue
        published = json.loads(path.read_text())
        problems += [f"{name}: breaking change: {p}" for p in breaking_changes(published, schema)]
        if path.read_text() != render(schema):
            problems.append(f"{name}: stale (run `factorstream schemas export`)")
    for path in sorted(directory.glob("*.json")):
        if path.name not in wanted:
            problems.append(f"{path.name}: published schema no longer generated (removed type?)")
    return problems


# -- compatibility ------------------------------------------------------------------------


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """Ways in which an event valid under ``old`` could be invalid under ``new``."""
    return list(_compare(old, new, old.get("$defs", {}), new.get("$defs", {}), "$"))


_UPPER = ("maxLength", "maximum", "maxItems", "exclusiveMaximum", "maxProperties")
_LOWER = ("minLength", "minimum", "minItems", "exclusiveMinimum", "minProperties")
_EXACT = ("pattern", "format", "const")


def _resolve(node: Any, defs: Mapping[str, Any]) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    return node


def _alternatives(node: Any, defs: Mapping[str, Any]) -> list[Any]:
    node = _resolve(node, defs)
    if isinstance(node, dict) and "anyOf" in node:
        return [alt for branch in node["anyOf"] for alt in _alternatives(branch, defs)]
    return [node]


def _types(node: Mapping[str, Any]) -> set[str]:
    kind = node.get("type")
    if kind is None:
        return {"any"}
    return set(kind) if isinstance(kind, list) else {kind}


def _compare(
    old: Any, new: Any, old_defs: Mapping[str, Any], new_defs: Mapping[str, Any], at: str
) -> Iterator[str]:
    old_alts = _alternatives(old, old_defs)
    new_alts = _alternatives(new, new_defs)
    for old_alt in old_alts:
        candidates = [alt for alt in new_alts if _accepts_kind(alt, old_alt)]
        if not candidates:
            yield f"{at}: {_describe(old_alt)} is no longer accepted"
            continue
        results = [list(_compare_one(old_alt, c, old_defs, new_defs, at)) for c in candidates]
        best = min(results, key=len)
        yield from best


def _accepts_kind(new: Any, old: Any) -> bool:
    if not isinstance(new, dict) or not isinstance(old, dict):
        return bool(new == old)
    new_types, old_types = _types(new), _types(old)
    if "any" in new_types:
        return True
    if "integer" in old_types and "number" in new_types:
        old_types = (old_types - {"integer"}) | {"number"}
    return old_types <= new_types


def _describe(node: Any) -> str:
    if isinstance(node, dict):
        if "enum" in node:
            return "enum " + "|".join(map(str, node["enum"]))
        return "type " + "|".join(sorted(_types(node)))
    return repr(node)


def _compare_one(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    old_defs: Mapping[str, Any],
    new_defs: Mapping[str, Any],
    at: str,
) -> Iterator[str]:
    if "enum" in new:
        dropped = set(map(str, old.get("enum", ["<any value>"]))) - set(map(str, new["enum"]))
        if dropped:
            yield f"{at}: enum values removed: {', '.join(sorted(dropped))}"
    for key in _EXACT:
        if key in new and new.get(key) != old.get(key):
            yield f"{at}: {key} changed from {old.get(key)!r} to {new[key]!r}"
    for key in _UPPER:
        if key in new and (key not in old or new[key] < old[key]):
            yield f"{at}: {key} tightened to {new[key]}"
    for key in _LOWER:
        if key in new and (key not in old or new[key] > old[key]):
            yield f"{at}: {key} tightened to {new[key]}"
    old_props: Mapping[str, Any] = old.get("properties", {})
    new_props: Mapping[str, Any] = new.get("properties", {})
    closed = new.get("additionalProperties") is False
    for name, old_prop in old_props.items():
        if name not in new_props:
            if closed:
                yield f"{at}.{name}: field removed or renamed"
            continue
        yield from _compare(old_prop, new_props[name], old_defs, new_defs, f"{at}.{name}")
    if closed and old.get("additionalProperties") is not False and "properties" in old:
        yield f"{at}: unknown fields are now refused"
    for name in sorted(set(new.get("required", [])) - set(old.get("required", []))):
        yield f"{at}.{name}: new required field"
    if "items" in old and "items" in new:
        yield from _compare(old["items"], new["items"], old_defs, new_defs, f"{at}[]")
    old_values = old.get("additionalProperties")
    new_values = new.get("additionalProperties")
    if isinstance(old_values, dict) and isinstance(new_values, dict):
        yield from _compare(old_values, new_values, old_defs, new_defs, f"{at}{{}}")
