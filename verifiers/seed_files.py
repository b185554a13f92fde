"""Reading TOTP seeds exported by another system (``factorstream enroll import``). Pure: a
binary stream in, seeds or refusals out (no database, no clock). Lines, CSV headers and
subjects are read as :mod:`verifiers.bulk_files` reads them.

One seed a line, in either format:

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

Besides what every row is checked for, a seed is refused when its secret is not base32,
is shorter than 128 bits (RFC 4226 §4) or longer than 1024 bits, or its algorithm,
digits or period are not ones the verifier runs; a subject named on several lines is
refused on each of them (which seed is right cannot be told). No refusal holds the secret.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import parse_qs, unquote, urlsplit

from verifiers.bulk_files import (
    CsvHeader,
    LineSource,
    Rejected,
    RowError,
    check_subject,
    numbered_lines,
)
from verifiers.totp import ALGORITHMS, BASE32, DIGITS, MIN_SECRET_BYTES, PERIODS

MAX_SECRET_BYTES = 128
"""1024 bits: no exporter makes longer seeds (HMAC-SHA512's block is 128 bytes)."""
MAX_ISSUER_CHARS = 128

_BASE32 = frozenset(BASE32)


class SeedFormat(StrEnum):
    OTPAUTH = "otpauth"
    CSV = "csv"


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


def sniff_format(first_line: str) -> SeedFormat:
    """otpauth when the line is a URI of that scheme, else CSV (the line is its header)."""
    otpauth = first_line.lstrip().lower().startswith("otpauth")
    return SeedFormat.OTPAUTH if otpauth else SeedFormat.CSV


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


def read_seeds(
    stream: LineSource,
    *,
    seed_format: SeedFormat | None = None,
    subjects: Mapping[str, str] | None = None,
) -> list[TotpSeed | Rejected]:
    """Every row of a seed file, in file order, a seed or the reason it is refused.

    ``seed_format``: ``None`` tells by the first line. ``subjects``: account → subject id
    (rows whose account is missing from it are refused). A subject named on several rows
    is refused on each of them. Raises :class:`BulkFileError` for a CSV file without a
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
