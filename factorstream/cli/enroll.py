"""``factorstream enroll``: migrate TOTP seeds from another system, invite subjects in bulk.

The verifier database is the MFA service's (settings ``outbox_url`` and
``service.secrets_key_file``); the events go out through its outbox (``factorstream
relay``). The file formats are in ``verifiers/seed_files.py`` and docs/enrollment.md.
"""

from __future__ import annotations

import csv
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from factorstream.cli.context import console, errors, fail, settings_of
from schemas.envelope import TENANT_PATTERN
from schemas.fields import Factor

if TYPE_CHECKING:
    from verifiers.bulk_enrollment import BulkResult
    from verifiers.seed_files import Rejected
    from verifiers.store import VerifierStore

app = typer.Typer(
    help="Bulk enrollment: import TOTP seeds from another system, invite subjects.",
    no_args_is_help=True,
)

REFUSED_EXIT = 2
"""The exit status when the run finished but refused some rows (see the reject report)."""


class FormatChoice(StrEnum):
    AUTO = "auto"
    OTPAUTH = "otpauth"
    CSV = "csv"


TenantOption = typer.Option(..., help="The tenant the subjects belong to.")
SubjectMapOption = typer.Option(
    None,
    "--subject-map",
    help="CSV of account,subject: the pseudonymous subject id of each account the file "
    "names (exports often name people by e-mail address, which the events never carry).",
    exists=True,
    dir_okay=False,
)
RejectsOption = typer.Option(
    None, help="Where to write the refused rows (default: FILE.rejects.csv beside FILE)."
)


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="The seed file."),
    tenant: str = TenantOption,
    file_format: FormatChoice = typer.Option(
        FormatChoice.AUTO,
        "--format",
        help="otpauth (one otpauth://totp/ URI a line), csv (a header row naming subject "
        "or username, secret, and optionally issuer, algorithm, digits, period), or auto "
        "(by the first line).",
    ),
    imported_from: str | None = typer.Option(
        None,
        "--from",
        help="Where the seeds come from, recorded in each event's imported_from "
        "(default: the file's format).",
    ),
    subject_map: Path | None = SubjectMapOption,
    rejects: Path | None = RejectsOption,
) -> None:
    """Import TOTP seeds as confirmed enrollments; idempotent (a seed already imported is
    counted as already present). Exit status 2 when rows were refused."""
    from verifiers.bulk_enrollment import import_seeds
    from verifiers.seed_files import SeedFileError, SeedFormat, TotpSeed, read_seeds

    _check_tenant(tenant)
    source = imported_from
    if source is not None and not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", source):
        raise fail("--from: a short lower-case name, e.g. otpauth, csv, authelia")
    started = time.perf_counter()
    with file.open("rb") as stream:
        chosen = None if file_format is FormatChoice.AUTO else SeedFormat(file_format.value)
        try:
            rows = read_seeds(stream, seed_format=chosen, subjects=_subject_map(subject_map))
        except SeedFileError as error:
            raise fail(f"{file}: {error}") from None
    seeds = [row for row in rows if isinstance(row, TotpSeed)]
    if source is None:
        source = chosen.value if chosen else _sniffed(file)
    store = _store(ctx)
    refused = [row for row in rows if not isinstance(row, TotpSeed)]
    _run(
        "importing seeds",
        len(seeds),
        lambda advance: import_seeds(
            store,
            seeds,
            tenant=tenant,
            now=datetime.now(UTC),
            correlationid=f"enroll-import-{store.entropy.identifier()}",
            imported_from=source,
            on_batch=advance,
        ),
        file=file,
        refused=refused,
        rejects=rejects,
        started=started,
        added_as="imported",
    )


@app.command("invite")
def invite(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="CSV with a subject (or username) column."
    ),
    tenant: str = TenantOption,
    factor: Factor = typer.Option(..., help="The factor each subject is invited to enrol."),
    subject_map: Path | None = SubjectMapOption,
    rejects: Path | None = RejectsOption,
) -> None:
    """Invite every subject of FILE to enrol a factor (mfa.enrollment.started, invited);
    idempotent (a subject already invited or enrolled is counted as already present).
    Exit status 2 when rows were refused."""
    from verifiers.bulk_enrollment import invite as invite_all
    from verifiers.seed_files import Invitee, SeedFileError, read_invitees

    _check_tenant(tenant)
    if factor in (Factor.UNKNOWN, Factor.RECOVERY_CODE):
        raise fail(f"--factor {factor.value}: not a factor one enrols")
    started = time.perf_counter()
    with file.open("rb") as stream:
        try:
            rows = read_invitees(stream, subjects=_subject_map(subject_map))
        except SeedFileError as error:
            raise fail(f"{file}: {error}") from None
    invitees = [row for row in rows if isinstance(row, Invitee)]
    store = _store(ctx)
    _run(
        f"inviting to {factor.value}",
        len(invitees),
        lambda advance: invite_all(
            store,
            invitees,
            tenant=tenant,
            factor=factor,
            now=datetime.now(UTC),
            correlationid=f"enroll-invite-{store.entropy.identifier()}",
            on_batch=advance,
        ),
        file=file,
        refused=[row for row in rows if not isinstance(row, Invitee)],
        rejects=rejects,
        started=started,
        added_as="invited",
    )


