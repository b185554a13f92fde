"""``factorstream evidence``: the pack on disk, its digest recorded in the ledger."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from audit.rows import ExportFilter
from factorstream.cli.context import load_into
from factorstream.cli.evidence import evidence
from tests.unit.audit.ledger_support import settings_env
from tests.unit.compliance.pack_support import build_ledger, reader


def _cli() -> typer.Typer:
    root = typer.Typer()
    root.callback()(load_into)
    root.command("evidence")(evidence)
    return root


def test_the_command_writes_a_pack_and_records_its_digest(tmp_path: Path) -> None:
    build_ledger(tmp_path)
    env = settings_env(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    out = tmp_path / "pack"
    result = CliRunner().invoke(
        _cli(),
        ["evidence", "soc2", "--period", "2026-Q3", "-o", str(out), "--issued-by", "auditor-1"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    digest = hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest()
    assert digest in " ".join(result.output.split())
    (recorded,) = reader(tmp_path).rows(ExportFilter(types=frozenset({"audit.evidence.issued"})))
    assert recorded.event["data"]["manifest_sha256"] == digest
    assert recorded.event["subject"] == "auditor-1"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["period"]["since"].startswith("2026-07-01")
    policy = json.loads((out / "policy.json").read_text())
    assert set(policy) == {"admin", "business", "customer"}
    assert "policy.json" in manifest["files"]
    assert "Policy tiers in force" in (out / "report.html").read_text()


def test_since_and_until_and_a_tenant(tmp_path: Path) -> None:
    build_ledger(tmp_path)
    env = settings_env(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    args = [
        "evidence",
        "gdpr",
        "--since",
        "2026-08-01",
        "--until",
        "2026-09-01",
        "--tenant",
        "acme",
    ]
    result = CliRunner().invoke(_cli(), [*args, "-o", str(tmp_path / "p")], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "p" / "manifest.json").read_text())["tenant"] == "acme"


def test_a_bad_period_or_framework_is_refused(tmp_path: Path) -> None:
    env = settings_env(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    for args in (["pci", "--period", "2026-Q3"], ["soc2", "--period", "2026-Q9"], ["soc2"]):
        result = CliRunner().invoke(_cli(), ["evidence", *args, "-o", str(tmp_path / "p")], env=env)
        assert result.exit_code != 0
        assert not (tmp_path / "p").exists()


def test_the_gdpr_pack_reports_every_store_and_its_oldest_data(tmp_path: Path) -> None:
    """The ledger built here holds keys of 2026-Q3 (older than a 30-day test policy plus
    the 30-day key rotation: an exception); the lake and outbox hold nothing; no broker
    answers (the topics are reported unknown, never within policy)."""
    build_ledger(tmp_path)
    env = settings_env(
        tmp_path,
        f"sqlite:///{tmp_path / 'ledger.db'}",
        FACTORSTREAM_KAFKA_BOOTSTRAP="127.0.0.1:9",
        FACTORSTREAM_RETENTION__LEDGER_PERSONAL_DAYS="30",
    )
    out = tmp_path / "pack"
    args = ["evidence", "gdpr", "--period", "2026-Q3", "-o", str(out)]
    result = CliRunner().invoke(_cli(), args, env=env)
    assert result.exit_code == 0, result.output
    rows = {row["store"]: row for row in json.loads((out / "retention.json").read_text())}
    assert rows["ledger personal data"]["status"] == "exception"
    assert rows["ledger personal data"]["policy"] == "30 days"
    assert rows["lake"]["status"] == "within policy" and rows["lake"]["oldest"] is None
    assert rows["topic mfa.events"]["status"] == "unknown"
    assert rows["dashboard sessions"]["policy"] == "30 days"
    report = (out / "report.html").read_text()
    assert "Retention of personal data" in report
    soc2 = CliRunner().invoke(_cli(), ["evidence", "soc2", "--period", "2026-Q3", "-o",
                                       str(tmp_path / "soc2")], env=env)  # fmt: skip
    assert soc2.exit_code == 0 and not (tmp_path / "soc2" / "retention.json").exists()
