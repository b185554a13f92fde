"""The audit trail as the dashboard reads it: recent rows, the latest checkpoint, verify,
export. A thin layer over :class:`audit.ledger.Ledger` and :func:`audit.export.write_export`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.checkpoints import Checkpoint, public_pem
from audit.export import ExportFormat, write_export
from audit.ledger import Ledger, LedgerError
from audit.rows import ExportFilter, LedgerRow
from compliance.controls import ControlResult, Framework, evaluate
from compliance.pack import IssuedPack, read_evidence, write_pack
from compliance.periods import Period


@dataclass(frozen=True)
class Verification:
    """The outcome of recomputing the tree and checking every signed checkpoint."""

    ok: bool
    summary: str


@dataclass(frozen=True)
class EntryProof:
    """An entry's inclusion proof (the ``audit prove`` document) as checked here."""

    ok: bool
    summary: str
    """What was verified (leaf, path, root, the checkpoint's signature and key), or why not."""
    document: dict[str, Any] | None = None
    """``None`` while no signed checkpoint covers the entry yet."""


class LedgerAccess(Protocol):
    def recent(self, where: ExportFilter, *, limit: int) -> list[LedgerRow]: ...

    def entry(self, sequence: int) -> LedgerRow | None: ...

    def proof(self, event_id: str) -> EntryProof: ...

    def latest_checkpoint(self) -> Checkpoint | None: ...

    def size(self) -> int: ...

    def verify(self) -> Verification: ...

    def export(self, where: ExportFilter, *, fmt: ExportFormat, out: Path) -> int: ...

    def controls(
        self, framework: Framework, period: Period, tenant: str | None
    ) -> list[ControlResult]: ...

    def evidence_pack(
        self, framework: Framework, period: Period, tenant: str | None, *, out: Path, now: datetime
    ) -> IssuedPack: ...


class AuditLedger:
    """:class:`LedgerAccess` over one ledger database (read only: nothing is appended);
    ``pinned`` public keys (by key id) are the only ones a checkpoint may be signed by."""

    def __init__(
        self, ledger: Ledger, *, pinned: Mapping[str, Ed25519PublicKey] | None = None
    ) -> None:
        self.ledger = ledger
        self.pinned = pinned
        self.sealed = Ledger(ledger.engine, signing_key=None, master_key=None)
        """The same database without keys: what evidence packs read (never unsealed)."""

    def recent(self, where: ExportFilter, *, limit: int) -> list[LedgerRow]:
        """The last ``limit`` matching rows, newest first (read from the newest end)."""
        return list(islice(self.ledger.rows(where, chunk=limit, newest_first=True), limit))

    def entry(self, sequence: int) -> LedgerRow | None:
        return self.ledger.entry(sequence)

    def proof(self, event_id: str) -> EntryProof:
        """The inclusion proof of ``event_id`` against the newest checkpoint covering it,
        checked as ``factorstream audit check-proof`` checks it: against the pinned keys,
        or (none pinned) the keys the ledger holds."""
        from audit.verify import ProofRefused, check_proof_document

        try:
            document = self.ledger.prove(event_id)
        except LedgerError as error:
            return EntryProof(False, str(error))
        keys = self.pinned or self.ledger.public_keys()
        pems = [public_pem(key) for key in keys.values()]
        try:
            verified = check_proof_document(json.dumps(document), public_keys=pems)
        except ProofRefused as error:
            return EntryProof(False, f"the proof does not verify: {error}", document)
        trusted = "a pinned key" if self.pinned else "the ledger's own key (none pinned)"
        return EntryProof(True, f"{verified.summary}; signed by {trusted}", document)

    def latest_checkpoint(self) -> Checkpoint | None:
        checkpoints = self.ledger.checkpoints()
        return max(checkpoints, key=lambda c: c.tree_size) if checkpoints else None

    def size(self) -> int:
        return self.ledger.size()

    def verify(self) -> Verification:
        report = self.ledger.verify(pinned_keys=self.pinned)
        if not report.ok:
            return Verification(False, "; ".join(p.message for p in report.problems[:3]))
        summary = (
            f"{report.size:,} entries recomputed; {report.checkpoints} signed checkpoints "
            "match their roots and signatures"
        )
        if report.unsigned:
            summary += f" ({report.unsigned:,} entries after the newest checkpoint)"
        if self.pinned:
            summary += f", signed by the {len(self.pinned)} pinned keys"
        else:
            summary += "; no keys are pinned, so the database's own keys were trusted"
        return Verification(True, summary)

    def export(self, where: ExportFilter, *, fmt: ExportFormat, out: Path) -> int:
        return write_export(self.ledger.rows(where), fmt=fmt, out=out)

    def controls(
        self, framework: Framework, period: Period, tenant: str | None
    ) -> list[ControlResult]:
        """The controls as a pack would answer them now: over the entries the newest signed
        checkpoint covers (none before the first checkpoint)."""
        newest = self.latest_checkpoint()
        covered = newest.tree_size if newest is not None else 0
        return evaluate(framework, read_evidence(self.sealed, period, tenant, covered=covered))

    def evidence_pack(
        self, framework: Framework, period: Period, tenant: str | None, *, out: Path, now: datetime
    ) -> IssuedPack:
        return write_pack(
            self.sealed, framework=framework, period=period, tenant=tenant, out=out, now=now
        )


def open_ledger(
    url: str, *, master_key_file: Path, pinned: Mapping[str, Ed25519PublicKey] | None = None
) -> LedgerAccess | None:
    """The ledger at ``url``, read only (no migration, no key created), or ``None`` while
    its SQLite file does not exist. Personal data opens with the master key, if present;
    ``pinned`` are the keys verification pins (:func:`pinned_keys`)."""
    from audit import ledger

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    master = master_key_file
    return AuditLedger(
        ledger.open_ledger(
            url=url,
            signing_key_file=None,
            master_key_file=master if master.exists() else None,
            create_keys=False,
            migrate=False,
        ),
        pinned=pinned,
    )


def pinned_keys(public_key_files: Sequence[Path]) -> dict[str, Ed25519PublicKey] | None:
    """The keys of ``public_key_files`` (PEM), read once at start-up; ``ValueError`` naming
    a file that cannot be read or holds no Ed25519 public key."""
    from audit.verify import ProofRefused, read_trusted_keys

    try:
        return read_trusted_keys(public_key_files) or None
    except ProofRefused as error:
        raise ValueError(f"ledger public key {error}") from None
