"""Seed files read as an attacker would write them: every refused row has its line and
reason, nothing secret is ever in a reject, and no input is held whole."""

from __future__ import annotations

import base64
import io

import pytest

from verifiers.bulk_files import MAX_LINE_BYTES, BulkFileError, Rejected, read_subject_map
from verifiers.seed_files import SeedFormat, TotpSeed, parse_otpauth, read_seeds

KEY = bytes(range(20))  # 160 bits
SECRET = base64.b32encode(KEY).decode().rstrip("=")
SECRET_32 = base64.b32encode(bytes(range(32))).decode().rstrip("=")


def _seeds(text: str | bytes, **options: object) -> list[TotpSeed | Rejected]:
    data = text.encode() if isinstance(text, str) else text
    return read_seeds(io.BytesIO(data), **options)  # type: ignore[arg-type]


def _only(rows: list[TotpSeed | Rejected]) -> TotpSeed | Rejected:
    assert len(rows) == 1, rows
    return rows[0]


def _reason(text: str | bytes, **options: object) -> str:
    row = _only(_seeds(text, **options))
    assert isinstance(row, Rejected), row
    return row.reason


def test_an_otpauth_uri_gives_its_seed_and_settings() -> None:
    seed = parse_otpauth(
        f"otpauth://totp/Acme%20Corp:u-42?secret={SECRET_32.lower()}&issuer=Acme%20Corp"
        "&algorithm=SHA256&digits=8&period=60",
        row=3,
    )
    assert seed == TotpSeed(3, "u-42", bytes(range(32)), "SHA256", 8, 60, "Acme Corp")
    assert seed.base32 == SECRET_32


def test_defaults_spaces_and_padding_are_what_authenticator_apps_accept() -> None:
    spaced = " ".join(SECRET[i : i + 4] for i in range(0, len(SECRET), 4))
    seed = _only(_seeds(f"otpauth://totp/u-1?secret={spaced.replace(' ', '%20')}===="))
    assert isinstance(seed, TotpSeed)
    assert (seed.subject, seed.secret, seed.algorithm, seed.digits, seed.period) == (
        "u-1",
        KEY,
        "SHA1",
        6,
        30,
    )
    assert seed.issuer is None


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        (f"otpauth://hotp/Acme:u-1?secret={SECRET}&counter=0", "hotp_not_supported"),
        ("otpauth://totp/Acme:u-1?issuer=Acme", "missing_secret"),
        ("otpauth://totp/Acme:u-1?secret=", "missing_secret"),
        ("otpauth://totp/Acme:u-1?secret=JBSWY3DP0189!!", "bad_base32"),
        ("otpauth://totp/Acme:u-1?secret=ABC", "bad_base32"),  # not a whole base32 key
        ("otpauth://totp/Acme:u-1?secret=JBSWY3DPEHPK3PXP", "secret_too_short"),  # 80 bits
        (f"otpauth://totp/Acme:u-1?secret={'A' * 208}", "secret_too_long"),
        (f"otpauth://totp/Acme:u-1?secret={SECRET}&algorithm=MD5", "unknown_algorithm"),
        (f"otpauth://totp/Acme:u-1?secret={SECRET}&digits=7", "unsupported_digits"),
        (f"otpauth://totp/Acme:u-1?secret={SECRET}&digits=-6", "unsupported_digits"),
        (f"otpauth://totp/Acme:u-1?secret={SECRET}&period=5", "unsupported_period"),
        (f"otpauth://totp/Acme:u-1?secret={SECRET}&period=1e9", "unsupported_period"),
        (f"otpauth://totp/Acme:u-1?secret={SECRET}&secret={SECRET_32}", "repeated_parameter"),
        (f"https://totp/Acme:u-1?secret={SECRET}", "not_otpauth"),
        (f"otpauth://steam/Acme:u-1?secret={SECRET}", "not_totp"),
        (f"otpauth://totp/Acme:?secret={SECRET}", "missing_subject"),
        (f"otpauth://totp/Acme:alice@example.com?secret={SECRET}", "subject_is_email"),
        (f"otpauth://totp/Acme:u%201?secret={SECRET}", "bad_subject"),
        (f"otpauth://totp/Acme:u%0a1?secret={SECRET}", "bad_subject"),
        (f"otpauth://totp/Acme:%1b%5b31m?secret={SECRET}", "bad_subject"),  # terminal escape
        (f"otpauth://totp/Acme:{'u' * 129}?secret={SECRET}", "bad_subject"),
        (f"otpauth://totp/Acme:%3DHYPERLINK(1)?secret={SECRET}", "formula_subject"),
        (f"otpauth://totp/Acme:u-1?secret={SECRET}&issuer=%07bell", "bad_issuer"),
    ],
)
def test_a_malformed_uri_is_refused_with_its_reason(uri: str, reason: str) -> None:
    rejected = _only(_seeds(uri, seed_format=SeedFormat.OTPAUTH))
    assert isinstance(rejected, Rejected) and (rejected.row, rejected.reason) == (1, reason)
    for secret in (SECRET, SECRET_32, "JBSWY3DP"):
        assert secret not in rejected.detail


def test_rows_are_numbered_by_line_blank_and_comment_lines_skipped() -> None:
    text = (
        f"# exported 2026-12-01\n\notpauth://totp/A:u-1?secret={SECRET}\r\n"
        f"otpauth://totp/A:u-2?secret=short\n   \notpauth://totp/A:u-3?secret={SECRET}"
    )
    rows = _seeds(text)
    described = [(r.row, r.reason if isinstance(r, Rejected) else r.subject) for r in rows]
    assert described == [
        (3, "u-1"),
        (4, "secret_too_short"),
        (6, "u-3"),
    ]


