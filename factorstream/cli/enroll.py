"""``factorstream enroll``: migrate TOTP seeds from another system, invite subjects in bulk.

The verifier database is the MFA service's (settings ``outbox_url`` and
``service.secrets_key_file``); the events go out through its outbox (``factorstream
relay``). The file formats are in ``verifiers/seed_files.py`` and
``verifiers/bulk_files.py``, and in docs/enrollment.md.
"""

from __future__ import annotations

import csv
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import typer
from rich.markup import escape
from rich.table import Table

from factorstream.cli.context import console, errors, fail, progress_bar, settings_of
from schemas.envelope import check_tenant
from schemas.fields import Factor

if TYPE_CHECKING:
    from verifiers.bulk_enrollment import Batches, BulkResult
    from verifiers.bulk_files import LineSource, Rejected
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
SeedFileArgument = typer.Argument(..., exists=True, dir_okay=False, help="The seed file.")
InviteFileArgument = typer.Argument(
    ..., exists=True, dir_okay=False, help="CSV with a subject (or username) column."
)
FormatOption = typer.Option(
    FormatChoice.AUTO,
    "--format",
    help="otpauth (one otpauth://totp/ URI a line), csv (a header row naming subject or "
    "username, secret, and optionally issuer, algorithm, digits, period), or auto (by the "
    "first line).",
)
FactorOption = typer.Option(..., help="The factor each subject is invited to enrol.")
RejectsOption = typer.Option(
    None, help="Where to write the refused rows (default: FILE.rejects.csv beside FILE)."
)


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = SeedFileArgument,
    tenant: str = TenantOption,
    file_format: FormatChoice = FormatOption,
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
    from verifiers.seed_files import SeedFormat, read_seeds

    _check_tenant(tenant)
    if imported_from is not None and not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", imported_from):
        raise fail("--from: a short lower-case name, e.g. otpauth, csv, authelia")
    if file.stat().st_mode & 0o077:
        errors.print(
            f"[yellow]warning:[/] {escape(str(file))} is open to other users and holds TOTP "
            "seeds in clear: make it private (chmod 600), delete it once imported"
        )
    chosen = None if file_format is FormatChoice.AUTO else SeedFormat(file_format.value)
    source = imported_from or (chosen.value if chosen else _sniffed(file))
    subjects = _subject_map(subject_map)
    _bulk(
        ctx,
        file,
        lambda lines: read_seeds(lines, seed_format=chosen, subjects=subjects),
        lambda store, seeds, batches: import_seeds(
            store,
            seeds,
            tenant=tenant,
            now=datetime.now(UTC),
            correlationid=f"enroll-import-{store.entropy.identifier()}",
            imported_from=source,
            batches=batches,
        ),
        doing="importing seeds",
        done_as="imported",
        rejects=rejects,
    )


@app.command("invite")
def invite(
    ctx: typer.Context,
    file: Path = InviteFileArgument,
    tenant: str = TenantOption,
    factor: Factor = FactorOption,
    subject_map: Path | None = SubjectMapOption,
    rejects: Path | None = RejectsOption,
) -> None:
    """Invite every subject of FILE to enrol a factor (mfa.enrollment.started, invited);
    idempotent (a subject already invited or enrolled is counted as already present).
    Exit status 2 when rows were refused."""
    from verifiers.bulk_enrollment import invite as invite_all
    from verifiers.bulk_files import read_invitees

    _check_tenant(tenant)
    if factor in (Factor.UNKNOWN, Factor.RECOVERY_CODE):
        raise fail(f"--factor {factor.value}: not a factor one enrols")
    subjects = _subject_map(subject_map)
    _bulk(
        ctx,
        file,
        lambda lines: read_invitees(lines, subjects=subjects),
        lambda store, invitees, batches: invite_all(
            store,
            invitees,
            tenant=tenant,
            factor=factor,
            now=datetime.now(UTC),
            correlationid=f"enroll-invite-{store.entropy.identifier()}",
            batches=batches,
        ),
        doing=f"inviting to {factor.value}",
        done_as="invited",
        rejects=rejects,
    )


