"""The human report of a pack: one self-contained HTML page (no scripts, no fetches)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any, Final

from audit.checkpoints import Checkpoint, format_time
from compliance.controls import ControlResult, EvidenceRow

ROWS_SHOWN: Final = 200
"""Rows per control shown in the page; the CSV holds them all."""

_STYLE: Final = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;color:#1d2430}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-top:1px solid #ccd;padding-top:1rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
td,th{border:1px solid #dde;padding:.2rem .4rem;
text-align:left;vertical-align:top}th{background:#f1f3f7}code{font-size:12px}
.met{color:#116329;font-weight:600}.not-met{color:#b3261e;font-weight:600}
.informational{color:#3b4a66;font-weight:600}.exception{background:#fdecea}.refused{color:#6b4e00}.erased{color:#6b6f80}
"""


def _cell(value: object) -> str:
    return f"<td>{escape(str(value))}</td>"


def _row_html(row: EvidenceRow, proof_of: Callable[[str], str]) -> str:
    subject = f"{row.subject} (erased)" if row.subject_erased else row.subject
    css = {"exception": "exception", "refused": "refused"}.get(row.finding, "")
    css += " erased" if row.subject_erased else ""
    cells = "".join(
        _cell(v) for v in (row.finding, row.time, row.type, row.tenant, subject, row.detail)
    )
    link = escape(proof_of(row.event_id))
    proof = f'<td><a href="{link}"><code>{escape(row.event_id)}</code></a></td>'
    return f'<tr class="{css}">{cells}{proof}</tr>'


def _control_html(control: ControlResult, proof_of: Callable[[str], str]) -> str:
    status = escape(control.status)
    head = (
        f'<h2 id="{escape(control.control)}">'
        f"{escape(control.control)} — {escape(control.title)}</h2>"
        f"<p><b>Question.</b> {escape(control.question)}</p>"
        f"<p><b>Answer.</b> {escape(control.answer)}</p>"
        f'<p><b>Status:</b> <span class="{status.replace(" ", "-")}">{status}</span>; '
        f"{len(control.exceptions)} exceptions, {len(control.rows)} evidence rows.</p>"
    )
    exceptions = control.exceptions
    shown = (exceptions + [r for r in control.rows if r.finding != "exception"])[:ROWS_SHOWN]
    if not shown:
        return head + "<p>No events in the period.</p>"
    more = len(control.rows) - len(shown)
    header = "".join(
        f"<th>{h}</th>" for h in ("finding", "time", "type", "tenant", "subject", "detail", "proof")
    )
    body = "".join(_row_html(row, proof_of) for row in shown)
    note = f"<p>{more} more rows in the CSV.</p>" if more > 0 else ""
    return f"{head}<table><tr>{header}</tr>{body}</table>{note}"


def _policy_html(policy: Mapping[str, Mapping[str, str]] | None) -> str:
    if not policy:
        return ""
    names = sorted({name for tier in policy.values() for name in tier})
    head = "".join(f"<th>{escape(n)}</th>" for n in ["tier", *names])
    body = "".join(
        f"<tr>{_cell(tier)}{''.join(_cell(values.get(n, '')) for n in names)}</tr>"
        for tier, values in policy.items()
    )
    return (
        "<h2>Policy tiers in force</h2><p>The configuration the pipeline enforced when the pack "
        "was issued (<code>policy.json</code>; covered by the manifest, not by a ledger proof)."
        f"</p><table><tr>{head}</tr>{body}</table>"
    )


RETENTION_COLUMNS: Final = (
    "store",
    "holds",
    "policy",
    "enforced_by",
    "oldest",
    "status",
    "finding",
)


def _retention_html(rows: Sequence[Mapping[str, Any]] | None) -> str:
    if rows is None:
        return ""
    head = "".join(f"<th>{escape(n.replace('_', ' '))}</th>" for n in RETENTION_COLUMNS)
    body = "".join(
        f'<tr class="{"exception" if row["status"] == "exception" else ""}">'
        + "".join(_cell("" if row.get(n) is None else row[n]) for n in RETENTION_COLUMNS)
        + "</tr>"
        for row in rows
    )
    exceptions = sum(1 for row in rows if row["status"] == "exception")
    return (
        "<h2>Retention of personal data (Art. 5(1)(e))</h2><p>Each store, the retention "
        "policy in force, and the oldest data it held when the pack was issued "
        f"(<code>retention.json</code>; covered by the manifest, not by a ledger proof): "
        f"{exceptions} exceptions.</p><table><tr>{head}</tr>{body}</table>"
    )


def render_report(
    header: Mapping[str, Any],
    controls: list[ControlResult],
    checkpoint: Checkpoint,
    proof_of: Callable[[str], str],
    policy: Mapping[str, Mapping[str, str]] | None = None,
    retention: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    period = header["period"]
    summary = "".join(
        f'<tr><td><a href="#{escape(c.control)}">{escape(c.control)}</a></td>{_cell(c.title)}'
        f'<td class="{escape(c.status.replace(" ", "-"))}">{escape(c.status)}</td>'
        f"{_cell(len(c.exceptions))}{_cell(len(c.rows))}</tr>"
        for c in controls
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Evidence pack {escape(str(header['framework']).upper())} {escape(period['label'])}"
        f"</title><style>{_STYLE}</style></head><body>"
        f"<h1>Evidence pack: {escape(str(header['framework']).upper())}, "
        f"{escape(period['label'])}</h1>"
        f"<p>Period {escape(period['since'])} to {escape(period['until'])} (end excluded); tenant "
        f"{escape(str(header['tenant'] or 'all'))}; generated {escape(header['generated_at'])}.</p>"
        "<table><tr><th>control</th><th>title</th><th>status</th><th>exceptions</th>"
        f"<th>rows</th></tr>{summary}</table>"
        + "".join(_control_html(c, proof_of) for c in controls)
        + _policy_html(policy)
        + _retention_html(retention)
        + "<h2>How to check this pack</h2>"
        f"<p>Every row is an event of the ledger <code>{escape(checkpoint.log_id)}</code>, proven "
        f"included in its checkpoint of {checkpoint.tree_size} entries signed at "
        f"{escape(format_time(checkpoint.time))} by key <code>{escape(checkpoint.key_id)}</code>. "
        "Run <code>python verify.py</code> in this directory (needs only Python and "
        "<code>pip install cryptography</code>): it checks every file's SHA-256 against "
        "<code>manifest.json</code>, the checkpoint's signature, and every row's proof. Compare "
        "the key id with the one your organisation pinned. Personal data is never shown: it is "
        "sealed in the ledger, and subjects marked (erased) had their key destroyed.</p>"
        "</body></html>\n"
    )