def test_a_subject_named_twice_is_refused_on_every_line() -> None:
    text = "\n".join(
        f"otpauth://totp/A:{subject}?secret={SECRET}" for subject in ("u-1", "u-2", "u-1")
    )
    rows = _seeds(text)
    assert [getattr(row, "reason", "ok") for row in rows] == [
        "duplicate_subject",
        "ok",
        "duplicate_subject",
    ]
    assert "1, 3" in rows[0].detail  # type: ignore[union-attr]


def test_a_huge_line_is_refused_without_being_kept_and_the_next_line_still_reads() -> None:
    huge = b"otpauth://totp/A:u-1?secret=" + b"A" * (50 * MAX_LINE_BYTES)
    text = huge + f"\notpauth://totp/A:u-2?secret={SECRET}\n".encode()
    rows = _seeds(text)
    assert rows[0] == Rejected(1, "line_too_long", rows[0].detail)  # type: ignore[union-attr]
    assert isinstance(rows[1], TotpSeed) and (rows[1].row, rows[1].subject) == (2, "u-2")


def test_bytes_that_are_not_utf8_refuse_their_row_only() -> None:
    text = (
        b"otpauth://totp/A:u-\xff\xfe?secret=" + SECRET.encode() + b"\n"
        b"otpauth://totp/A:u-2?secret=" + SECRET.encode() + b"\n"
    )
    rows = _seeds(text, seed_format=SeedFormat.OTPAUTH)
    assert rows[0].reason == "not_utf8"  # type: ignore[union-attr]
    assert isinstance(rows[1], TotpSeed)


def test_the_secret_is_never_in_a_seed_repr() -> None:
    seed = parse_otpauth(f"otpauth://totp/A:u-1?secret={SECRET}")
    assert SECRET not in repr(seed) and str(KEY) not in repr(seed)


CSV_HEADER = "subject,secret,issuer,algorithm,digits,period\n"


def test_the_generic_csv_reads_each_column_and_defaults_empty_cells() -> None:
    rows = _seeds(
        CSV_HEADER + f"u-1,{SECRET},Acme,SHA512,8,45\nu-2,{SECRET_32},,,,\n",
    )
    assert rows == [
        TotpSeed(2, "u-1", KEY, "SHA512", 8, 45, "Acme"),
        TotpSeed(3, "u-2", bytes(range(32)), "SHA1", 6, 30, None),
    ]


def test_authelias_csv_export_reads_as_it_is_written() -> None:
    # `authelia storage user totp export csv`: issuer,username,algorithm,digits,period,secret
    text = f"issuer,username,algorithm,digits,period,secret\nAuthelia,john,SHA1,6,30,{SECRET}\n"
    assert _seeds(text) == [TotpSeed(2, "john", KEY, "SHA1", 6, 30, "Authelia")]


def test_columns_are_found_by_name_in_any_order_and_case_others_ignored() -> None:
    text = f"Secret,Notes,SUBJECT,Algorithm\n{SECRET},hello,u-1,HmacSHA256\n"
    assert _seeds(text) == [TotpSeed(2, "u-1", KEY, "SHA256", 6, 30, None)]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (f'=HYPERLINK("http://evil"),{SECRET},,,,', "formula_subject"),
        (f"+1-555,{SECRET},,,,", "formula_subject"),
        (f"@SUM(A1),{SECRET},,,,", "formula_subject"),
        (f"-2+3,{SECRET},,,,", "formula_subject"),
        (f"u-1,{SECRET},,,", "wrong_field_count"),
        (f'"u-1,{SECRET},,,,', "malformed_csv"),
        (f"u-1;DROP TABLE enrollments,{SECRET},,,,", "bad_subject"),
        (f"u-1',{SECRET},,,7,", "unsupported_digits"),
        (f"u-1,{SECRET},,SHA3,,", "unknown_algorithm"),
        ("u-1,,,,,", "missing_secret"),
        (f",{SECRET},,,,", "missing_subject"),
    ],
)
def test_a_malformed_csv_row_is_refused_with_its_reason(row: str, reason: str) -> None:
    rejected = _only(_seeds(CSV_HEADER + row + "\n"))
    assert isinstance(rejected, Rejected) and (rejected.row, rejected.reason) == (2, reason)
    assert SECRET not in rejected.detail


@pytest.mark.parametrize(
    "header", ["", "name,secret\n", "subject,key\n", '"subject,secret\n'], ids=repr
)
def test_a_csv_without_a_usable_header_is_refused_whole(header: str) -> None:
    with pytest.raises(BulkFileError):
        _seeds(header + f"u-1,{SECRET}\n", seed_format=SeedFormat.CSV)


def test_a_subject_map_names_the_subjects_and_refuses_unmapped_accounts() -> None:
    mapping = read_subject_map(io.BytesIO(b"account,subject\nalice@example.com,u-1\n"))
    text = (
        f"otpauth://totp/A:alice@example.com?secret={SECRET}\n"
        f"otpauth://totp/A:bob@example.com?secret={SECRET}\n"
    )
    rows = _seeds(text, subjects=mapping)
    assert isinstance(rows[0], TotpSeed) and rows[0].subject == "u-1"
    assert rows[1].reason == "unmapped_account"  # type: ignore[union-attr]
