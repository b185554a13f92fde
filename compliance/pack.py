"""Writing an evidence pack: the controls' rows, a proof per row, checkpoints, keys,
the report, ``verify.py`` and a manifest of every file's SHA-256.

Layout of a pack directory::

    manifest.json        format, framework, period, tenant, ledger id, {file: sha256}
    controls.json        per control: question, answer, status, row and exception counts
    evidence/<id>.csv    one row per event (and .parquet, the same rows)
    proofs/<file>.json   an inclusion proof per event named by a row (audit's format)
    checkpoints.json     the signed checkpoint(s) the proofs lead to
    keys/<key id>.pem    the public keys that signed them
    report.html          the human report (self-contained)
    report.pdf           the same as PDF, where fpdf2 (the ``pdf`` extra) is installed
    verify.py            the offline verifier (standard library + cryptography)

The pack's digest is SHA-256 of ``manifest.json``; :func:`issued_event` records it in
the ledger. The ledger is read without its master key: sealed personal data is never
opened, so no pack can show it, erased or not.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from audit import database, proofs
from audit.checkpoints import Checkpoint, format_time, public_pem
from audit.ledger import Ledger
from audit.rows import ExportFilter
from compliance import offline_verify
from compliance.controls import (
    ERASURE_TYPE,
    ControlResult,
    Evidence,
    EvidenceRow,
    Framework,
    LedgerEvent,
    evaluate,
)
from compliance.periods import Period
from compliance.report import render_report
from compliance.report_pdf import render_pdf
from schemas import Event, new_event
from schemas.payloads import EvidenceIssued

FORMAT: Final = "factorstream-evidence/v1"
SOURCE: Final = "urn:factorstream:compliance"
ENROLLMENT_TYPES: Final = frozenset({"mfa.enrollment.completed", "mfa.enrollment.removed"})
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class PackError(Exception):
    """An evidence pack cannot be built; the message says why."""


@dataclass(frozen=True)
class IssuedPack:
    directory: Path
    framework: Framework
    period: Period
    tenant: str | None
    digest: str
    """SHA-256 of ``manifest.json``: the pack's digest."""
    controls: list[ControlResult]
    checkpoint: Checkpoint
    files: int

    @property
    def rows(self) -> int:
        return sum(len(c.rows) for c in self.controls)

    @property
    def exceptions(self) -> int:
        return sum(len(c.exceptions) for c in self.controls)


def read_evidence(
    ledger: Ledger, period: Period, tenant: str | None, *, covered: int | None = None
) -> Evidence:
    """The events the controls read, from a ledger opened without its master key;
    ``covered``: only the first ``covered`` entries (those a signed checkpoint covers)."""
    if ledger.keys.wrapper is not None:
        raise PackError("open the ledger without its master key: a pack never unseals data")
    limit = covered if covered is not None else float("inf")

    def events(where: ExportFilter) -> list[LedgerEvent]:
        return [
            LedgerEvent(row.sequence, row.event)
            for row in ledger.rows(where)
            if row.sequence < limit
        ]

    erasures = events(ExportFilter(tenant=tenant, types=frozenset({ERASURE_TYPE})))
    return Evidence(
        period=events(ExportFilter(since=period.since, until=period.until, tenant=tenant)),
        enrollments=events(ExportFilter(until=period.until, tenant=tenant, types=ENROLLMENT_TYPES)),
        erased=frozenset(item.owner for item in erasures),
    )


def proof_name(event_id: str) -> str:
    """``proofs/<event id>.json``, or the id's SHA-256 where it is not a safe file name."""
    safe = event_id if _SAFE_NAME.match(event_id) else hashlib.sha256(event_id.encode()).hexdigest()
    return f"proofs/{safe}.json"


def newest_checkpoint(ledger: Ledger) -> Checkpoint:
    """The checkpoint a pack's proofs lead to: the ledger's newest. Entries after it are
    left to the next pack (the CLI signs one first; the dashboard takes what the ledger
    sink signed last)."""
    signed = ledger.checkpoints()
    if not signed:
        raise PackError(
            "the ledger has no signed checkpoint yet (`factorstream audit checkpoint` signs one)"
        )
    return max(signed, key=lambda checkpoint: checkpoint.tree_size)


def _csv_row(control: str, row: EvidenceRow) -> dict[str, str]:
    values = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in asdict(row).items()}
    return {
        **values,
        "control": control,
        "proof": proof_name(row.event_id),
        "related_proof": proof_name(row.related_event_id) if row.related_event_id else "",
    }


def _write_rows(out: Path, slug: str, control: ControlResult) -> None:
    rows = [_csv_row(control.control, row) for row in control.rows]
    path = out / "evidence" / f"{slug}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=offline_verify.COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # Parquet is a convenience copy of the CSV
        return
    columns = {name: [row[name] for row in rows] for name in offline_verify.COLUMNS}
    table = pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})
    pq.write_table(table, out / "evidence" / f"{slug}.parquet")


