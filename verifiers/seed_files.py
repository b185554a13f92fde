"""Reading the files of a migration: TOTP seeds exported by another system, and lists of
subjects to invite. Pure: a binary stream in, rows or rejects out (no database, no clock).

**Seed files** (``factorstream enroll import``), one seed a line, in either format:

* ``otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=…&algorithm=…&digits=…&period=…`` (the
  Key URI format authenticator apps scan; Authelia's ``storage user totp export uri``
  writes it). ``otpauth://hotp`` (a counter, not a clock) is refused. Blank lines and
  lines starting with ``#`` are skipped.
* CSV with a header naming its columns (any order, case-insensitive, other columns
  ignored): ``secret`` (base32, required), the person as ``subject``, ``username``
  (Authelia's ``storage user totp export csv``: ``issuer,username,algorithm,digits,
  period,secret``) or ``account``, and optionally ``issuer``, ``algorithm`` (SHA1,
  SHA256, SHA512; ``HmacSHA1`` style accepted), ``digits`` (6 or 8), ``period`` (15–120 s).
  An empty optional cell takes the default (SHA1, 6, 30).

**Invitation files** (``factorstream enroll invite``): CSV with a header naming the
person's column (``subject``, ``username`` or ``account``); other columns are ignored.

Each row is checked as an attacker's input: a line over :data:`MAX_LINE_BYTES`, bytes that
are not UTF-8, a subject the event contract would refuse (printable ASCII without spaces,
at most 128 characters) or that a spreadsheet would run as a formula (``= + - @``), a
secret that is not base32, shorter than 128 bits (RFC 4226 §4) or longer than 1024 bits,
an unknown algorithm, and a subject named twice in one file (every row of it is refused:
which seed is right cannot be told). A refused row is a :class:`Rejected` with its line
number, a snake_case reason and a detail that never holds the secret.
"""

from __future__ import annotations

import base64
import csv
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from schemas.envelope import TOKEN_PATTERN
from verifiers.totp import ALGORITHMS, BASE32, DIGITS, MIN_SECRET_BYTES, PERIODS

MAX_LINE_BYTES = 8192
"""A longer line is refused (``line_too_long``) without being held in memory."""
MAX_SECRET_BYTES = 128
"""1024 bits: no exporter makes longer seeds (HMAC-SHA512's block is 128 bytes)."""
MAX_ISSUER_CHARS = 128
SUBJECT_COLUMNS = ("subject", "username", "account")
"""The person's column, first found wins: ours, Authelia's, a generic account name."""
FORMULA_PREFIXES = ("=", "+", "-", "@")
"""What makes a spreadsheet treat a cell as a formula (OWASP CSV injection)."""

_SUBJECT = re.compile(TOKEN_PATTERN, re.ASCII)
_BASE32 = frozenset(BASE32)


class LineSource(Protocol):
    """Where lines are read from: a file opened ``rb`` (or anything with its ``readline``)."""

    def readline(self, size: int = -1, /) -> bytes: ...


class SeedFileError(ValueError):
    """The file as a whole cannot be read (no header, no subject or secret column)."""


class SeedFormat(StrEnum):
    OTPAUTH = "otpauth"
    CSV = "csv"


@dataclass(frozen=True)
class Rejected:
    """A row that is not imported: its line, a machine reason and what was wrong."""

    row: int
    reason: str
    detail: str


@dataclass(frozen=True)
class TotpSeed:
    """One seed to import. ``secret``: the decoded key (never printed, see ``repr``)."""

    row: int
    subject: str
    secret: bytes = field(repr=False)
    algorithm: str = "SHA1"
    digits: int = 6
    period: int = 30
    issuer: str | None = None

    @property
    def base32(self) -> str:
        """The secret as the verifier stores it: upper-case base32 without padding."""
        return base64.b32encode(self.secret).decode().rstrip("=")


@dataclass(frozen=True)
class Invitee:
    row: int
    subject: str


