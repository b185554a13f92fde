"""The human report as a PDF (``report.pdf``), where the optional ``pdf`` dependency group
(fpdf2, a pure-Python PDF writer) is installed; without it a pack holds the HTML report
only. Same content as :mod:`compliance.report`: the summary, each control's question,
answer and status with its exceptions first (up to :data:`~compliance.report.ROWS_SHOWN`
rows; the CSV holds them all), the policy tiers, and how to check the pack.

The PDF uses the standard PDF fonts, which cover Latin-1 only: any other character is
printed as ``?`` (the CSV and the HTML keep the exact text). Its creation date is the
pack's ``generated_at``, so the same pack gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from audit.checkpoints import Checkpoint, format_time
from compliance.controls import ControlResult, EvidenceRow
from compliance.report import ROWS_SHOWN

ROW_COLUMNS: Final = ("finding", "time", "type", "tenant", "subject", "detail", "event id")
ROW_WIDTHS: Final = (18, 38, 42, 24, 38, 60, 57)
"""Millimetres across a landscape A4 page's 277 mm of text width."""


def latin1(text: object) -> str:
    """``text`` as the standard PDF fonts can show it (other characters become ``?``)."""
    return str(text).encode("latin-1", "replace").decode("latin-1")


def _row_cells(row: EvidenceRow) -> tuple[str, ...]:
    subject = f"{row.subject} (erased)" if row.subject_erased else row.subject
    return (row.finding, row.time, row.type, row.tenant, subject, row.detail, row.event_id)


def render_pdf(
    header: Mapping[str, Any],
    controls: list[ControlResult],
    checkpoint: Checkpoint,
    policy: Mapping[str, Mapping[str, str]] | None = None,
) -> bytes | None:
    """The report as PDF bytes, or ``None`` when fpdf2 is not installed."""
    try:
        from fpdf import FPDF
        from fpdf.fonts import FontFace
    except ImportError:
        return None
    period, framework = header["period"], str(header["framework"]).upper()
    pdf = FPDF(orientation="landscape", format="A4")
    pdf.set_creation_date(datetime.fromisoformat(str(header["generated_at"])))
    pdf.set_title(latin1(f"Evidence pack {framework} {period['label']}"))
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.set_margins(10, 10, 10)
    pdf.add_page()
    bold = FontFace(emphasis="BOLD", fill_color=(241, 243, 247))

    def heading(text: str, size: int) -> None:
        pdf.set_font("Helvetica", "B", size)
        pdf.multi_cell(0, size * 0.5, latin1(text), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)

    def paragraph(text: str) -> None:
        pdf.set_font("Helvetica", "", 9)
        pdf.multi_cell(0, 4.5, latin1(text), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)

    def table(rows: Sequence[Sequence[str]], widths: tuple[int, ...] | None = None) -> None:
        pdf.set_font("Helvetica", "", 7)
        with pdf.table(
            col_widths=widths, headings_style=bold, line_height=3.6, text_align="LEFT"
        ) as grid:
            for values in rows:
                cells = grid.row()
                for value in values:
                    cells.cell(latin1(value))
        pdf.ln(2)

    heading(f"Evidence pack: {framework}, {period['label']}", 16)
    paragraph(
        f"Period {period['since']} to {period['until']} (end excluded); tenant "
        f"{header['tenant'] or 'all'}; generated {header['generated_at']}."
    )
    table(
        [("control", "title", "status", "exceptions", "rows")]
        + [
            (c.control, c.title, c.status, str(len(c.exceptions)), str(len(c.rows)))
            for c in controls
        ],  # fmt: skip
        (40, 137, 40, 30, 30),
    )
    for control in controls:
        heading(f"{control.control} - {control.title}", 12)
        paragraph(f"Question. {control.question}")
        paragraph(f"Answer. {control.answer}")
        paragraph(
            f"Status: {control.status}; {len(control.exceptions)} exceptions, "
            f"{len(control.rows)} evidence rows."
        )
        rest = [r for r in control.rows if r.finding != "exception"]
        shown = (control.exceptions + rest)[:ROWS_SHOWN]
        if not shown:
            paragraph("No events in the period.")
            continue
        table([ROW_COLUMNS] + [_row_cells(row) for row in shown], ROW_WIDTHS)
        if (more := len(control.rows) - len(shown)) > 0:
            paragraph(f"{more} more rows in the CSV.")
    if policy:
        names = sorted({name for tier in policy.values() for name in tier})
        heading("Policy tiers in force", 12)
        paragraph("The configuration the pipeline enforced when the pack was issued "
                  "(policy.json; covered by the manifest, not by a ledger proof).")  # fmt: skip
        table([("tier", *names)] + [(t, *(v.get(n, "") for n in names)) for t, v in policy.items()])
    heading("How to check this pack", 12)
    paragraph(
        f"Every row is an event of the ledger {checkpoint.log_id}, proven included in its "
        f"checkpoint of {checkpoint.tree_size} entries signed at {format_time(checkpoint.time)} "
        f"by key {checkpoint.key_id}. Run `python verify.py` in the pack's directory (needs "
        "only Python and `pip install cryptography`): it checks every file's SHA-256 against "
        "manifest.json (this PDF included), the checkpoint's signature, and every row's "
        "proof. Compare the key id with the one your organisation pinned. Personal data is "
        "never shown: it is sealed in the ledger, and subjects marked (erased) had their key "
        "destroyed."
    )
    return bytes(pdf.output())