def slug_of(control: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", control).strip("-").lower()


def _sha256(path: Path) -> str:
    return offline_verify.sha256_file(path)


def write_pack(
    ledger: Ledger,
    *,
    framework: Framework,
    period: Period,
    tenant: str | None,
    out: Path,
    now: datetime,
    policy: Mapping[str, Mapping[str, str]] | None = None,
    retention: Sequence[Mapping[str, Any]] | None = None,
) -> IssuedPack:
    """Build the pack in ``out`` (which must not exist or be empty); nothing is appended
    to the ledger here (see :func:`issued_event`). ``policy``: the policy tiers in force
    (tier → setting → value), written as ``policy.json`` and shown in the report: what
    the pipeline was configured with when the pack was issued, not a fact of the ledger.
    ``retention``: each store's retention policy and the oldest data found in it
    (:func:`compliance.retention.retention_rows`), written as ``retention.json`` and shown
    in the report (the GDPR pack's storage limitation)."""
    if out.exists() and any(out.iterdir()):
        raise PackError(f"{out} is not empty: a pack is written into a new directory")
    checkpoint = newest_checkpoint(ledger)
    evidence = read_evidence(ledger, period, tenant, covered=checkpoint.tree_size)
    controls = evaluate(framework, evidence)
    keys = ledger.public_keys()
    if checkpoint.key_id not in keys:
        raise PackError(f"the ledger does not hold the public key {checkpoint.key_id}")
    for folder in ("evidence", "proofs", "keys"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    wanted: dict[str, None] = {}
    for control in controls:
        _write_rows(out, slug_of(control.control), control)
        for row in control.rows:
            wanted.update(dict.fromkeys(filter(None, (row.event_id, row.related_event_id))))
    with database.reading(ledger.engine) as connection:  # one snapshot for every proof
        try:
            for document in proofs.inclusion_documents(connection, wanted, checkpoint.tree_size):
                name = proof_name(document["event_id"])
                (out / name).write_text(json.dumps(document, indent=1) + "\n")
        except proofs.ProofUnavailable as error:
            raise PackError(f"a row cannot be proven: {error}") from None
    (out / "checkpoints.json").write_text(json.dumps([checkpoint.to_json()], indent=1) + "\n")
    (out / "keys" / f"{checkpoint.key_id}.pem").write_bytes(public_pem(keys[checkpoint.key_id]))
    summary = [
        {
            "control": c.control,
            "framework": c.framework,
            "title": c.title,
            "question": c.question,
            "answer": c.answer,
            "status": c.status,
            "rows": len(c.rows),
            "exceptions": len(c.exceptions),
            "evidence": f"evidence/{slug_of(c.control)}.csv",
        }
        for c in controls
    ]
    (out / "controls.json").write_text(json.dumps(summary, indent=1) + "\n")
    if policy is not None:
        (out / "policy.json").write_text(json.dumps(policy, indent=1, sort_keys=True) + "\n")
    if retention is not None:
        (out / "retention.json").write_text(json.dumps(list(retention), indent=1) + "\n")
    header = {
        "format": FORMAT,
        "framework": framework,
        "period": {
            "label": period.label,
            "since": format_time(period.since),
            "until": format_time(period.until),
        },
        "tenant": tenant,
        "generated_at": format_time(now),
        "log_id": checkpoint.log_id,
        "checkpoint": checkpoint.tree_size,
    }
    (out / "report.html").write_text(
        render_report(header, controls, checkpoint, proof_name, policy, retention),
        encoding="utf-8",
    )
    if (pdf := render_pdf(header, controls, checkpoint, policy)) is not None:
        (out / "report.pdf").write_bytes(pdf)
    shutil.copyfile(offline_verify.__file__, out / "verify.py")
    files = {
        path.relative_to(out).as_posix(): _sha256(path)
        for path in sorted(out.rglob("*"))
        if path.is_file() and path.name != "manifest.json"
    }
    manifest = out / "manifest.json"
    manifest.write_text(json.dumps({**header, "files": files}, indent=1, sort_keys=True) + "\n")
    return IssuedPack(
        out, framework, period, tenant, _sha256(manifest), controls, checkpoint, len(files) + 1
    )


def pack_digest(pack: IssuedPack) -> dict[str, Any]:
    """The fields of :class:`~schemas.payloads.PackDigest` for ``pack``."""
    return {
        "framework": pack.framework,
        "period": pack.period.label,
        "since": pack.period.since,
        "until": pack.period.until,
        "scope_tenant": pack.tenant,
        "manifest_sha256": pack.digest,
        "controls": [c.control for c in pack.controls],
        "rows": pack.rows,
        "exceptions": pack.exceptions,
        "checkpoint_size": pack.checkpoint.tree_size,
    }


def issued_event(pack: IssuedPack, *, issued_by: str, now: datetime) -> Event:
    """``audit.evidence.issued``: the pack's digest, for the ledger."""
    return new_event(
        EvidenceIssued(**pack_digest(pack)),
        source=SOURCE,
        tenant=pack.tenant or "_all",
        subject=issued_by,
        correlationid=f"evidence-{pack.digest[:32]}",
        now=now,
    )


def controls_table(controls: Iterable[ControlResult]) -> list[dict[str, Any]]:
    """Control, status and counts (the CLI's summary, the dashboard's table)."""
    return [
        {
            "control": c.control,
            "title": c.title,
            "status": c.status,
            "rows": len(c.rows),
            "exceptions": len(c.exceptions),
        }
        for c in controls
    ]
