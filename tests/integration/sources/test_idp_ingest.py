"""``factorstream idp ingest``: a saved export backfilled to a real broker, with a
progress bar; run twice, the same event ids (the pipeline keeps one of each)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factorstream.cli import app
from sources.unmapped import Unmapped
from tests import idp_fakes as fakes
from tests.integration.records import consume
from tests.kafka_broker import KafkaBroker


@pytest.mark.parametrize("shape", ["json-lines", "json-array"])
def test_a_saved_export_is_ingested_with_a_progress_bar_and_again_with_the_same_ids(
    kafka_broker: KafkaBroker, topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    shape: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("FACTORSTREAM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FACTORSTREAM_KAFKA_BOOTSTRAP", kafka_broker.bootstrap)
    monkeypatch.setenv("FACTORSTREAM_TOPICS__EVENTS", topic)
    monkeypatch.setenv("FACTORSTREAM_IDP__INGEST_BATCH_SIZE", "100")
    logs = fakes.auth0_logs(450)
    export = tmp_path / "export.json"
    if shape == "json-lines":
        lines = [json.dumps(log) for log in logs]
        export.write_text("\n".join([*lines[:10], "{truncated", *lines[10:]]) + "\n")
    else:
        export.write_text(json.dumps(logs))
    args = ["idp", "ingest", "auth0", str(export), "--tenant", "acme",
            "--source", fakes.FAKE_SOURCE]  # fmt: skip

    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output + first.stderr
    bad_lines = 1 if shape == "json-lines" else 0
    assert f"360 events delivered, {90 + bad_lines} unmapped" in first.stdout
    assert "ingesting" in first.stderr  # the progress bar
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0

    expected = [e.id for e in map(fakes.auth0_mapper, logs) if not isinstance(e, Unmapped)]
    ids = [record.event().id for record in consume(kafka_broker.bootstrap, topic, at_least=720)]
    assert len(ids) == 720 and sorted(set(ids)) == sorted(expected)
    kept = (tmp_path / "data" / "idp" / "ingest.unmapped.jsonl").read_text().splitlines()
    reasons = {json.loads(line)["unmapped"]["reason"] for line in kept}
    assert reasons == ({"not_mfa", "not_json"} if bad_lines else {"not_mfa"})


def test_poll_from_file_backfills_with_the_adapters_tenant_and_source(
    kafka_broker: KafkaBroker, topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACTORSTREAM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FACTORSTREAM_KAFKA_BOOTSTRAP", kafka_broker.bootstrap)
    monkeypatch.setenv("FACTORSTREAM_TOPICS__EVENTS", topic)
    added = CliRunner().invoke(
        app,
        ["idp", "add", "auth0", "acme", "--tenant", "acme", "--source", fakes.FAKE_SOURCE,
         "--base-url", "https://acme.eu.auth0.com", "--credentials-file", "-"],
        input=json.dumps({"client_id": "a", "client_secret": "b"}),
    )  # fmt: skip
    assert added.exit_code == 0
    logs = fakes.auth0_logs(50)
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps(log) + "\n" for log in logs))
    done = CliRunner().invoke(app, ["idp", "poll", "acme", "--from-file", str(export)])
    assert done.exit_code == 0, done.output + done.stderr
    expected = [e.id for e in map(fakes.auth0_mapper, logs) if not isinstance(e, Unmapped)]
    records = consume(kafka_broker.bootstrap, topic, at_least=len(expected))
    assert sorted(r.event().id for r in records) == sorted(expected)
    assert {r.event().tenant for r in records} == {"acme"}
    assert not (tmp_path / "data" / "idp" / "cursors" / "acme.cursor.json").exists()
