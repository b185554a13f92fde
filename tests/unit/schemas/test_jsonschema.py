"""JSON Schema export, validation of real events, and the compatibility rule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated, Any

import jsonschema as validator
import msgspec
import pytest

from schemas import EVENT_TYPES, encode, personal_paths
from schemas import payloads as p
from schemas import registry as reg
from schemas.catalogue import is_current
from schemas.errors import BreakingSchemaChange
from schemas.fields import Factor
from schemas.jsonschema import JSON_DIR, breaking_changes, check, export, generate
from tests.factories import sample_event


def _schema(name: str) -> dict[str, Any]:
    return json.loads((JSON_DIR / f"{name}.v1.json").read_text())


def test_committed_schemas_and_catalogue_are_current_and_compatible() -> None:
    assert check() == []
    assert is_current()


@pytest.mark.parametrize("kind", EVENT_TYPES, ids=lambda k: k.name)
def test_sample_events_validate_against_the_exported_schema(kind: reg.EventType) -> None:
    schema = _schema(kind.name)
    validator.Draft202012Validator.check_schema(schema)
    validator.validate(json.loads(encode(sample_event(kind.name))), schema)


def test_exported_schema_refuses_what_the_codec_refuses() -> None:
    schema = _schema("mfa.verification.failed")
    good = json.loads(encode(sample_event()))
    for mutate in (
        lambda d: d["data"].pop("reason"),
        lambda d: d["data"].update(factor="carrier_pigeon"),
        lambda d: d.update(type="mfa.verification.succeeded"),
        lambda d: d["data"].update(pin="1234"),
        lambda d: d.pop("tenant"),
    ):
        bad = json.loads(json.dumps(good))
        mutate(bad)
        with pytest.raises(validator.ValidationError):
            validator.validate(bad, schema)


def test_personal_data_is_marked_in_the_schema() -> None:
    paths = personal_paths(reg.event_type("mfa.challenge.sent"))
    assert {"data.destination", "data.client.ip", "data.client.user_agent"} <= set(paths)
    assert "data.factor" not in paths and "data.destination_country" not in paths
    assert personal_paths(reg.event_type("ip.block.applied")) == ["data.ip"]


# -- a deliberately broken schema change ---------------------------------------------------


class WithoutReason(p.Activity, kw_only=True):
    """mfa.verification.failed with `reason` removed (a breaking change)."""

    factor: Factor
    challenge_id: str | None = None
    enrollment_id: str | None = None
    attempt: Annotated[int, msgspec.Meta(ge=1)] = 1
    attempts_remaining: int | None = None
    elapsed_ms: int | None = None
    sign_count: int | None = None
    previous_sign_count: int | None = None


class WithNewRequiredField(p.VerificationFailed, kw_only=True):
    risk_score: int


class WithNewOptionalField(p.VerificationFailed, kw_only=True):
    risk_score: int | None = None


def _swap(monkeypatch: pytest.MonkeyPatch, payload: type[p.Payload]) -> None:
    swapped = tuple(
        reg.EventType(k.name, payload, k.summary) if k.name == "mfa.verification.failed" else k
        for k in EVENT_TYPES
    )
    monkeypatch.setattr("schemas.jsonschema.EVENT_TYPES", swapped)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (WithoutReason, "$.data.reason: field removed or renamed"),
        (WithNewRequiredField, "data.risk_score: new required field"),
    ],
)
def test_check_fails_on_a_breaking_model_change(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, payload: type[p.Payload], expected: str
) -> None:
    _swap(monkeypatch, payload)
    problems = check()
    assert any("breaking change" in p and expected in p for p in problems)
    target = tmp_path / "json"
    shutil.copytree(JSON_DIR, target)
    with pytest.raises(BreakingSchemaChange):
        export(target)
    assert check(target) != []  # nothing was overwritten


def test_an_optional_field_is_compatible_but_stale(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _swap(monkeypatch, WithNewOptionalField)
    problems = check()
    assert problems == [
        "mfa.verification.failed.v1.json: stale (run `factorstream schemas export`)"
    ]
    target = tmp_path / "json"
    shutil.copytree(JSON_DIR, target)
    assert export(target) == ["mfa.verification.failed.v1.json"]
    assert check(target) == []


def test_breaking_changes_between_schema_documents() -> None:
    old = _schema("mfa.verification.failed")
    cases = {
        "type change": (("Client", "ip"), {"type": "integer"}, "no longer accepted"),
        "tightened": (
            ("Client", "user_agent"),
            {"anyOf": [{"type": "string", "maxLength": 10}, {"type": "null"}]},
            "maxLength tightened",
        ),
        "pattern": (
            ("Geo", "country"),
            {"anyOf": [{"type": "string", "pattern": "^[A-Z]{3}$"}, {"type": "null"}]},
            "pattern changed",
        ),
    }
    for (definition, field), replacement, message in cases.values():
        new = json.loads(json.dumps(old))
        new["$defs"][definition]["properties"][field] = replacement
        assert any(message in problem for problem in breaking_changes(old, new)), message
    new = json.loads(json.dumps(old))
    new["$defs"]["Factor"]["enum"].remove("sms")
    assert breaking_changes(old, new) == ["$.data.factor: enum values removed: sms"]
    new = json.loads(json.dumps(old))
    new["$defs"]["Factor"]["enum"].append("smoke_signal")
    assert breaking_changes(old, new) == []
    assert breaking_changes(old, old) == []


def test_check_reports_missing_and_orphaned_files(tmp_path: Path) -> None:
    for name, schema in generate().items():
        (tmp_path / name).write_text(json.dumps(schema))
    (tmp_path / "mfa.push.approved.v1.json").unlink()
    (tmp_path / "mfa.telepathy.v1.json").write_text("{}")
    problems = check(tmp_path)
    assert any(p.startswith("mfa.push.approved.v1.json: missing") for p in problems)
    assert any(p.startswith("mfa.telepathy.v1.json: published schema") for p in problems)