class RowError(ValueError):
    """Why one row is refused (becomes a :class:`Rejected`)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# -- lines ---------------------------------------------------------------------------------


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


def sniff_format(first_line: str) -> SeedFormat:
    return (
        SeedFormat.OTPAUTH if first_line.lstrip().lower().startswith("otpauth") else SeedFormat.CSV
    )


# -- fields --------------------------------------------------------------------------------


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


def decode_secret(text: str) -> bytes:
    """A base32 secret as exporters write it (any case, spaces, padding) as bytes."""
    if not text.strip():
        raise RowError("missing_secret", "no secret")
    cleaned = text.replace(" ", "").rstrip("=").upper()
    if not cleaned or not _BASE32.issuperset(cleaned):
        raise RowError("bad_base32", "the secret is not base32 (A–Z, 2–7)")
    try:
        secret = base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except ValueError:
        raise RowError("bad_base32", "the secret's length is not a whole base32 key") from None
    if len(secret) < MIN_SECRET_BYTES:
        raise RowError(
            "secret_too_short",
            f"{len(secret) * 8} bits; at least {MIN_SECRET_BYTES * 8} (RFC 4226 §4)",
        )
    if len(secret) > MAX_SECRET_BYTES:
        raise RowError("secret_too_long", f"over {MAX_SECRET_BYTES * 8} bits")
    return secret


def check_algorithm(text: str) -> str:
    name = text.strip().upper().removeprefix("HMAC").replace("-", "")
    if not name:
        return "SHA1"
    if name not in ALGORITHMS:
        raise RowError("unknown_algorithm", f"expected one of {', '.join(sorted(ALGORITHMS))}")
    return name


def check_digits(text: str) -> int:
    if not text.strip():
        return 6
    if not text.strip().isdecimal() or int(text) not in DIGITS:
        raise RowError("unsupported_digits", "digits must be 6 or 8")
    return int(text)


def check_period(text: str) -> int:
    if not text.strip():
        return 30
    if not text.strip().isdecimal() or int(text) not in PERIODS:
        raise RowError("unsupported_period", f"period must be {PERIODS.start}–{PERIODS.stop - 1} s")
    return int(text)


def check_issuer(text: str | None) -> str | None:
    if not text:
        return None
    if len(text) > MAX_ISSUER_CHARS or not text.isprintable():
        raise RowError("bad_issuer", f"an issuer is up to {MAX_ISSUER_CHARS} printable characters")
    return text


# -- otpauth URIs --------------------------------------------------------------------------


def parse_otpauth(uri: str, *, row: int = 0, subjects: Mapping[str, str] | None = None) -> TotpSeed:
    """One ``otpauth://totp/…`` URI as a seed (raises :class:`RowError`)."""
    parts = urlsplit(uri.strip())
    if parts.scheme.lower() != "otpauth":
        raise RowError("not_otpauth", "expected an otpauth:// URI")
    kind = parts.netloc.lower()
    if kind == "hotp":
        raise RowError("hotp_not_supported", "a counter-based (HOTP) seed cannot become TOTP")
    if kind != "totp":
        raise RowError("not_totp", "expected otpauth://totp/")
    query = parse_qs(parts.query, keep_blank_values=True)
    repeated = sorted(name for name, values in query.items() if len(values) > 1)
    if repeated:
        raise RowError("repeated_parameter", f"parameter given twice: {repeated[0]}"[:200])
    value = {name.lower(): values[0] for name, values in query.items()}
    label = unquote(parts.path.lstrip("/"))
    label_issuer, _, account = label.rpartition(":")
    return TotpSeed(
        row=row,
        subject=check_subject(account.strip(), subjects),
        secret=decode_secret(value.get("secret", "")),
        algorithm=check_algorithm(value.get("algorithm", "")),
        digits=check_digits(value.get("digits", "")),
        period=check_period(value.get("period", "")),
        issuer=check_issuer(value.get("issuer") or label_issuer.strip() or None),
    )


# -- CSV -----------------------------------------------------------------------------------


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
            raise SeedFileError(f"the CSV header is not CSV: {error}") from None
        columns = {name: index for index, name in reversed(list(enumerate(names)))}
        subject = next((c for c in SUBJECT_COLUMNS if c in columns), None)
        if subject is None:
            raise SeedFileError(f"the CSV header names no {' or '.join(SUBJECT_COLUMNS)} column")
        missing = [name for name in required if name not in columns]
        if missing:
            raise SeedFileError(f"the CSV header names no {missing[0]} column")
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


