"""Reading the files of a bulk run, row by row: numbered lines, CSV with a header, the
person each row names, invitation lists and subject maps. Pure: a binary stream in, rows
or refusals out (no database, no clock). The TOTP seed files are in
:mod:`verifiers.seed_files`.

Each row is read as an attacker's input: a line over :data:`MAX_LINE_BYTES` is refused
without being held in memory, bytes that are not UTF-8 refuse their row only, and a
subject must be one the event contract carries (1–128 printable ASCII characters
without spaces), not start like a spreadsheet formula (``= + - @``, which would run in
every export that shows it) and not be an e-mail address (subjects are pseudonymous: a
subject map names them). A refused row is a :class:`Rejected` with its line number, a
snake_case reason and a detail that never holds what the row carried.

CSV files are read a line at a time: one row a line, no line break inside a quoted cell
(none of the files read here needs one; such a row is refused as ``malformed_csv``).

**Invitation files** (``factorstream enroll invite``): CSV with a header naming the
person's column (``subject``, ``username`` or ``account``); other columns are ignored.
**Subject maps**: CSV of ``account,subject``.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from schemas.envelope import TOKEN_PATTERN

MAX_LINE_BYTES = 8192
"""A longer line is refused (``line_too_long``) without being held in memory."""
SUBJECT_COLUMNS = ("subject", "username", "account")
"""The person's column, first found wins: ours, Authelia's, a generic account name."""
FORMULA_PREFIXES = ("=", "+", "-", "@")
"""What makes a spreadsheet treat a cell as a formula (OWASP CSV injection; the audit
export's rule, whose other starts, tab and CR, no subject may hold)."""

_SUBJECT = re.compile(TOKEN_PATTERN, re.ASCII)


class LineSource(Protocol):
    """Where lines are read from: a file opened ``rb`` (or anything with its ``readline``)."""

    def readline(self, size: int = -1, /) -> bytes: ...


class BulkFileError(ValueError):
    """The file as a whole cannot be read (no header, no subject column, a bad map)."""


@dataclass(frozen=True)
class Rejected:
    """A row that is not imported: its line, a machine reason and what was wrong."""

    row: int
    reason: str
    detail: str


@dataclass(frozen=True)
class Invitee:
    """One subject to invite, and the line that names it."""

    row: int
    subject: str


class RowError(ValueError):
    """Why one row is refused (becomes a :class:`Rejected`)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def numbered_lines(stream: LineSource) -> Iterator[tuple[int, str | RowError]]:
    """Each non-blank line with its 1-based number, decoded, or the reason it cannot be;
    a line over :data:`MAX_LINE_BYTES` is skipped to its end without being kept."""
    number = 0
    while chunk := stream.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(chunk) > MAX_LINE_BYTES:
            while chunk and not chunk.endswith(b"\n"):
                chunk = stream.readline(MAX_LINE_BYTES)
            yield number, RowError("line_too_long", f"longer than {MAX_LINE_BYTES} bytes")
            continue
        if number == 1 and chunk.startswith(b"\xef\xbb\xbf"):
            chunk = chunk[3:]
        try:
            text = chunk.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as error:
            yield number, RowError("not_utf8", f"byte {error.start} is not UTF-8")
            continue
        if text.strip():
            yield number, text


def check_subject(subject: str, subjects: Mapping[str, str] | None = None) -> str:
    """The subject id a row names, through ``subjects`` (account → subject) if given."""
    if subjects is not None:
        if subject not in subjects:
            raise RowError("unmapped_account", "the account is not in the subject map")
        subject = subjects[subject]
    if not subject:
        raise RowError("missing_subject", "no subject")
    if subject.startswith(FORMULA_PREFIXES):
        raise RowError("formula_subject", "the subject starts like a spreadsheet formula")
    if len(subject) > 128 or not _SUBJECT.match(subject):
        raise RowError(
            "bad_subject", "a subject is 1–128 printable ASCII characters without spaces"
        )
    if "@" in subject:
        raise RowError(
            "subject_is_email",
            "subjects are pseudonymous ids, not e-mail addresses (map them with a subject map)",
        )
    return subject


@dataclass(frozen=True)
class CsvHeader:
    """Where each known column is in a CSV file's rows."""

    columns: dict[str, int]
    width: int

    @classmethod
    def parse(cls, line: str, *, required: tuple[str, ...]) -> CsvHeader:
        try:
            names = [name.strip().lower() for name in next(csv.reader([line], strict=True))]
        except csv.Error as error:
            raise BulkFileError(f"the CSV header is not CSV: {error}") from None
        columns = {name: index for index, name in reversed(list(enumerate(names)))}
        subject = next((c for c in SUBJECT_COLUMNS if c in columns), None)
        if subject is None:
            raise BulkFileError(f"the CSV header names no {' or '.join(SUBJECT_COLUMNS)} column")
        missing = [name for name in required if name not in columns]
        if missing:
            raise BulkFileError(f"the CSV header names no {missing[0]} column")
        columns["subject"] = columns[subject]
        return cls(columns, len(names))

    def cells(self, line: str) -> dict[str, str]:
        try:
            cells = next(csv.reader([line], strict=True))
        except csv.Error:
            raise RowError("malformed_csv", "the row is not valid CSV") from None
        if len(cells) != self.width:
            raise RowError("wrong_field_count", f"{len(cells)} fields, the header has {self.width}")
        return {name: cells[index] for name, index in self.columns.items()}


def read_invitees(
    stream: LineSource, *, subjects: Mapping[str, str] | None = None
) -> list[Invitee | Rejected]:
    """Every row of an invitation CSV; a subject named again is refused on its later rows
    (inviting once is what was asked)."""
    rows: list[Invitee | Rejected] = []
    header: CsvHeader | None = None
    first: dict[str, int] = {}
    for number, line in numbered_lines(stream):
        try:
            if isinstance(line, RowError):
                raise line
            if header is None:
                header = CsvHeader.parse(line, required=())
                continue
            subject = check_subject(header.cells(line)["subject"].strip(), subjects)
            if subject in first:
                raise RowError("duplicate_subject", f"the subject is on line {first[subject]} too")
            first[subject] = number
            rows.append(Invitee(number, subject))
        except RowError as error:
            rows.append(Rejected(number, error.reason, error.detail))
    if header is None:
        raise BulkFileError("the file is empty (a CSV header and one subject a row expected)")
    return rows


def read_subject_map(stream: LineSource) -> dict[str, str]:
    """A CSV of ``account,subject`` (header required): how the accounts an export names
    (often e-mail addresses) become pseudonymous subject ids. Raises
    :class:`BulkFileError` on the first bad row: a wrong map must not half-apply."""
    mapping: dict[str, str] = {}
    header: CsvHeader | None = None
    for number, line in numbered_lines(stream):
        try:
            if isinstance(line, RowError):
                raise line
            if header is None:
                header = CsvHeader.parse(line, required=("account",))
                if header.columns["subject"] == header.columns["account"]:
                    raise BulkFileError("the subject map needs an account and a subject column")
                continue
            cells = header.cells(line)
            account = cells["account"].strip()
            if account in mapping:
                raise RowError("duplicate_account", "the account is mapped twice")
            mapping[account] = check_subject(cells["subject"].strip())
        except RowError as error:
            raise BulkFileError(f"subject map line {number}: {error.detail}") from None
    return mapping


def reasons(rows: Iterable[object]) -> Counter[str]:
    """How many rows were refused for each reason."""
    return Counter(row.reason for row in rows if isinstance(row, Rejected))
