"""The report as PDF where fpdf2 (the ``pdf`` extra) is installed: the same answers as the
HTML report, covered by the manifest (a changed PDF is refused), the same bytes for the
same pack; Latin-1 only, anything else shown as ``?``. Without fpdf2: HTML only."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path

from compliance.pack import write_pack
from compliance.periods import parse_period
from compliance.report_pdf import latin1
from tests.offline_python import run_verify
from tests.unit.compliance.pack_support import pdf_text, reader

HAS_FPDF = importlib.util.find_spec("fpdf") is not None
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _pack(ledger_dir: Path, out: Path) -> Path:
    write_pack(reader(ledger_dir), framework="soc2", period=parse_period("2026-Q3"),
               tenant=None, out=out, now=NOW, policy={"admin": {"max_failures": "3"}})  # fmt: skip
    return out


def test_the_pdf_report_says_what_the_html_says(ledger_dir: Path, tmp_path: Path) -> None:
    pack = _pack(ledger_dir, tmp_path / "p")
    manifest = json.loads((pack / "manifest.json").read_text())
    if not HAS_FPDF:
        assert not (pack / "report.pdf").exists() and "report.pdf" not in manifest["files"]
        return
    pdf = (pack / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert "report.pdf" in manifest["files"]
    text = " ".join(pdf_text(pdf).split())
    controls = json.loads((pack / "controls.json").read_text())
    for control in controls:
        assert control["control"] in text
        assert " ".join(f"Answer. {control['answer']}".split()) in text
    assert "signed in without any MFA step" in text  # an exception row, shown
    assert "Policy tiers in force" in text and "max_failures" in text
    assert "python verify.py" in text


def test_the_same_pack_gives_the_same_pdf(ledger_dir: Path, tmp_path: Path) -> None:
    first = _pack(ledger_dir, tmp_path / "a") / "report.pdf"
    second = _pack(ledger_dir, tmp_path / "b") / "report.pdf"
    assert first.exists() is second.exists() is HAS_FPDF
    if HAS_FPDF:
        assert first.read_bytes() == second.read_bytes()


def test_a_changed_pdf_is_refused(bare_python: Path, ledger_dir: Path, tmp_path: Path) -> None:
    pack = _pack(ledger_dir, tmp_path / "p")
    if not HAS_FPDF:
        assert not (pack / "report.pdf").exists()
        return
    report = pack / "report.pdf"
    report.write_bytes(report.read_bytes() + b"%one more line, e.g. an edited trailer\n")
    result = run_verify(bare_python, pack)
    assert result.returncode == 1 and "report.pdf was changed" in result.stderr


def test_text_outside_latin_1_is_shown_as_a_question_mark() -> None:
    assert latin1("São Paulo → Zürich — 東京") == "São Paulo ? Zürich ? ??"