def _csv_seed(
    header: CsvHeader, line: str, row: int, subjects: Mapping[str, str] | None
) -> TotpSeed:
    cells = header.cells(line)
    return TotpSeed(
        row=row,
        subject=check_subject(cells["subject"].strip(), subjects),
        secret=decode_secret(cells["secret"]),
        algorithm=check_algorithm(cells.get("algorithm", "")),
        digits=check_digits(cells.get("digits", "")),
        period=check_period(cells.get("period", "")),
        issuer=check_issuer(cells.get("issuer", "").strip() or None),
    )


# -- files ---------------------------------------------------------------------------------


def read_seeds(
    stream: LineSource,
    *,
    seed_format: SeedFormat | None = None,
    subjects: Mapping[str, str] | None = None,
) -> list[TotpSeed | Rejected]:
    """Every row of a seed file, in file order, a seed or the reason it is refused.

    ``seed_format``: ``None`` tells by the first line. ``subjects``: account → subject id
    (rows whose account is missing from it are refused). A subject named on several rows
    is refused on each of them. Raises :class:`SeedFileError` for a CSV file without a
    usable header.
    """
    lines = numbered_lines(stream)
    rows: list[TotpSeed | Rejected] = []
    header: CsvHeader | None = None
    for number, line in lines:
        if isinstance(line, RowError):
            rows.append(Rejected(number, line.reason, line.detail))
            continue
        comment = line.lstrip().startswith("#")
        if seed_format is None and not comment:
            seed_format = sniff_format(line)
        try:
            if seed_format is not SeedFormat.CSV:
                if comment:
                    continue
                rows.append(parse_otpauth(line, row=number, subjects=subjects))
            elif header is None:
                header = CsvHeader.parse(line, required=("secret",))
            else:
                rows.append(_csv_seed(header, line, number, subjects))
        except RowError as error:
            rows.append(Rejected(number, error.reason, error.detail))
    return _refuse_repeated(rows)


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
        raise SeedFileError("the file is empty (a CSV header and one subject a row expected)")
    return rows


def read_subject_map(stream: LineSource) -> dict[str, str]:
    """A CSV of ``account,subject`` (header required): how the accounts an export names
    (often e-mail addresses) become pseudonymous subject ids. Raises
    :class:`SeedFileError` on the first bad row: a wrong map must not half-apply."""
    mapping: dict[str, str] = {}
    header: CsvHeader | None = None
    for number, line in numbered_lines(stream):
        try:
            if isinstance(line, RowError):
                raise line
            if header is None:
                header = CsvHeader.parse(line, required=("account",))
                if header.columns["subject"] == header.columns["account"]:
                    raise SeedFileError("the subject map needs an account and a subject column")
                continue
            cells = header.cells(line)
            account = cells["account"].strip()
            if account in mapping:
                raise RowError("duplicate_account", "the account is mapped twice")
            mapping[account] = check_subject(cells["subject"].strip())
        except RowError as error:
            raise SeedFileError(f"subject map line {number}: {error.detail}") from None
    return mapping


def _refuse_repeated(rows: Iterable[TotpSeed | Rejected]) -> list[TotpSeed | Rejected]:
    listed = list(rows)
    lines: dict[str, list[int]] = {}
    for row in listed:
        if isinstance(row, TotpSeed):
            lines.setdefault(row.subject, []).append(row.row)
    repeated = {subject: rows for subject, rows in lines.items() if len(rows) > 1}
    return [
        Rejected(
            row.row,
            "duplicate_subject",
            "the subject is on lines " + ", ".join(map(str, repeated[row.subject][:10])),
        )
        if isinstance(row, TotpSeed) and row.subject in repeated
        else row
        for row in listed
    ]


def reasons(rows: Iterable[TotpSeed | Invitee | Rejected]) -> Counter[str]:
    """How many rows were refused for each reason."""
    return Counter(row.reason for row in rows if isinstance(row, Rejected))