def _run(
    description: str,
    total: int,
    work: Callable[[Callable[[BulkResult], None]], BulkResult],
    *,
    file: Path,
    refused: Sequence[Rejected],
    rejects: Path | None,
    started: float,
    added_as: str,
) -> None:
    """Run ``work`` with a progress bar; on an interrupt, report what committed."""
    from verifiers.bulk_enrollment import BulkResult

    done = BulkResult(rejected=list(refused))
    interrupted = False
    with _progress() as progress:
        task = progress.add_task(description, total=total)

        def advance(batch: BulkResult) -> None:
            done.merge(batch)
            progress.advance(task, batch.rows)

        try:
            work(advance)
        except KeyboardInterrupt:
            interrupted = True
    elapsed = time.perf_counter() - started
    report = rejects or file.with_name(file.name + ".rejects.csv")
    _summary(done, added_as=added_as, elapsed=elapsed, report=report)
    if interrupted:
        raise fail("interrupted: the batches above are committed; run it again to finish", 130)
    if done.rejected:
        raise typer.Exit(REFUSED_EXIT)


@contextmanager
def _progress() -> Iterator[Progress]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        yield progress


def _summary(result: BulkResult, *, added_as: str, elapsed: float, report: Path) -> None:
    rows = result.added + result.already_present + len(result.rejected)
    table = Table(show_header=False, box=None)
    table.add_row(added_as, str(result.added))
    table.add_row("already present", str(result.already_present))
    table.add_row("refused", str(len(result.rejected)))
    for reason, count in sorted(Counter(r.reason for r in result.rejected).items()):
        table.add_row(f"  {reason}", str(count))
    console.print(table)
    rate = rows / elapsed if elapsed > 0 else 0.0
    console.print(f"{rows} rows in {elapsed:.2f} s ({rate:,.0f} rows/s)")
    write_rejects(report, result.rejected)  # also when none: no stale report is left
    if result.rejected:
        console.print(f"refused rows (line, reason, detail): [bold]{escape(str(report))}[/]")
        for row in sorted(result.rejected, key=lambda r: r.row)[:5]:
            console.print(f"  line {row.row}: {row.reason}: {escape(row.detail)}", soft_wrap=True)


def write_rejects(path: Path, rejected: Sequence[Rejected]) -> None:
    """The refused rows as CSV (``line,reason,detail``), in file order; no cell holds a
    secret, none runs as a spreadsheet formula."""
    from audit.export import spreadsheet_safe

    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "reason", "detail"])
        for row in sorted(rejected, key=lambda r: r.row):
            writer.writerow([row.row, spreadsheet_safe(row.reason), spreadsheet_safe(row.detail)])


def _check_tenant(tenant: str) -> None:
    if len(tenant) > 64 or not re.fullmatch(TENANT_PATTERN, tenant):
        raise fail(f"--tenant {escape(tenant)!r}: letters, digits, . _ - (at most 64)")


def _subject_map(path: Path | None) -> dict[str, str] | None:
    if path is None:
        return None
    from verifiers.seed_files import SeedFileError, read_subject_map

    with path.open("rb") as stream:
        try:
            return read_subject_map(stream)
        except SeedFileError as error:
            raise fail(f"{path}: {error}") from None


def _sniffed(file: Path) -> str:
    from verifiers.seed_files import numbered_lines, sniff_format

    with file.open("rb") as stream:
        for _number, line in numbered_lines(stream):
            if isinstance(line, str):
                return sniff_format(line).value
    return "csv"


def _store(ctx: typer.Context) -> VerifierStore:
    from factorstream.service_config import service_config
    from verifiers.service.server import open_store

    settings = settings_of(ctx)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return open_store(service_config(settings))
