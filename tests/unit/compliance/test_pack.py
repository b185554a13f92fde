"""Evidence packs end to end: built from a ledger made here, checked by the pack's own
``verify.py`` in a venv that has only ``cryptography`` (no factorstream on the path), and
refused once a file is changed, a row removed or a proof swapped."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from audit.verify import check_proof_document
from compliance.pack import IssuedPack, PackError, issued_event, write_pack
from compliance.periods import parse_period
from schemas import new_event
from schemas.payloads import EvidenceIssued
from tests.offline_python import rewrite_manifest, run_verify
from tests.unit.compliance.pack_support import (
    ERASED_IP,
    build_ledger,
    drop_row,
    pdf_text,
    reader,
    swap_files,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _pack(ledger_dir: Path, out: Path, framework: str = "soc2") -> IssuedPack:
    return write_pack(
        reader(ledger_dir),
        framework=framework,  # type: ignore[arg-type]
        period=parse_period("2026-Q3"),
        tenant=None,
        out=out,
        now=NOW,
    )


@pytest.fixture
def pack(ledger_dir: Path, tmp_path: Path) -> Iterator[Path]:
    _pack(ledger_dir, tmp_path / "pack")
    yield tmp_path / "pack"


def test_the_venv_has_no_factorstream(bare_python: Path) -> None:
    names = "('audit', 'compliance', 'schemas', 'msgspec')"
    probe = f"import importlib.util as u; print([n for n in {names} if u.find_spec(n)])"
    result = subprocess.run([str(bare_python), "-I", "-c", probe], capture_output=True, text=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("framework", ["soc2", "hipaa", "gdpr"])
def test_a_pack_verifies_offline_with_cryptography_alone(
    bare_python: Path, ledger_dir: Path, tmp_path: Path, framework: str
) -> None:
    built = _pack(ledger_dir, tmp_path / framework, framework)
    result = run_verify(bare_python, tmp_path / framework)
    assert result.returncode == 0, result.stderr
    assert "the evidence pack verifies" in result.stdout
    assert built.rows > 0
    for control in built.controls:
        assert (
            f"{control.control}: {control.status}; {len(control.rows)} rows proven" in result.stdout
        )


def test_every_row_has_an_inclusion_proof_audit_accepts(pack: Path) -> None:
    key = next((pack / "keys").glob("*.pem")).read_bytes()
    for csv_file in (pack / "evidence").glob("*.csv"):
        with csv_file.open() as handle:
            for row in csv.DictReader(handle):
                verified = check_proof_document(
                    (pack / row["proof"]).read_bytes(), public_keys=[key]
                )
                assert f"event {row['event_id']}" in verified.summary


def test_a_changed_file_is_refused(bare_python: Path, pack: Path) -> None:
    report = pack / "report.html"
    report.write_text(report.read_text().replace("not met", "met"))
    result = run_verify(bare_python, pack)
    assert result.returncode == 1
    assert "report.html was changed" in result.stderr


def test_a_removed_row_is_refused_even_with_a_forged_manifest(
    bare_python: Path, pack: Path
) -> None:
    drop_row(pack / "evidence" / "cc6-1-mfa.csv")
    result = run_verify(bare_python, pack)
    assert result.returncode == 1 and "evidence/cc6-1-mfa.csv was changed" in result.stderr

    rewrite_manifest(pack)
    result = run_verify(bare_python, pack)
    assert result.returncode == 1
    assert "CC6.1-mfa: 4 evidence rows, but the control states 5" in result.stderr

    controls = json.loads((pack / "controls.json").read_text())
    controls[0].update(rows=4, exceptions=1)
    (pack / "controls.json").write_text(json.dumps(controls))
    rewrite_manifest(pack)
    result = run_verify(bare_python, pack)
    assert result.returncode == 1
    assert "proves no evidence row" in result.stderr  # the dropped row's proof is left over


def test_a_swapped_proof_is_refused_even_with_a_forged_manifest(
    bare_python: Path, pack: Path
) -> None:
    with (pack / "evidence" / "cc6-1-mfa.csv").open() as handle:
        first, second = list(csv.DictReader(handle))[:2]
    a = pack / first["proof"]
    _, b_text = swap_files(a, pack / second["proof"])
    result = run_verify(bare_python, pack)
    assert result.returncode == 1 and "was changed" in result.stderr

    rewrite_manifest(pack)
    result = run_verify(bare_python, pack)
    assert result.returncode == 1
    assert f"is not the inclusion proof of event {first['event_id']}" in result.stderr

    # the proof's own event id relabelled too: the entry inside still names the other event
    document = json.loads(b_text)
    document["event_id"] = first["event_id"]
    a.write_text(json.dumps(document))
    rewrite_manifest(pack)
    result = run_verify(bare_python, pack)
    assert result.returncode == 1
    assert "the proven entry is not event" in result.stderr


def test_a_forged_checkpoint_is_refused(bare_python: Path, pack: Path) -> None:
    checkpoints = json.loads((pack / "checkpoints.json").read_text())
    checkpoints[0]["root_hash"] = "00" * 32
    (pack / "checkpoints.json").write_text(json.dumps(checkpoints))
    rewrite_manifest(pack)
    result = run_verify(bare_python, pack)
    assert result.returncode == 1
    assert "signature of checkpoint" in result.stderr


def test_erased_subjects_are_marked_and_never_unsealed(
    bare_python: Path, ledger_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "hipaa"
    _pack(ledger_dir, out, "hipaa")
    with (out / "evidence" / "164-312-d.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    erased = [row for row in rows if row["subject"] == "cust-2"]
    assert erased and all(row["subject_erased"] == "true" for row in erased)
    assert all(row["subject_erased"] == "false" for row in rows if row["subject"] != "cust-2")
    assert "cust-2 (erased)" in (out / "report.html").read_text()
    for path in out.rglob("*"):  # no personal value, of the erased subject or anyone
        if path.is_file() and path.suffix != ".parquet":
            text = pdf_text(path.read_bytes()) if path.suffix == ".pdf" else path.read_text()
            assert str(ERASED_IP) not in text, path
    assert run_verify(bare_python, out).returncode == 0


def test_a_pack_refuses_a_ledger_opened_with_its_master_key(
    ledger_dir: Path, tmp_path: Path
) -> None:
    from tests.unit.audit.ledger_support import open_test_ledger

    unsealing = open_test_ledger(ledger_dir, f"sqlite:///{ledger_dir / 'ledger.db'}")
    with pytest.raises(PackError, match="without its master key"):
        write_pack(
            unsealing, framework="gdpr", period=parse_period("2026-Q3"), tenant=None,
            out=tmp_path / "p", now=NOW,
        )  # fmt: skip


def test_the_issued_event_names_the_manifest_digest(ledger_dir: Path, tmp_path: Path) -> None:
    built = _pack(ledger_dir, tmp_path / "p")
    event = issued_event(built, issued_by="auditor-1", now=NOW)
    assert event.type == "audit.evidence.issued"
    assert isinstance(event.data, EvidenceIssued)
    digest = hashlib.sha256((tmp_path / "p" / "manifest.json").read_bytes()).hexdigest()
    assert event.data.manifest_sha256 == digest == built.digest


def test_a_pack_is_written_into_a_new_directory(ledger_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    shutil.copyfile(__file__, tmp_path / "p" / "x")
    with pytest.raises(PackError, match="not empty"):
        _pack(ledger_dir, tmp_path / "p")


def test_an_exception_relabelled_ok_is_refused(bare_python: Path, pack: Path) -> None:
    evidence = pack / "evidence" / "cc6-1-mfa.csv"
    evidence.write_text(evidence.read_text().replace(",exception,", ",ok,", 1))
    controls = json.loads((pack / "controls.json").read_text())
    controls[0].update(exceptions=controls[0]["exceptions"] - 1)
    (pack / "controls.json").write_text(json.dumps(controls))
    rewrite_manifest(pack)
    result = run_verify(bare_python, pack)
    assert result.returncode == 1
    assert "a sign-in is ok or refused only with a proven MFA step" in result.stderr


def test_a_refused_sign_in_relabelled_ok_is_refused(bare_python: Path, pack: Path) -> None:
    evidence = pack / "evidence" / "cc6-1-mfa.csv"
    assert ",refused," in evidence.read_text()
    evidence.write_text(evidence.read_text().replace(",refused,", ",ok,", 1))
    rewrite_manifest(pack)
    result = run_verify(bare_python, pack)
    assert result.returncode == 1
    assert "the related event is not an MFA success of this login" in result.stderr


def test_a_pack_covers_the_entries_of_the_newest_checkpoint_only(
    bare_python: Path, tmp_path: Path
) -> None:
    """Entries appended after the newest checkpoint (the ledger sink signs every N entries
    or T seconds) are left to the next pack; the pack still verifies."""
    from schemas import payloads as p
    from schemas.fields import Outcome, PolicyTier
    from tests.unit.audit.ledger_support import open_test_ledger
    from tests.unit.compliance.pack_support import T0

    build_ledger(tmp_path)
    later = open_test_ledger(
        tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}", every=10_000, interval_s=1e9
    )
    covered = reader(tmp_path).size()
    tail = new_event(  # a privileged sign-in without MFA, not yet under a checkpoint
        p.LoginAttempted(outcome=Outcome.SUCCESS, method="password", policy_tier=PolicyTier.ADMIN),
        source="https://login.example.com/mfa", tenant="acme", subject="admin-9",
        correlationid="l-99", now=T0 + timedelta(days=1),
    )  # fmt: skip
    later.append([tail], now=T0 + timedelta(days=1))
    built = _pack(tmp_path, tmp_path / "p")
    assert built.checkpoint.tree_size == covered < reader(tmp_path).size()
    assert all(row.event_id != tail.id for c in built.controls for row in c.rows)
    assert run_verify(bare_python, tmp_path / "p").returncode == 0


def test_a_ledger_without_a_checkpoint_gives_no_pack(tmp_path: Path) -> None:
    from tests.unit.audit.ledger_support import open_test_ledger

    open_test_ledger(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}").migrate()
    with pytest.raises(PackError, match="no signed checkpoint yet"):
        _pack(tmp_path, tmp_path / "p")