class _CountedLines:
    """A binary file whose reads advance a progress bar by the bytes read (every 64 KiB:
    one update a line cost a third of the reading time)."""

    def __init__(self, stream: BinaryIO, advance: Callable[[int], object]) -> None:
        self.stream, self.advance, self.unreported = stream, advance, 0

    def readline(self, size: int = -1, /) -> bytes:
        line = self.stream.readline(size)
        self.unreported += len(line)
        if self.unreported >= 65536 or not line:
            self.advance(self.unreported)
            self.unreported = 0
        return line


def _bulk(
    ctx: typer.Context,
    file: Path,
    read: Callable[[LineSource], Sequence[Any]],
    write: Callable[[VerifierStore, list[Any], Batches], BulkResult],
    *,
    doing: str,
    done_as: str,
    rejects: Path | None,
) -> None:
    """Read ``file`` then ``write`` its good rows, with a progress bar for each; print what
    was done and write the reject report. SIGINT, SIGTERM or SIGHUP while writing stops
    after the batch in hand commits, and the summary says what did (running the same
    command again finishes the rest)."""
    from verifiers.bulk_enrollment import Batches, BulkResult
    from verifiers.bulk_files import BulkFileError, Rejected

    started = time.perf_counter()
    store = _store(ctx)
    with progress_bar() as progress:
        reading = progress.add_task(f"reading {escape(file.name)}", total=file.stat().st_size)
        with file.open("rb") as stream:
            try:
                rows = read(_CountedLines(stream, lambda n: progress.advance(reading, n)))
            except BulkFileError as error:
                raise fail(f"{escape(str(file))}: {error}") from None
        accepted = [row for row in rows if not isinstance(row, Rejected)]
        done = BulkResult(rejected=[row for row in rows if isinstance(row, Rejected)])

        def committed(batch: BulkResult) -> None:
            done.merge(batch)
            progress.advance(writing, batch.rows)

        with _stop_on_signal() as stop:
            writing = progress.add_task(doing, total=len(accepted))
            stopped = write(store, accepted, Batches(on_commit=committed, stop=stop)).stopped
    elapsed = time.perf_counter() - started
    report = rejects or file.with_name(file.name + ".rejects.csv")
    _summary(done, done_as=done_as, elapsed=elapsed, report=report)
    if stopped:
        raise fail("stopped by a signal: the rows above are committed; run it again to finish", 130)
    if done.rejected:
        raise typer.Exit(REFUSED_EXIT)


@contextmanager
def _stop_on_signal() -> Iterator[Callable[[], bool]]:
    """Whether SIGINT, SIGTERM or SIGHUP came (instead of an exception mid-batch)."""
    asked = threading.Event()
    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {stop: signal.signal(stop, lambda *_: asked.set()) for stop in stops}
    try:
        yield asked.is_set
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)


def _summary(result: BulkResult, *, done_as: str, elapsed: float, report: Path) -> None:
    from verifiers.bulk_files import reasons

    rows = result.rows
    table = Table(show_header=False, box=None)
    table.add_row(done_as, str(result.added))
    table.add_row("already present", str(result.already_present))
    table.add_row("refused", str(len(result.rejected)))
    for reason, count in sorted(reasons(result.rejected).items()):
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
    try:
        check_tenant(tenant)
    except ValueError as error:
        raise fail(f"--tenant: {escape(str(error))}") from None


def _subject_map(path: Path | None) -> dict[str, str] | None:
    if path is None:
        return None
    from verifiers.bulk_files import BulkFileError, read_subject_map

    with path.open("rb") as stream:
        try:
            return read_subject_map(stream)
        except BulkFileError as error:
            raise fail(f"{path}: {error}") from None


def _sniffed(file: Path) -> str:
    from verifiers.bulk_files import numbered_lines
    from verifiers.seed_files import sniff_format

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
